//! The mixed workload: workers in a closed loop (each sends its next request when the last one
//! answered, so the rate is the highest the app holds at that concurrency) signing in, creating,
//! listing, completing and deleting tasks across many accounts, against the backend's API.
//!
//! Each account belongs to one worker, so its writes are sequential and the ledger knows exactly
//! what each task must look like. A 429 with `Retry-After` is honoured: that account rests until
//! then and the worker moves on to its others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::accounts::{self, Account};
use super::http::{Answer, Base, Http};
use super::ledger::Expect;
use super::stats::{Class, Tally};

/// Most live tasks an account keeps: beyond it the worker deletes instead of creating, so a
/// per-user cap is not what the workload measures.
const MAX_LIVE: usize = 20;

/// What the workers share with whoever drives the run: when to stop, and the phase that each
/// answer is counted under (the fault step names its phases).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set to stop the workers after their current request.
    pub(crate) stop: AtomicBool,
    /// The phase new requests are counted under.
    pub(crate) phase: AtomicU8,
}

/// What a run of the workload measured.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    /// Answers per phase.
    pub(crate) phases: BTreeMap<u8, Tally>,
    /// From the first request to the last answer.
    pub(crate) elapsed: Duration,
    /// Writes that got no clear answer (their effect is unknown, so not in the ledger's checks).
    pub(crate) ambiguous_writes: u64,
}

impl Measured {
    /// Every phase's answers together.
    pub(crate) fn total(&self) -> Tally {
        let mut t = Tally::default();
        for p in self.phases.values() {
            t.merge(p);
        }
        t
    }
}

/// Runs `workers` workers over `accounts` while `control` runs on this thread; they stop when
/// it returns. `control` gets the shared state to switch phases.
pub(crate) fn run<R>(
    http: &Http,
    api: &Base,
    accounts: &mut [Account],
    workers: usize,
    seed: u64,
    control: impl FnOnce(&Shared) -> R,
) -> (Measured, R) {
    let shared = Shared::default();
    let workers = workers.clamp(1, accounts.len().max(1));
    let chunk = accounts.len().div_ceil(workers).max(1);
    let started = Instant::now();
    let (results, out) = std::thread::scope(|s| {
        let shared = &shared;
        let handles: Vec<_> = accounts
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, part)| {
                let seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                s.spawn(move || Worker::new(http, api, shared, seed).run(part))
            })
            .collect();
        let out = control(shared);
        shared.stop.store(true, Ordering::SeqCst);
        let results: Vec<Worker<'_>> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (results, out)
    });
    let mut measured = Measured {
        elapsed: started.elapsed(),
        ..Measured::default()
    };
    for w in results {
        for (phase, t) in &w.phases {
            measured.phases.entry(*phase).or_default().merge(t);
        }
        measured.ambiguous_writes += w.ambiguous;
    }
    (measured, out)
}

/// Runs the workload for `duration` in one phase.
pub(crate) fn run_for(
    http: &Http,
    api: &Base,
    accounts: &mut [Account],
    workers: usize,
    seed: u64,
    duration: Duration,
) -> Measured {
    run(http, api, accounts, workers, seed, |shared| {
        let end = Instant::now() + duration;
        while Instant::now() < end && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
    })
    .0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    SignIn,
    Create,
    List,
    Complete,
    Delete,
}

struct Worker<'a> {
    http: &'a Http,
    api: &'a Base,
    shared: &'a Shared,
    rng: u64,
    seq: u64,
    phases: BTreeMap<u8, Tally>,
    ambiguous: u64,
}

impl<'a> Worker<'a> {
    fn new(http: &'a Http, api: &'a Base, shared: &'a Shared, seed: u64) -> Self {
        Self {
            http,
            api,
            shared,
            rng: seed | 1,
            seq: 0,
            phases: BTreeMap::new(),
            ambiguous: 0,
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn run(mut self, accounts: &mut [Account]) -> Self {
        let mut turn = 0usize;
        while !self.shared.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let ready = (0..accounts.len())
                .map(|k| (turn + k) % accounts.len())
                .find(|&i| accounts[i].not_before.is_none_or(|t| t <= now));
            let Some(i) = ready else {
                // Every account of this worker is throttled: rest until the first may go.
                let wake = accounts.iter().filter_map(|a| a.not_before).min();
                let nap = wake.map_or(Duration::from_millis(50), |w| w - now);
                std::thread::sleep(nap.min(Duration::from_millis(200)));
                continue;
            };
            turn = i + 1;
            self.step(&mut accounts[i]);
        }
        self
    }

    fn choose(&mut self, acct: &Account) -> Op {
        if acct.token.is_empty() {
            return Op::SignIn;
        }
        let live = acct.tasks.values().filter(|e| e.is_live()).count();
        let open = acct.tasks.values().filter(|e| e.is_open()).count();
        let op = match self.next(100) {
            0..5 => Op::SignIn,
            5..35 => Op::Create,
            35..65 => Op::List,
            65..80 => Op::Complete,
            _ => Op::Delete,
        };
        match op {
            Op::Create if live >= MAX_LIVE => Op::Delete,
            Op::Complete if open == 0 => Op::Create,
            Op::Delete if live == 0 => Op::Create,
            other => other,
        }
    }

    /// The id of a random task of `acct` that satisfies `pred`.
    fn pick(&mut self, acct: &Account, pred: impl Fn(&Expect) -> bool) -> Option<i64> {
        let ids: Vec<i64> = acct
            .tasks
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(id, _)| *id)
            .collect();
        let n = self.next(ids.len() as u64) as usize;
        ids.get(n).copied()
    }

    fn step(&mut self, acct: &mut Account) {
        let phase = self.shared.phase.load(Ordering::SeqCst);
        let op = self.choose(acct);
        let (http, api) = (self.http, self.api);
        let (answer, acked) = match op {
            Op::SignIn => {
                let a = accounts::login(http, api, acct);
                (a, false)
            }
            Op::List => {
                let a = http.json(
                    "GET",
                    &api.url("/api/tasks"),
                    Some(&acct.token),
                    acct.xff(),
                    None,
                );
                (a, false)
            }
            Op::Create => {
                self.seq += 1;
                let title = format!("{} #{}", acct.email, self.seq);
                let body = json!({ "title": title });
                let a = http.json(
                    "POST",
                    &api.url("/api/tasks"),
                    Some(&acct.token),
                    acct.xff(),
                    Some(&body),
                );
                let id = a.json()["id"].as_i64();
                match (a.is_success(), id) {
                    (true, Some(id)) => {
                        acct.tasks.insert(
                            id,
                            Expect::Live {
                                title,
                                completed: Some(false),
                            },
                        );
                        (a, true)
                    }
                    _ => {
                        if unclear(&a) {
                            self.ambiguous += 1;
                        }
                        (a, false)
                    }
                }
            }
            Op::Complete => {
                let Some(id) = self.pick(acct, Expect::is_open) else {
                    return;
                };
                let url = api.url(&format!("/api/tasks/{id}/complete"));
                let a = http.json("PATCH", &url, Some(&acct.token), acct.xff(), None);
                let acked = a.is_success();
                if let Some(Expect::Live { completed, .. }) = acct.tasks.get_mut(&id) {
                    if acked {
                        *completed = Some(true);
                    } else if unclear(&a) {
                        *completed = None;
                        self.ambiguous += 1;
                    }
                }
                (a, acked)
            }
            Op::Delete => {
                let Some(id) = self.pick(acct, Expect::is_live) else {
                    return;
                };
                let url = api.url(&format!("/api/tasks/{id}"));
                let a = http.json("DELETE", &url, Some(&acct.token), acct.xff(), None);
                let acked = a.is_success();
                if acked {
                    acct.tasks.insert(id, Expect::Deleted);
                } else if unclear(&a) {
                    acct.tasks.insert(id, Expect::Unknown);
                    self.ambiguous += 1;
                }
                (a, acked)
            }
        };
        let class = if answer.is_success() {
            Class::Ok
        } else if answer.is_throttled() {
            acct.not_before = answer.retry_after.map(|d| Instant::now() + d);
            Class::Throttled
        } else {
            Class::Error
        };
        if answer.status == Some(401) {
            // The token is no longer accepted: the next turn signs in again.
            acct.token.clear();
        }
        let tally = self.phases.entry(phase).or_default();
        tally.record(&answer, class);
        if acked {
            tally.acked_writes += 1;
        }
        if answer.status.is_none() {
            // Nothing listens (a killed backend refuses at once): pause like a real client
            // instead of spinning, so the counts stay about requests, not about a busy loop.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// No answer, or a server error: the write may or may not have happened (a 503 can follow a
/// commit whose reply the killed database never sent). A 4xx, 429 included, is a clear refusal.
fn unclear(a: &Answer) -> bool {
    a.status.is_none_or(|s| s >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_answers_and_server_errors_are_unclear() {
        let with = |status: Option<u16>| Answer {
            status,
            ..Answer::default()
        };
        assert!(unclear(&with(None)));
        assert!(unclear(&with(Some(500))));
        assert!(unclear(&with(Some(502))));
        assert!(unclear(&with(Some(503))));
        assert!(!unclear(&with(Some(429))));
        assert!(!unclear(&with(Some(404))));
        assert!(!unclear(&with(Some(201))));
    }
}
