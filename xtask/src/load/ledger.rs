//! The ledger of acknowledged writes and its check against the API: every create, complete and
//! delete the app acknowledged with a 2xx must be visible afterwards, counted exactly.
//!
//! A write that got no clear answer (a reset, a timeout, a 5xx) may or may not have happened;
//! its task's state becomes [`Expect::Unknown`] and is neither counted as lost nor as kept.

use std::time::{Duration, Instant};

use super::accounts::{self, Account, patiently};
use super::http::{Base, Http};

/// What one task must look like now, from the answers its writes got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Created (acknowledged); `completed` is `None` when a complete went unanswered.
    Live {
        /// Its title, unique per run.
        title: String,
        /// Whether it is done, when known.
        completed: Option<bool>,
    },
    /// Deleted (acknowledged): must answer 404.
    Deleted,
    /// A delete went unanswered: either state is right.
    Unknown,
}

impl Expect {
    /// A live task not known to be completed (a candidate for `complete`).
    pub(crate) fn is_open(&self) -> bool {
        matches!(
            self,
            Expect::Live {
                completed: Some(false),
                ..
            }
        )
    }

    /// A live task (a candidate for `delete`).
    pub(crate) fn is_live(&self) -> bool {
        matches!(self, Expect::Live { .. })
    }
}

/// The outcome of checking ledgers against the API.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verdict {
    /// Tasks checked (live and deleted).
    pub(crate) checked: u64,
    /// Acknowledged writes not visible: a live task missing or wrong, a deleted one back.
    pub(crate) lost: u64,
    /// Tasks whose last write got no clear answer (not checked).
    pub(crate) unknown: u64,
    /// Tasks the API would not answer for before the deadline (not provable either way).
    pub(crate) unverified: u64,
    /// The first few lost or unverified tasks, for the report.
    pub(crate) examples: Vec<String>,
}

impl Verdict {
    fn merge(&mut self, o: Verdict) {
        self.checked += o.checked;
        self.lost += o.lost;
        self.unknown += o.unknown;
        self.unverified += o.unverified;
        for e in o.examples {
            if self.examples.len() < 5 {
                self.examples.push(e);
            }
        }
    }

    /// Every acknowledged write was found, and every task could be checked.
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0 && self.unverified == 0
    }
}

/// Reads every task of every account by id (`GET /api/tasks/{id}`), a few accounts per thread,
/// and compares it with the ledger. Waits out throttling and brief unavailability until
/// `within` has passed.
pub(crate) fn verify(
    http: &Http,
    api: &Base,
    accounts: &mut [Account],
    within: Duration,
) -> Verdict {
    let deadline = Instant::now() + within;
    let threads = 8;
    let chunk = accounts.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = accounts
            .chunks_mut(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut v = Verdict::default();
                    for acct in part {
                        v.merge(verify_account(http, api, acct, deadline));
                    }
                    v
                })
            })
            .collect();
        let mut total = Verdict::default();
        for h in handles {
            match h.join() {
                Ok(v) => total.merge(v),
                Err(_) => {
                    total.unverified += 1;
                    total
                        .examples
                        .push("a verification thread panicked".to_owned());
                }
            }
        }
        total
    })
}

fn verify_account(http: &Http, api: &Base, acct: &mut Account, deadline: Instant) -> Verdict {
    let mut v = Verdict::default();
    let ids: Vec<(i64, Expect)> = acct.tasks.iter().map(|(k, e)| (*k, e.clone())).collect();
    for (id, expect) in ids {
        if expect == Expect::Unknown {
            v.unknown += 1;
            continue;
        }
        let url = api.url(&format!("/api/tasks/{id}"));
        let mut relogged = false;
        let answer = loop {
            let a = patiently(deadline, || {
                http.json("GET", &url, Some(&acct.token), acct.xff(), None)
            });
            // A token from before a restart with a new secret: sign in again, once.
            if a.status == Some(401) && !relogged {
                relogged = true;
                accounts::login(http, api, acct);
                continue;
            }
            break a;
        };
        let found = match answer.status {
            Some(200) => Some(answer.json()),
            Some(404) => None,
            _ => {
                v.unverified += 1;
                note(
                    &mut v,
                    format!("{} task {id}: answered {}", acct.email, answer.status_key()),
                );
                continue;
            }
        };
        v.checked += 1;
        let problem = match (&expect, found) {
            (Expect::Live { .. }, None) => Some("acknowledged create is gone".to_owned()),
            (Expect::Live { title, completed }, Some(task)) => {
                if task["title"].as_str() != Some(title.as_str()) {
                    Some(format!("title is {} (expected {title:?})", task["title"]))
                } else if let Some(c) = completed
                    && task["completed"].as_bool() != Some(*c)
                {
                    Some(format!("completed is {} (expected {c})", task["completed"]))
                } else {
                    None
                }
            }
            (Expect::Deleted, Some(_)) => Some("acknowledged delete is undone".to_owned()),
            (Expect::Deleted, None) | (Expect::Unknown, _) => None,
        };
        if let Some(p) = problem {
            v.lost += 1;
            note(&mut v, format!("{} task {id}: {p}", acct.email));
        }
    }
    v
}

fn note(v: &mut Verdict, example: String) {
    if v.examples.len() < 5 {
        v.examples.push(example);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_for_complete_and_delete() {
        let open = Expect::Live {
            title: "a".into(),
            completed: Some(false),
        };
        let done = Expect::Live {
            title: "a".into(),
            completed: Some(true),
        };
        assert!(open.is_open() && open.is_live());
        assert!(!done.is_open() && done.is_live());
        assert!(!Expect::Deleted.is_live() && !Expect::Unknown.is_live());
    }
}
