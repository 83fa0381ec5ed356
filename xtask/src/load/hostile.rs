//! Step 4: hostile input against the backend's API and the frontend's forms. Each case must
//! get a clear refusal (a 4xx, or for a form the frontend's redirect to an error message) and
//! never a 5xx; afterwards both accounts' tasks must be exactly as before.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::accounts::Account;
use super::http::{Answer, Base, Http};
use super::signin::cookie_header;
use crate::smoke::client::Response;
use crate::smoke::flow::{Flow, TASKS_PAGE};
use crate::smoke::page::parse_forms;

/// What a case must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// One of these statuses.
    Status(&'static [u16]),
    /// A 303 whose next page shows an error message (a form the frontend refused).
    Refused,
    /// A 303 to the sign-in page (a session the frontend does not accept).
    SignIn,
}

impl Want {
    fn describe(self) -> String {
        match self {
            Want::Status(s) => s.iter().map(u16::to_string).collect::<Vec<_>>().join("/"),
            Want::Refused => "303 + error".to_owned(),
            Want::SignIn => "303 /signin".to_owned(),
        }
    }
}

/// One hostile request and what it got.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// What was sent.
    pub(crate) name: String,
    /// What it must get.
    pub(crate) wanted: String,
    /// What it got.
    pub(crate) got: String,
    /// Whether that is what it must get.
    pub(crate) ok: bool,
}

/// Both accounts' tasks: the victim's, the attacker's.
type Snapshot = (Vec<serde_json::Value>, Vec<serde_json::Value>);

/// A case as sent: what it wanted, what it got, and both accounts' tasks right after it.
struct Raw {
    name: String,
    want: Want,
    answer: Answer,
    after: Option<Snapshot>,
}

/// The two accounts the step uses: the victim owns the tasks, the attacker signs in as itself.
pub(crate) struct Parties<'a> {
    /// The suite's client.
    pub(crate) http: &'a Http,
    /// The backend.
    pub(crate) api: &'a Base,
    /// The victim, with its tasks and a frontend session.
    pub(crate) victim: &'a Account,
    /// The victim's frontend session.
    pub(crate) victim_web: &'a Flow,
    /// The attacker, signed in to the API.
    pub(crate) attacker: &'a Account,
    /// The attacker's frontend session, on its task list.
    pub(crate) attacker_web: &'a mut Flow,
}

const TASK_CASES: usize = 2;

impl Parties<'_> {
    /// Sends every case; returns them and whether both accounts' tasks stayed as they were.
    pub(crate) fn run(&mut self) -> Result<(Vec<(Case, Answer)>, Case)> {
        let (http, api) = (self.http, self.api);
        let victim_tasks: Vec<i64> = (0..TASK_CASES)
            .map(|i| {
                let a = http.json(
                    "POST",
                    &api.url("/api/tasks"),
                    Some(&self.victim.token),
                    self.victim.xff(),
                    Some(&json!({ "title": format!("victim task {i}") })),
                );
                a.json()["id"]
                    .as_i64()
                    .with_context(|| format!("creating the victim's task: {}", a.status_key()))
            })
            .collect::<Result<_>>()?;
        let victim_id = self.me(self.victim)?;
        let before = self
            .after()
            .context("listing both accounts' tasks before the hostile input")?;

        let mut raw = Vec::new();
        self.api_cases(&victim_tasks, &victim_id, &mut raw);
        self.web_cases(&victim_tasks, &mut raw)?;

        // Cases run one at a time, so a change between two snapshots is the case's doing.
        let mut prev = Some(before.clone());
        let mut cases = Vec::new();
        for r in raw {
            let mut case = judge(&r.name, r.want, &r.answer);
            let changed = match (&prev, &r.after) {
                (Some(p), Some(a)) => p != a,
                _ => true,
            };
            if changed {
                case.ok = false;
                case.got.push_str(if r.after.is_some() {
                    "; changed tasks"
                } else {
                    "; tasks could not be listed"
                });
            }
            if r.after.is_some() {
                prev = r.after;
            }
            cases.push((case, r.answer));
        }

        let after = self
            .after()
            .context("listing both accounts' tasks after the hostile input")?;
        let unchanged = Case {
            name: "afterwards: both accounts' tasks".to_owned(),
            wanted: "unchanged".to_owned(),
            got: if before == after {
                "unchanged".to_owned()
            } else {
                format!(
                    "changed: victim {} -> {}, attacker {} -> {}",
                    before.0.len(),
                    after.0.len(),
                    before.1.len(),
                    after.1.len()
                )
            },
            ok: before == after,
        };
        Ok((cases, unchanged))
    }

    /// Both accounts' tasks now; `None` when they cannot be listed.
    fn after(&self) -> Option<Snapshot> {
        Some((
            self.tasks(self.victim).ok()?,
            self.tasks(self.attacker).ok()?,
        ))
    }

    /// Every task of `acct`, as the API lists them, sorted by id.
    fn tasks(&self, acct: &Account) -> Result<Vec<serde_json::Value>> {
        let a = self.http.json(
            "GET",
            &self.api.url("/api/tasks"),
            Some(&acct.token),
            acct.xff(),
            None,
        );
        let v = a.json();
        // A paginated list is an object holding the items; today it is the array itself.
        let items = v
            .as_array()
            .or_else(|| v["items"].as_array())
            .or_else(|| v["tasks"].as_array())
            .with_context(|| format!("listing tasks answered {}", a.status_key()))?;
        let mut items = items.clone();
        items.sort_by_key(|t| t["id"].as_i64());
        Ok(items)
    }

    fn me(&self, acct: &Account) -> Result<String> {
        let a = self.http.json(
            "GET",
            &self.api.url("/api/me"),
            Some(&acct.token),
            acct.xff(),
            None,
        );
        a.json()["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("/api/me answered {}", a.status_key()))
    }

    fn api_cases(&self, victim_tasks: &[i64], victim_id: &str, cases: &mut Vec<Raw>) {
        let (http, api) = (self.http, self.api);
        let token = self.attacker.token.as_str();
        let bearer = format!("Bearer {token}");
        let xff = self.attacker.xff();
        let send = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>| {
            let mut h: Vec<(&str, &str)> = headers.to_vec();
            if let Some(addr) = xff {
                h.push(("X-Forwarded-For", addr));
            }
            oversized_aware(|| http.unpooled().send(method, &api.url(path), &h, body))
        };
        let auth_json = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        let auth = [("Authorization", bearer.as_str())];
        // Twice the backend's 64 KiB limit: over it, yet small enough that the body is sent whole
        // before the 413 arrives (a larger one races the server closing the connection).
        let huge = format!("{{\"title\":\"{}\"}}", "x".repeat(128 * 1024));
        let mut push = |name: &str, want: Want, a: Answer| {
            cases.push(Raw {
                name: name.to_owned(),
                want,
                after: self.after(),
                answer: a,
            });
        };

        push(
            "api: oversized body (128 KiB)",
            Want::Status(&[413]),
            send("POST", "/api/tasks", &auth_json, Some(huge.as_bytes())),
        );
        push(
            "api: malformed JSON",
            Want::Status(&[400]),
            send("POST", "/api/tasks", &auth_json, Some(b"{\"title\": ")),
        );
        push(
            "api: wrong JSON shape",
            Want::Status(&[400, 422]),
            send(
                "POST",
                "/api/tasks",
                &auth_json,
                Some(b"{\"title\": 5, \"user_id\": \"x\"}"),
            ),
        );
        push(
            "api: wrong content type",
            Want::Status(&[400, 415]),
            send(
                "POST",
                "/api/tasks",
                &[
                    ("Authorization", bearer.as_str()),
                    ("Content-Type", "text/plain"),
                ],
                Some(b"{\"title\":\"plain\"}"),
            ),
        );
        push(
            "api: non-UTF-8 body",
            Want::Status(&[400, 422]),
            send(
                "POST",
                "/api/tasks",
                &auth_json,
                Some(b"{\"title\":\"\xff\xfe\"}"),
            ),
        );
        push(
            "api: non-UTF-8 path",
            Want::Status(&[400, 404]),
            send("GET", "/api/tasks/%FF%FE", &auth, None),
        );
        push(
            "api: SQL in the path",
            Want::Status(&[400, 404]),
            send("GET", "/api/tasks/1%20OR%201=1", &auth, None),
        );
        push(
            "api: path traversal",
            Want::Status(&[400, 404]),
            send("GET", "/api/tasks/..%2F..%2Fetc%2Fpasswd", &auth, None),
        );
        push(
            "api: SQL in the query",
            Want::Status(&[400]),
            send(
                "GET",
                "/api/tasks?status=all%27%20OR%20%271%27=%271",
                &auth,
                None,
            ),
        );
        push(
            "api: repeated query parameter",
            Want::Status(&[400]),
            send(
                "GET",
                "/api/tasks?status=pending&status=completed",
                &auth,
                None,
            ),
        );
        push(
            "api: no token",
            Want::Status(&[401]),
            send("GET", "/api/tasks", &[], None),
        );
        let forged = [
            ("api: forged token", "forged.token.value".to_owned()),
            ("api: unsigned token (alg none)", unsigned_token(victim_id)),
            (
                "api: token re-addressed to another user",
                reclaimed(token, |c| c["sub"] = json!(victim_id)),
            ),
            (
                "api: expired token (exp moved back)",
                reclaimed(token, |c| c["exp"] = json!(now() - 3600)),
            ),
        ];
        for (name, t) in forged {
            let b = format!("Bearer {t}");
            push(
                name,
                Want::Status(&[401]),
                send("GET", "/api/tasks", &[("Authorization", b.as_str())], None),
            );
        }
        let id = victim_tasks[0];
        let path = format!("/api/tasks/{id}");
        push(
            "api: another user's task: read",
            Want::Status(&[404]),
            send("GET", &path, &auth, None),
        );
        push(
            "api: another user's task: update",
            Want::Status(&[404]),
            send(
                "PUT",
                &path,
                &auth_json,
                Some(b"{\"title\":\"taken over\",\"completed\":true}"),
            ),
        );
        push(
            "api: another user's task: complete",
            Want::Status(&[404]),
            send("PATCH", &format!("{path}/complete"), &auth, None),
        );
        push(
            "api: another user's task: delete",
            Want::Status(&[404]),
            send("DELETE", &path, &auth, None),
        );
    }

    fn web_cases(&mut self, victim_tasks: &[i64], cases: &mut Vec<Raw>) -> Result<()> {
        let http = self.http;
        self.attacker_web.visit(TASKS_PAGE)?;
        let (field, token) = csrf_field(&self.attacker_web.page)
            .context("the attacker's task list has no form with a CSRF field")?;
        let cookie = cookie_header(self.attacker_web);
        let xff = self.attacker.xff();
        let base = self.attacker_web.base.clone();
        let web =
            |method: &str, path: &str, cookie: &str, ctype: Option<&str>, body: Option<&[u8]>| {
                let mut h = vec![("Cookie", cookie)];
                if let Some(c) = ctype {
                    h.push(("Content-Type", c));
                }
                if let Some(addr) = xff {
                    h.push(("X-Forwarded-For", addr));
                }
                oversized_aware(|| {
                    http.unpooled()
                        .send(method, &format!("{base}{path}"), &h, body)
                })
            };
        let form = |pairs: &[(&str, &str)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
        let forged_token = "ab".repeat(32);
        let mut out: Vec<(&str, Want, Answer, Option<Snapshot>)> = Vec::new();

        let body = form(&[(field.as_str(), forged_token.as_str()), ("title", "forged")]);
        out.push((
            "web: forged CSRF field",
            Want::Status(&[403]),
            web("POST", TASKS_PAGE, &cookie, FORM, Some(body.as_bytes())),
            self.after(),
        ));
        let body = form(&[("title", "no token")]);
        out.push((
            "web: missing CSRF field",
            Want::Status(&[403]),
            web("POST", TASKS_PAGE, &cookie, FORM, Some(body.as_bytes())),
            self.after(),
        ));
        // The attacker's own valid token pair planted in the victim's session.
        let planted = session_with_csrf_of(self.victim_web, self.attacker_web);
        let body = form(&[(field.as_str(), token.as_str()), ("title", "planted")]);
        out.push((
            "web: CSRF token of another session",
            Want::Status(&[403]),
            web("POST", TASKS_PAGE, &planted, FORM, Some(body.as_bytes())),
            self.after(),
        ));
        let big = "y".repeat(100 * 1024);
        let body = form(&[(field.as_str(), token.as_str()), ("title", big.as_str())]);
        out.push((
            "web: oversized form (100 KiB)",
            Want::Status(&[413]),
            web("POST", TASKS_PAGE, &cookie, FORM, Some(body.as_bytes())),
            self.after(),
        ));
        let mut raw = form(&[(field.as_str(), token.as_str())]).into_bytes();
        raw.extend_from_slice(b"&title=%ZZ\xff\xfe");
        out.push((
            "web: non-UTF-8 form",
            Want::Status(&[400, 422]),
            web("POST", TASKS_PAGE, &cookie, FORM, Some(&raw)),
            self.after(),
        ));
        let json_body = format!("{{\"{field}\":\"{token}\",\"title\":\"json\"}}");
        out.push((
            "web: wrong content type (JSON)",
            Want::Status(&[400, 403, 415]),
            web(
                "POST",
                TASKS_PAGE,
                &cookie,
                Some("application/json"),
                Some(json_body.as_bytes()),
            ),
            self.after(),
        ));
        out.push((
            "web: non-UTF-8 path",
            Want::Status(&[400, 404]),
            web("GET", "/tasks/%FF%FE/edit", &cookie, None, None),
            self.after(),
        ));
        out.push((
            "web: SQL in the path",
            Want::Status(&[400, 404]),
            web("GET", "/tasks/1%20OR%201=1/edit", &cookie, None, None),
            self.after(),
        ));
        out.push((
            "web: script in the query",
            Want::Status(&[400]),
            web("GET", "/tasks?status=%3Cscript%3E", &cookie, None, None),
            self.after(),
        ));
        let id = victim_tasks[1];
        out.push((
            "web: another user's task: edit page",
            Want::Status(&[404]),
            web("GET", &format!("/tasks/{id}/edit"), &cookie, None, None),
            self.after(),
        ));
        for action in ["complete", "delete"] {
            let body = form(&[(field.as_str(), token.as_str())]);
            let a = web(
                "POST",
                &format!("/tasks/{id}/{action}"),
                &cookie,
                FORM,
                Some(body.as_bytes()),
            );
            let a = self.follow(a);
            let name = if action == "delete" {
                "web: another user's task: delete"
            } else {
                "web: another user's task: complete"
            };
            out.push((name, Want::Refused, a, self.after()));
        }
        let session = self
            .victim_web
            .cookies
            .keys()
            .find(|k| k.contains("session"))
            .context("the victim's frontend session has no session cookie")?;
        let forged_session = format!("{session}={}", unsigned_token("x"));
        out.push((
            "web: forged session cookie",
            Want::SignIn,
            web("GET", TASKS_PAGE, &forged_session, None, None),
            self.after(),
        ));
        for (name, want, a, after) in out {
            cases.push(Raw {
                name: name.to_owned(),
                want,
                answer: a,
                after,
            });
        }
        Ok(())
    }

    /// For a 303: keeps its cookies (the flash), loads where it points, and returns the
    /// redirect with the next page as its body.
    fn follow(&mut self, mut a: Answer) -> Answer {
        if a.status != Some(303) {
            return a;
        }
        let flow = &mut *self.attacker_web;
        flow.absorb(&Response {
            status: 303,
            location: a.location.clone(),
            set_cookies: a.set_cookies.clone(),
            body: String::new(),
        });
        if let Some(loc) = a.location.clone()
            && flow.visit(&loc).is_ok()
        {
            a.body = flow.page.clone();
        }
        a
    }
}

/// Sends again, up to four times, while no HTTP answer arrives: a server that refuses an
/// oversized body answers before reading it all and closes the connection, and the client,
/// still writing, may see the reset instead of the answer. The server's answer is what counts.
fn oversized_aware(mut send: impl FnMut() -> Answer) -> Answer {
    let mut a = send();
    for _ in 0..4 {
        if a.status.is_some() {
            break;
        }
        a = send();
    }
    a
}

/// Whether `a` is what `want` asks for, as a report row.
fn judge(name: &str, want: Want, a: &Answer) -> Case {
    let redirect_to =
        |p: &str| a.status == Some(303) && a.location.as_deref().is_some_and(|l| l.starts_with(p));
    let ok = match want {
        Want::Status(s) => a.status.is_some_and(|st| s.contains(&st)),
        // The frontend shows an error message with role="alert" on the page it redirects to.
        Want::Refused => a.status == Some(303) && a.body.contains("role=\"alert\""),
        Want::SignIn => redirect_to("/signin"),
    };
    let mut got = a.status_key();
    if let Some(l) = &a.location {
        got = format!("{got} {l}");
    }
    Case {
        name: name.to_owned(),
        wanted: want.describe(),
        got,
        ok,
    }
}

/// The first form field whose name mentions `csrf`, with its value.
fn csrf_field(page: &str) -> Option<(String, String)> {
    parse_forms(page)
        .into_iter()
        .flat_map(|f| f.fields)
        .find(|(n, v)| n.contains("csrf") && !v.is_empty())
}

/// The victim's session cookie with the attacker's CSRF cookie.
fn session_with_csrf_of(victim: &Flow, attacker: &Flow) -> String {
    let mut jar = victim.cookies.clone();
    for (k, v) in &attacker.cookies {
        if k.contains("csrf") {
            jar.insert(k.clone(), v.clone());
        }
    }
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A token that claims `sub` with no signature at all.
fn unsigned_token(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = json!({ "sub": sub, "exp": now() + 3600, "iat": now() });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `token` with its claims edited by `edit` and its original signature kept.
fn reclaimed(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut parts = token.splitn(3, '.');
    let (header, payload, sig) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let mut claims: serde_json::Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}));
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{sig}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_reclaimed_token_keeps_header_and_signature_and_changes_the_claims() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","exp":10}"#);
        let token = format!("hdr.{claims}.sig");
        let t = reclaimed(&token, |c| c["sub"] = json!("b"));
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!((parts[0], parts[2]), ("hdr", "sig"));
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(decoded, json!({"sub": "b", "exp": 10}));
        assert!(unsigned_token("x").ends_with('.'));
    }

    #[test]
    fn a_case_passes_only_with_the_wanted_answer() {
        let a = |status: u16, location: Option<&str>, body: &str| Answer {
            status: Some(status),
            location: location.map(str::to_owned),
            body: body.to_owned(),
            ..Answer::default()
        };
        assert!(judge("x", Want::Status(&[400, 404]), &a(404, None, "")).ok);
        assert!(!judge("x", Want::Status(&[400]), &a(500, None, "")).ok);
        assert!(judge("x", Want::SignIn, &a(303, Some("/signin"), "")).ok);
        assert!(!judge("x", Want::SignIn, &a(303, Some("/tasks"), "")).ok);
        assert!(
            judge(
                "x",
                Want::Refused,
                &a(303, Some("/tasks"), "<p role=\"alert\">no</p>")
            )
            .ok
        );
        assert!(!judge("x", Want::Refused, &a(303, Some("/tasks"), "<p>done</p>")).ok);
        let none = Answer {
            failure: Some("reset".into()),
            ..Answer::default()
        };
        assert!(!judge("x", Want::Status(&[400]), &none).ok);
    }
}
