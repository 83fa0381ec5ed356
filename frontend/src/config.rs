//! Configuration read from environment variables, validated up front so a bad value stops the
//! process with one clear line instead of failing later on a request.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::csrf::{CsrfKey, MIN_SECRET_BYTES};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Everything the frontend needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the backend API, e.g. `http://localhost:8000`.
    pub backend_url: Url,
    /// TCP port to listen on (all interfaces).
    pub port: u16,
    /// Whether cookies get the `Secure` flag and `__Host-` names, and responses HSTS (set when
    /// served over HTTPS).
    pub cookie_secure: bool,
    /// Server key of the CSRF tokens (`CSRF_SECRET`); every replica needs the same one.
    pub csrf_secret: CsrfKey,
    /// `tracing` filter directive, e.g. `info` or `todo_frontend=debug`.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Reverse proxies whose `X-Forwarded-For` names the visitor (`TRUSTED_PROXIES`).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// How long connections and requests may take (`HEADER_READ_TIMEOUT_SECONDS`,
    /// `REQUEST_TIMEOUT_SECONDS`, `SHUTDOWN_DRAIN_SECONDS`).
    pub timeouts: Timeouts,
}

/// Time bounds of the server, with the backend's names, defaults and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest time to receive a request's headers, also the keep-alive idle time
    /// (`HEADER_READ_TIMEOUT_SECONDS`).
    pub header_read: Duration,
    /// Longest a request may take, body included, before `408` (`REQUEST_TIMEOUT_SECONDS`).
    pub request: Duration,
    /// Longest wait for in-flight requests after SIGTERM (`SHUTDOWN_DRAIN_SECONDS`).
    pub shutdown_drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(15),
            shutdown_drain: Duration::from_secs(20),
        }
    }
}

/// A configuration variable that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong and how to fix it (never echoes a value that could hold credentials).
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can pass values without touching the
    /// process environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let backend_url = parse_backend_url(get("BACKEND_URL").as_deref())?;
        let port = match get("PORT") {
            None => 3000,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(ConfigError {
                        variable: "PORT",
                        problem: format!(
                            "{raw:?} is not a port number; use 1-65535 (default 3000)"
                        ),
                    });
                }
            },
        };
        let cookie_secure = match get("COOKIE_SECURE").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
            Some(v) => {
                return Err(ConfigError {
                    variable: "COOKIE_SECURE",
                    problem: format!("{v:?} is not a boolean; use true or false (default false)"),
                });
            }
        };
        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(ConfigError {
                variable: "LOG_LEVEL",
                problem: format!(
                    "{log_level:?} is not a log filter; use error, warn, info, debug or trace (default info)"
                ),
            });
        }
        let log_format = match get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(ConfigError {
                    variable: "LOG_FORMAT",
                    problem: format!("{v:?} is not a log format; use json or text (default text)"),
                });
            }
        };
        let trusted_proxies =
            crate::client_addr::TrustedProxies::parse(&get("TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|problem| ConfigError {
                    variable: "TRUSTED_PROXIES",
                    problem,
                })?;
        let csrf_secret = parse_csrf_secret(get("CSRF_SECRET"))?;
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            header_read: seconds(
                "HEADER_READ_TIMEOUT_SECONDS",
                get("HEADER_READ_TIMEOUT_SECONDS"),
                defaults.header_read,
                300,
            )?,
            request: seconds(
                "REQUEST_TIMEOUT_SECONDS",
                get("REQUEST_TIMEOUT_SECONDS"),
                defaults.request,
                600,
            )?,
            shutdown_drain: seconds(
                "SHUTDOWN_DRAIN_SECONDS",
                get("SHUTDOWN_DRAIN_SECONDS"),
                defaults.shutdown_drain,
                3600,
            )?,
        };
        Ok(Self {
            backend_url,
            port,
            cookie_secure,
            csrf_secret,
            log_level,
            log_format,
            trusted_proxies,
            timeouts,
        })
    }
}

/// A whole number of seconds from 1 to `max`; `default` when unset.
fn seconds(
    variable: &'static str,
    raw: Option<String>,
    default: Duration,
    max: u64,
) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError {
            variable,
            problem: format!(
                "must be a whole number of seconds from 1 to {max} (default {}), got {raw:?}",
                default.as_secs()
            ),
        }),
    }
}

/// The CSRF key: required, at least [`MIN_SECRET_BYTES`] bytes. Errors give the length and the
/// fix, never the value.
fn parse_csrf_secret(raw: Option<String>) -> Result<CsrfKey, ConfigError> {
    let err = |problem: String| ConfigError {
        variable: "CSRF_SECRET",
        problem,
    };
    let Some(raw) = raw else {
        return Err(err(
            "is required: the key that signs the forms' CSRF tokens, the same for every frontend \
             replica; generate one with `openssl rand -hex 32`"
                .to_owned(),
        ));
    };
    if raw.len() < MIN_SECRET_BYTES {
        return Err(err(format!(
            "must be at least {MIN_SECRET_BYTES} bytes long (it has {}); generate one with \
             `openssl rand -hex 32`",
            raw.len()
        )));
    }
    Ok(CsrfKey::new(raw.as_bytes()))
}

fn parse_backend_url(raw: Option<&str>) -> Result<Url, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Url::parse("http://localhost:8000").expect("the default URL is valid"));
    };
    // The value is not echoed: a URL may carry credentials in its user-info part.
    let err = |problem: &str| ConfigError {
        variable: "BACKEND_URL",
        problem: problem.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| {
        err(&format!(
            "not a URL ({e}); use e.g. http://todo-backend:8000"
        ))
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(err(
                "https is not supported by this build; use the backend's in-cluster http:// address",
            ));
        }
        _ => {
            return Err(err(
                "must start with http://, e.g. http://todo-backend:8000",
            ));
        }
    }
    if url.host_str().is_none() {
        return Err(err("has no host; use e.g. http://todo-backend:8000"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not contain a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "csrf-test-secret-0123456789abcdef-0123";

    /// `pairs` plus a valid CSRF_SECRET unless `pairs` sets one.
    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.entry("CSRF_SECRET".to_owned())
            .or_insert_with(|| SECRET.to_owned());
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = with(&[]).unwrap();
        assert_eq!(c.backend_url.as_str(), "http://localhost:8000/");
        assert_eq!(c.port, 3000);
        assert!(!c.cookie_secure);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(
            c.timeouts,
            Timeouts {
                header_read: Duration::from_secs(10),
                request: Duration::from_secs(15),
                shutdown_drain: Duration::from_secs(20),
            }
        );
    }

    #[test]
    fn values_are_read() {
        let c = with(&[
            ("BACKEND_URL", "http://api:9000/base"),
            ("PORT", "8080"),
            ("COOKIE_SECURE", "TRUE"),
            ("LOG_LEVEL", "debug"),
            ("LOG_FORMAT", "json"),
            ("HEADER_READ_TIMEOUT_SECONDS", "300"),
            ("REQUEST_TIMEOUT_SECONDS", " 1 "),
            ("SHUTDOWN_DRAIN_SECONDS", "22"),
        ])
        .unwrap();
        assert_eq!(c.timeouts.header_read, Duration::from_secs(300));
        assert_eq!(c.timeouts.request, Duration::from_secs(1));
        assert_eq!(c.timeouts.shutdown_drain, Duration::from_secs(22));
        assert_eq!(c.backend_url.as_str(), "http://api:9000/base");
        assert_eq!(c.port, 8080);
        assert!(c.cookie_secure);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("PORT", "http"),
            ("PORT", "0"),
            ("PORT", "70000"),
            ("COOKIE_SECURE", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("LOG_LEVEL", "info,[[["),
            ("BACKEND_URL", "not a url"),
            ("BACKEND_URL", "ftp://x"),
            ("BACKEND_URL", "https://x"),
            ("TRUSTED_PROXIES", "10.0.0.0/8,the-proxy"),
            ("CSRF_SECRET", "short"),
            ("CSRF_SECRET", "   "),
            ("HEADER_READ_TIMEOUT_SECONDS", "0"),
            ("HEADER_READ_TIMEOUT_SECONDS", "301"),
            ("REQUEST_TIMEOUT_SECONDS", "10s"),
            ("REQUEST_TIMEOUT_SECONDS", "601"),
            ("SHUTDOWN_DRAIN_SECONDS", "-5"),
            ("SHUTDOWN_DRAIN_SECONDS", "3601"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var, "{var}={value}");
            assert!(e.to_string().starts_with(&format!("invalid {var}: ")));
        }
        let e = with(&[("SHUTDOWN_DRAIN_SECONDS", "soon")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid SHUTDOWN_DRAIN_SECONDS: must be a whole number of seconds from 1 to 3600 \
             (default 20), got \"soon\""
        );
    }

    #[test]
    fn backend_url_credentials_are_not_echoed() {
        let e = with(&[("BACKEND_URL", "ftp://user:hunter2secret@host")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2secret"), "{e}");
    }

    #[test]
    fn csrf_secret_is_required_at_least_32_bytes_and_never_echoed() {
        let e = with(&[("CSRF_SECRET", "")]).unwrap_err();
        assert_eq!(e.variable, "CSRF_SECRET");
        assert!(e.problem.contains("is required"), "{e}");
        assert!(e.problem.contains("openssl rand -hex 32"), "{e}");
        let e = with(&[("CSRF_SECRET", "hunter2-too-short")]).unwrap_err();
        assert!(e.to_string().contains("at least 32 bytes"), "{e}");
        assert!(e.to_string().contains("it has 17"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = with(&[("CSRF_SECRET", "hunter2-hunter2-hunter2-hunter2-!")]).unwrap();
        assert_eq!(c.csrf_secret.len(), 33);
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }
}
