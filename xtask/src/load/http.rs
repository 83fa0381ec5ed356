//! The suite's HTTP client: one timed request, its answer reduced to what the steps look at, and
//! a failure with no HTTP answer (a reset, a refused connection, a timeout) named by its class.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One request's outcome.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    /// The HTTP status, or `None` when no answer arrived.
    pub(crate) status: Option<u16>,
    /// Why no answer arrived: `reset`, `refused`, `timeout` or ureq's error kind.
    pub(crate) failure: Option<String>,
    /// From sending the request to reading the whole body.
    pub(crate) latency: Duration,
    /// The body as text (lossy).
    pub(crate) body: String,
    /// `Retry-After`, when the answer carries one.
    pub(crate) retry_after: Option<Duration>,
    /// `Location`, when the answer carries one.
    pub(crate) location: Option<String>,
    /// Every `Set-Cookie`.
    pub(crate) set_cookies: Vec<String>,
}

impl Answer {
    /// The status code as text, or the failure class.
    pub(crate) fn status_key(&self) -> String {
        match (self.status, &self.failure) {
            (Some(s), _) => s.to_string(),
            (None, Some(f)) => f.clone(),
            (None, None) => "no-answer".to_owned(),
        }
    }

    /// A 2xx answer.
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 429 with a `Retry-After`: throttled as designed.
    pub(crate) fn is_throttled(&self) -> bool {
        self.status == Some(429) && self.retry_after.is_some()
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A base URL that a fault may move (a restarted backend container gets a new host port).
#[derive(Debug, Clone)]
pub(crate) struct Base(Arc<RwLock<String>>);

impl Base {
    /// A base URL such as `http://127.0.0.1:49153`.
    pub(crate) fn new(url: &str) -> Self {
        Self(Arc::new(RwLock::new(url.trim_end_matches('/').to_owned())))
    }

    /// `path` under the current base.
    pub(crate) fn url(&self, path: &str) -> String {
        let base = self.0.read().unwrap_or_else(|e| e.into_inner());
        format!("{base}{path}")
    }

    /// Points every later request at `url`.
    pub(crate) fn set(&self, url: &str) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = url.trim_end_matches('/').to_owned();
    }
}

/// A blocking client that follows no redirects and never retries.
#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Http {
    /// A client whose requests give up after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(timeout)
                // One pooled connection per worker thread is enough; more would only idle.
                .max_idle_connections_per_host(256)
                .build(),
        }
    }

    /// A client like this one with no pooled connections: a server that refuses a request
    /// without reading its body closes the connection, which the next request must not reuse.
    pub(crate) fn unpooled(&self) -> Self {
        Self::new(self.timeout)
    }

    /// Sends `method url` with `headers` and an optional body, timing it to the last byte.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        let mut req = self.agent.request(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let started = Instant::now();
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Answer {
                    failure: Some(failure_class(&t)),
                    latency: started.elapsed(),
                    ..Answer::default()
                };
            }
        };
        let status = resp.status();
        let retry_after = resp
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let location = resp.header("location").map(str::to_owned);
        let set_cookies = resp
            .all("set-cookie")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut bytes = Vec::new();
        let read = std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes);
        let latency = started.elapsed();
        if let Err(e) = read {
            // The status line arrived, the body did not: the connection broke mid-answer.
            return Answer {
                failure: Some(io_class(&e)),
                latency,
                ..Answer::default()
            };
        }
        Answer {
            status: Some(status),
            failure: None,
            latency,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            retry_after,
            location,
            set_cookies,
        }
    }

    /// A JSON request (`Content-Type: application/json`), with a bearer token and an
    /// `X-Forwarded-For` client address when given.
    pub(crate) fn json(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        forwarded_for: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Accept", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        if let Some(addr) = forwarded_for {
            headers.push(("X-Forwarded-For", addr));
        }
        let text = body.map(serde_json::Value::to_string);
        if text.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.send(method, url, &headers, text.as_deref().map(str::as_bytes))
    }
}

fn failure_class(t: &ureq::Transport) -> String {
    if let Some(io) = std::error::Error::source(t).and_then(|s| s.downcast_ref::<std::io::Error>())
    {
        return io_class(io);
    }
    let text = t.to_string().to_ascii_lowercase();
    for (needle, class) in [
        ("refused", "refused"),
        ("reset", "reset"),
        ("timed out", "timeout"),
        ("broken pipe", "reset"),
    ] {
        if text.contains(needle) {
            return class.to_owned();
        }
    }
    t.kind().to_string().to_ascii_lowercase().replace(' ', "-")
}

fn io_class(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "refused",
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => "reset",
        K::TimedOut | K::WouldBlock => "timeout",
        _ => "io-error",
    }
    .to_owned()
}

/// A base URL's host must be loopback: the suite sends traffic to this machine only.
pub(crate) fn require_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("not a URL: `{url}` ({e})"))?;
    match parsed.host_str() {
        Some("127.0.0.1" | "localhost" | "[::1]") => Ok(()),
        other => anyhow::bail!(
            "the load suite sends traffic to 127.0.0.1 only, but the app answers at `{url}` \
             (host {}); deploy with `cargo xtask deploy --target docker`",
            other.unwrap_or("none")
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert!(require_loopback("http://127.0.0.1:3000").is_ok());
        assert!(require_loopback("http://localhost:3000/").is_ok());
        let err = require_loopback("http://10.0.0.5:3000").unwrap_err();
        assert!(err.to_string().contains("127.0.0.1 only"), "{err}");
    }

    #[test]
    fn a_refused_connection_is_named_and_timed() {
        // A port nobody listens on: bind, learn it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let a = Http::new(Duration::from_secs(2)).send(
            "GET",
            &format!("http://127.0.0.1:{port}/"),
            &[],
            None,
        );
        assert_eq!(a.status, None);
        assert_eq!(a.status_key(), "refused");
    }
}
