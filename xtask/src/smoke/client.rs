//! A blocking HTTP client for the smoke test: no redirects followed, cookies sent by hand, and
//! one readable line for a request that got no answer.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};

/// A response reduced to what the checks look at.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) body: String,
}

/// A blocking HTTP client that never follows redirects (the flow follows them itself so it
/// sees every `Set-Cookie`).
pub(crate) struct Client {
    pub(crate) agent: ureq::Agent,
    /// Named when a request cannot connect.
    pub(crate) fix: String,
}

/// The fix for an unreachable app when the target gave none.
pub(crate) const GENERIC_UNREACHABLE_FIX: &str =
    "check that the app is deployed and running: `cargo xtask status`";

/// One line for a request that got no HTTP answer: what failed, the URL once, and the fix.
/// (ureq's own message repeats the URL.)
pub(crate) fn unreachable(url: &str, t: &ureq::Transport, fix: &str) -> String {
    let mut why = t.kind().to_string();
    if let Some(m) = t.message() {
        why = format!("{why}: {m}");
    }
    if let Some(source) = std::error::Error::source(t) {
        why = format!("{why}: {source}");
    }
    format!("cannot connect to {url} ({why}); fix: {fix}")
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(timeout)
            .build();
        Self {
            agent,
            fix: GENERIC_UNREACHABLE_FIX.to_owned(),
        }
    }

    pub(crate) fn get(&self, url: &str, cookies: &BTreeMap<String, String>) -> Result<Response> {
        let req = with_cookies(self.agent.get(url), cookies);
        self.finish(url, req.call())
    }

    pub(crate) fn post_form(
        &self,
        url: &str,
        cookies: &BTreeMap<String, String>,
        fields: &[(String, String)],
    ) -> Result<Response> {
        let req = with_cookies(self.agent.post(url), cookies);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.finish(url, req.send_form(&pairs))
    }

    pub(crate) fn finish(
        &self,
        url: &str,
        res: Result<ureq::Response, ureq::Error>,
    ) -> Result<Response> {
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => bail!("{}", unreachable(url, &t, &self.fix)),
        };
        let status = resp.status();
        let location = resp.header("location").map(str::to_owned);
        let set_cookies = resp
            .all("set-cookie")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let body = resp.into_string().unwrap_or_default();
        Ok(Response {
            status,
            location,
            set_cookies,
            body,
        })
    }
}

pub(crate) fn with_cookies(
    req: ureq::Request,
    cookies: &BTreeMap<String, String>,
) -> ureq::Request {
    if cookies.is_empty() {
        return req;
    }
    let header = cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    req.set("Cookie", &header)
}
