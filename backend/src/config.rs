//! Configuration read from environment variables, validated once at start.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::limits::client_ip::TrustedProxies;
use crate::limits::throttle::{Rate, Rates};
use tracing_subscriber::EnvFilter;

/// Shortest accepted `JWT_SECRET`, in bytes (HS256 wants at least its 256-bit output size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines.
    Text,
}

/// The validated service configuration.
#[derive(Clone)]
pub struct Config {
    /// Connection options parsed from `DATABASE_URL` (holds the database password).
    pub database: PgConnectOptions,
    /// HMAC key for HS256 tokens.
    pub jwt_secret: Vec<u8>,
    /// TCP port to listen on (all interfaces).
    pub port: u16,
    /// `tracing` filter directives, e.g. `info` or `todo_backend=debug,info`.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// The chat assistant's AI provider; `None` uses the built-in command interpreter.
    pub llm: Option<LlmConfig>,
    /// Bounds on resources, rates and sizes.
    pub limits: Limits,
}

/// Where the password-hashing memory budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// `HASH_MEMORY_MIB`.
    Configured,
    /// A quarter of the container's cgroup memory limit.
    Cgroup,
    /// [`DEFAULT_HASH_MEMORY_MIB`]: no setting and no readable limit.
    Fallback,
}

/// Password-hashing budget without a setting and without a cgroup memory limit.
pub const DEFAULT_HASH_MEMORY_MIB: u64 = 256;

/// Bounds on resources, rates and sizes (see docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory for concurrent Argon2id hashes, in MiB (`HASH_MEMORY_MIB`).
    pub hash_memory_mib: u64,
    /// Where `hash_memory_mib` came from.
    pub hash_memory_source: BudgetSource,
    /// Longest wait for a hashing slot before 503 (`HASH_WAIT_MS`).
    pub hash_wait: Duration,
    /// Throttle rates (`LOGIN_RATE_PER_IP`, `LOGIN_RATE_PER_ACCOUNT`, `REGISTER_RATE_PER_IP`,
    /// `CHAT_RATE_PER_USER`).
    pub rates: Rates,
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Items per page of a list without `limit` (`PAGE_SIZE_DEFAULT`); also the most tasks the
    /// chat's `list_tasks` tool returns.
    pub page_size_default: i64,
    /// Largest accepted `limit` (`PAGE_SIZE_MAX`).
    pub page_size_max: i64,
    /// Most tasks one user may have (`MAX_TASKS_PER_USER`).
    pub max_tasks_per_user: i64,
    /// Most conversations one user may have (`MAX_CONVERSATIONS_PER_USER`).
    pub max_conversations_per_user: i64,
    /// Most messages in one conversation (`MAX_MESSAGES_PER_CONVERSATION`).
    pub max_messages_per_conversation: i64,
    /// Longest a request may take, body included, except chat (`REQUEST_TIMEOUT_SECONDS`).
    pub request_timeout: Duration,
    /// Longest a whole chat turn may take, every provider round included
    /// (`CHAT_TIMEOUT_SECONDS`).
    pub chat_timeout: Duration,
    /// Longest wait for a request head, and keep-alive idle time
    /// (`HEADER_READ_TIMEOUT_SECONDS`).
    pub header_read_timeout: Duration,
    /// Longest wait for in-flight requests at shutdown (`SHUTDOWN_DRAIN_SECONDS`).
    pub shutdown_drain: Duration,
}

/// An OpenAI-compatible Chat Completions endpoint.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL up to and excluding `/chat/completions`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Bearer key; optional because local servers often need none.
    pub api_key: Option<String>,
    /// Model name, e.g. `gpt-4o-mini`.
    pub model: String,
    /// Longest wait for one provider answer.
    pub timeout: Duration,
    /// Largest provider answer body read, in bytes (`LLM_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

// Hand-written so that neither the database password nor the JWT secret can reach a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &"<redacted>")
            .field("jwt_secret", &"<redacted>")
            .field("port", &self.port)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("token_ttl", &self.token_ttl)
            .field("llm", &self.llm)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A setting that is missing or invalid. The message names the variable and the fix, never
/// the value (it may be a secret).
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn invalid(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the configuration through `get` (normally `std::env::var`), so tests can pass
    /// values without touching the process environment. Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());

        let url = get("DATABASE_URL").ok_or_else(|| {
            invalid(
                "DATABASE_URL",
                "is required; set it to postgres://USER:PASSWORD@HOST:5432/DB",
            )
        })?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "DATABASE_URL",
                "must start with postgres:// or postgresql:// (e.g. postgres://USER:PASSWORD@HOST:5432/DB)",
            ));
        }
        // The parser's own error may quote the URL, which holds a password: replace it.
        let database = PgConnectOptions::from_str(&url).map_err(|_| {
            invalid(
                "DATABASE_URL",
                "is not a valid PostgreSQL URL; expected postgres://USER:PASSWORD@HOST:5432/DB",
            )
        })?;

        let jwt_secret = get("JWT_SECRET")
            .ok_or_else(|| {
                invalid(
                    "JWT_SECRET",
                    "is required; generate one with `openssl rand -hex 32`",
                )
            })?
            .into_bytes();
        if jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(invalid(
                "JWT_SECRET",
                format!(
                    "must be at least {MIN_JWT_SECRET_BYTES} bytes long (it has {}); generate one with `openssl rand -hex 32`",
                    jwt_secret.len()
                ),
            ));
        }

        let port = match get("PORT") {
            None => 8000,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(invalid(
                        "PORT",
                        format!("must be a port number from 1 to 65535, got {raw:?}"),
                    ));
                }
            },
        };

        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned());
        if EnvFilter::try_new(&log_level).is_err() {
            return Err(invalid(
                "LOG_LEVEL",
                format!(
                    "{log_level:?} is not a valid level or filter; use error, warn, info, debug or trace"
                ),
            ));
        }

        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("must be json or text, got {other:?}"),
                ));
            }
        };

        let token_ttl = match get("TOKEN_TTL_SECONDS") {
            None => Duration::from_secs(86_400),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(s) if (1..=31_536_000).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(invalid(
                        "TOKEN_TTL_SECONDS",
                        format!(
                            "must be a whole number of seconds from 1 to 31536000, got {raw:?}"
                        ),
                    ));
                }
            },
        };

        let llm = llm_from(&get)?;
        let limits = limits_from(&get)?;

        Ok(Config {
            database,
            jwt_secret,
            port,
            log_level,
            log_format,
            token_ttl,
            llm,
            limits,
        })
    }
}

/// A whole number from `raw` (the value of `var`) within `range`, or `default` when unset.
fn number_in(
    var: &'static str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(
            var,
            format!(
                "must be a whole number{unit} from {} to {} (default {default}), got {raw:?}",
                range.start(),
                range.end()
            ),
        )),
    }
}

fn limits_from(get: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    let min_hash = crate::limits::hashing::HASH_COST_MIB;
    let (hash_memory_mib, hash_memory_source) = match get("HASH_MEMORY_MIB") {
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if (min_hash..=1 << 20).contains(&n) => (n, BudgetSource::Configured),
            _ => {
                return Err(invalid(
                    "HASH_MEMORY_MIB",
                    format!(
                        "must be a whole number of MiB from {min_hash} (one hash) to 1048576, got {raw:?}; unset, it is a quarter of the container's memory limit"
                    ),
                ));
            }
        },
        None => match crate::limits::cgroup_memory_limit() {
            Some(bytes) => ((bytes / 4 / (1 << 20)).max(min_hash), BudgetSource::Cgroup),
            None => (DEFAULT_HASH_MEMORY_MIB, BudgetSource::Fallback),
        },
    };
    let hash_wait = Duration::from_millis(number_in(
        "HASH_WAIT_MS",
        get("HASH_WAIT_MS"),
        2000,
        0..=30_000,
        " of milliseconds",
    )?);
    let rate = |var: &'static str, raw: Option<String>, default: &str| {
        Rate::parse(raw.as_deref().unwrap_or(default)).map_err(|p| invalid(var, p))
    };
    let rates = Rates {
        login_per_ip: rate("LOGIN_RATE_PER_IP", get("LOGIN_RATE_PER_IP"), "30/min")?,
        login_per_account: rate(
            "LOGIN_RATE_PER_ACCOUNT",
            get("LOGIN_RATE_PER_ACCOUNT"),
            "10/min",
        )?,
        register_per_ip: rate("REGISTER_RATE_PER_IP", get("REGISTER_RATE_PER_IP"), "10/h")?,
        chat_per_user: rate("CHAT_RATE_PER_USER", get("CHAT_RATE_PER_USER"), "20/min")?,
    };
    let trusted_proxies = TrustedProxies::parse(&get("TRUSTED_PROXIES").unwrap_or_default())
        .map_err(|p| invalid("TRUSTED_PROXIES", p))?;
    let page_size_max = number_in(
        "PAGE_SIZE_MAX",
        get("PAGE_SIZE_MAX"),
        200,
        1..=1000,
        " of items",
    )?;
    let page_size_default = number_in(
        "PAGE_SIZE_DEFAULT",
        get("PAGE_SIZE_DEFAULT"),
        50.min(page_size_max),
        1..=page_size_max,
        " of items, at most PAGE_SIZE_MAX,",
    )?;
    let max_tasks_per_user = number_in(
        "MAX_TASKS_PER_USER",
        get("MAX_TASKS_PER_USER"),
        1000,
        1..=1_000_000,
        " of tasks",
    )?;
    let max_conversations_per_user = number_in(
        "MAX_CONVERSATIONS_PER_USER",
        get("MAX_CONVERSATIONS_PER_USER"),
        100,
        1..=100_000,
        " of conversations",
    )?;
    let max_messages_per_conversation = number_in(
        "MAX_MESSAGES_PER_CONVERSATION",
        get("MAX_MESSAGES_PER_CONVERSATION"),
        200,
        2..=100_000,
        " of messages (a chat turn stores 2)",
    )?;
    let secs = |var: &'static str, raw: Option<String>, default: u64, max: u64| {
        number_in(var, raw, default, 1..=max, " of seconds").map(Duration::from_secs)
    };
    let request_timeout = secs(
        "REQUEST_TIMEOUT_SECONDS",
        get("REQUEST_TIMEOUT_SECONDS"),
        15,
        600,
    )?;
    let chat_timeout = secs(
        "CHAT_TIMEOUT_SECONDS",
        get("CHAT_TIMEOUT_SECONDS"),
        60,
        3600,
    )?;
    let header_read_timeout = secs(
        "HEADER_READ_TIMEOUT_SECONDS",
        get("HEADER_READ_TIMEOUT_SECONDS"),
        10,
        300,
    )?;
    let shutdown_drain = secs(
        "SHUTDOWN_DRAIN_SECONDS",
        get("SHUTDOWN_DRAIN_SECONDS"),
        20,
        3600,
    )?;
    // Every bound above is far below i64::MAX.
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Limits {
        hash_memory_mib,
        hash_memory_source,
        hash_wait,
        rates,
        trusted_proxies,
        page_size_default: int(page_size_default),
        page_size_max: int(page_size_max),
        max_tasks_per_user: int(max_tasks_per_user),
        max_conversations_per_user: int(max_conversations_per_user),
        max_messages_per_conversation: int(max_messages_per_conversation),
        request_timeout,
        chat_timeout,
        header_read_timeout,
        shutdown_drain,
    })
}

fn llm_from(get: &impl Fn(&str) -> Option<String>) -> Result<Option<LlmConfig>, ConfigError> {
    let base_url = get("LLM_BASE_URL");
    let api_key = get("LLM_API_KEY");
    let model = get("LLM_MODEL");
    let Some(base_url) = base_url else {
        if api_key.is_some() || model.is_some() {
            return Err(invalid(
                "LLM_BASE_URL",
                "is required when LLM_API_KEY or LLM_MODEL is set (e.g. https://api.openai.com/v1 or https://openrouter.ai/api/v1); unset all three to use the built-in interpreter",
            ));
        }
        return Ok(None);
    };
    let base_url = base_url.trim().trim_end_matches('/').to_owned();
    // Not echoed: a URL can carry credentials.
    let parsed = reqwest::Url::parse(&base_url).map_err(|_| {
        invalid(
            "LLM_BASE_URL",
            "is not a valid URL; expected e.g. https://api.openai.com/v1",
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            "LLM_BASE_URL",
            "must be an http:// or https:// URL, e.g. https://api.openai.com/v1",
        ));
    }
    let model = model.ok_or_else(|| {
        invalid(
            "LLM_MODEL",
            "is required when LLM_BASE_URL is set (e.g. gpt-4o-mini)",
        )
    })?;
    let timeout = match get("LLM_TIMEOUT_SECONDS") {
        None => Duration::from_secs(30),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => Duration::from_secs(s),
            _ => {
                return Err(invalid(
                    "LLM_TIMEOUT_SECONDS",
                    format!("must be a whole number of seconds from 1 to 600, got {raw:?}"),
                ));
            }
        },
    };
    let max_response_bytes = number_in(
        "LLM_MAX_RESPONSE_BYTES",
        get("LLM_MAX_RESPONSE_BYTES"),
        1 << 20,
        1024..=64 << 20,
        " of bytes",
    )?;
    Ok(Some(LlmConfig {
        base_url,
        api_key: api_key.map(|k| k.trim().to_owned()),
        model: model.trim().to_owned(),
        timeout,
        max_response_bytes: usize::try_from(max_response_bytes).unwrap_or(usize::MAX),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const URL: &str = "postgres://app:hunter2@db:5432/app";

    #[test]
    fn defaults_apply() {
        let c = lookup(&[("DATABASE_URL", URL), ("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.token_ttl, Duration::from_secs(86_400));
        assert!(c.llm.is_none());
        assert_ne!(c.limits.hash_memory_source, BudgetSource::Configured);
        assert!(c.limits.hash_memory_mib >= crate::limits::hashing::HASH_COST_MIB);
        assert_eq!(c.limits.hash_wait, Duration::from_millis(2000));
        let r = c.limits.rates;
        let shown = |r: Option<Rate>| r.map(|r| r.to_string());
        assert_eq!(shown(r.login_per_ip).as_deref(), Some("30/min"));
        assert_eq!(shown(r.login_per_account).as_deref(), Some("10/min"));
        assert_eq!(shown(r.register_per_ip).as_deref(), Some("10/h"));
        assert_eq!(shown(r.chat_per_user).as_deref(), Some("20/min"));
        assert!(c.limits.trusted_proxies.is_empty());
        let l = &c.limits;
        assert_eq!((l.page_size_default, l.page_size_max), (50, 200));
        assert_eq!(
            (
                l.max_tasks_per_user,
                l.max_conversations_per_user,
                l.max_messages_per_conversation
            ),
            (1000, 100, 200)
        );
        assert_eq!(l.request_timeout, Duration::from_secs(15));
        assert_eq!(l.chat_timeout, Duration::from_secs(60));
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        assert_eq!(l.shutdown_drain, Duration::from_secs(20));
        // A smaller maximum lowers the default with it.
        let c = lookup(&[
            ("DATABASE_URL", URL),
            ("JWT_SECRET", SECRET),
            ("PAGE_SIZE_MAX", "10"),
        ])
        .unwrap();
        assert_eq!(c.limits.page_size_default, 10);
        let c = lookup(&[
            ("DATABASE_URL", URL),
            ("JWT_SECRET", SECRET),
            ("HASH_MEMORY_MIB", "100"),
            ("HASH_WAIT_MS", "0"),
        ])
        .unwrap();
        assert_eq!(c.limits.hash_memory_mib, 100);
        assert_eq!(c.limits.hash_memory_source, BudgetSource::Configured);
        assert_eq!(c.limits.hash_wait, Duration::ZERO);
    }

    #[test]
    fn llm_settings_are_all_or_nothing() {
        let base = [("DATABASE_URL", URL), ("JWT_SECRET", SECRET)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            lookup(&v)
        };
        let c = with(&[
            ("LLM_BASE_URL", "https://llm.example/v1/"),
            ("LLM_MODEL", "m"),
            ("LLM_API_KEY", "sk-hunter2"),
        ])
        .unwrap();
        let llm = c.llm.clone().unwrap();
        assert_eq!(llm.base_url, "https://llm.example/v1");
        assert!(!format!("{c:?}").contains("sk-hunter2"));
        // An empty key (as a secrets step may pass) counts as unset.
        let c = with(&[("LLM_API_KEY", "")]).unwrap();
        assert!(c.llm.is_none());
        assert_eq!(
            with(&[("LLM_API_KEY", "sk-hunter2")]).unwrap_err().var,
            "LLM_BASE_URL"
        );
        assert_eq!(
            with(&[("LLM_BASE_URL", "https://x/v1")]).unwrap_err().var,
            "LLM_MODEL"
        );
        let e = with(&[("LLM_BASE_URL", "ftp://x"), ("LLM_MODEL", "m")]).unwrap_err();
        assert_eq!(e.var, "LLM_BASE_URL");
        let e = with(&[
            ("LLM_BASE_URL", "https://x/v1"),
            ("LLM_MODEL", "m"),
            ("LLM_TIMEOUT_SECONDS", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "LLM_TIMEOUT_SECONDS");
    }

    #[test]
    fn each_bad_variable_is_named_without_its_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("JWT_SECRET", SECRET)], "DATABASE_URL"),
            (
                &[
                    ("DATABASE_URL", "mysql://u:hunter2@h/d"),
                    ("JWT_SECRET", SECRET),
                ],
                "DATABASE_URL",
            ),
            (&[("DATABASE_URL", URL)], "JWT_SECRET"),
            (
                &[("DATABASE_URL", URL), ("JWT_SECRET", "hunter2")],
                "JWT_SECRET",
            ),
            (
                &[("DATABASE_URL", URL), ("JWT_SECRET", SECRET), ("PORT", "0")],
                "PORT",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("LOG_FORMAT", "xml"),
                ],
                "LOG_FORMAT",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("LOG_LEVEL", "loud["),
                ],
                "LOG_LEVEL",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("TOKEN_TTL_SECONDS", "-1"),
                ],
                "TOKEN_TTL_SECONDS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("HASH_MEMORY_MIB", "19"),
                ],
                "HASH_MEMORY_MIB",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("HASH_WAIT_MS", "soon"),
                ],
                "HASH_WAIT_MS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("LOGIN_RATE_PER_IP", "10"),
                ],
                "LOGIN_RATE_PER_IP",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("LOGIN_RATE_PER_ACCOUNT", "1/day"),
                ],
                "LOGIN_RATE_PER_ACCOUNT",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("REGISTER_RATE_PER_IP", "-3/h"),
                ],
                "REGISTER_RATE_PER_IP",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("CHAT_RATE_PER_USER", "lots"),
                ],
                "CHAT_RATE_PER_USER",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("TRUSTED_PROXIES", "10.0.0.0/8,frontend"),
                ],
                "TRUSTED_PROXIES",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("PAGE_SIZE_MAX", "0"),
                ],
                "PAGE_SIZE_MAX",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("PAGE_SIZE_MAX", "10"),
                    ("PAGE_SIZE_DEFAULT", "20"),
                ],
                "PAGE_SIZE_DEFAULT",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("MAX_TASKS_PER_USER", "0"),
                ],
                "MAX_TASKS_PER_USER",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("MAX_CONVERSATIONS_PER_USER", "many"),
                ],
                "MAX_CONVERSATIONS_PER_USER",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("MAX_MESSAGES_PER_CONVERSATION", "1"),
                ],
                "MAX_MESSAGES_PER_CONVERSATION",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("REQUEST_TIMEOUT_SECONDS", "0"),
                ],
                "REQUEST_TIMEOUT_SECONDS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("CHAT_TIMEOUT_SECONDS", "1h"),
                ],
                "CHAT_TIMEOUT_SECONDS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("HEADER_READ_TIMEOUT_SECONDS", "301"),
                ],
                "HEADER_READ_TIMEOUT_SECONDS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("SHUTDOWN_DRAIN_SECONDS", "-5"),
                ],
                "SHUTDOWN_DRAIN_SECONDS",
            ),
            (
                &[
                    ("DATABASE_URL", URL),
                    ("JWT_SECRET", SECRET),
                    ("LLM_BASE_URL", "https://llm.example/v1"),
                    ("LLM_MODEL", "m"),
                    ("LLM_MAX_RESPONSE_BYTES", "10"),
                ],
                "LLM_MAX_RESPONSE_BYTES",
            ),
        ];
        for (pairs, var) in cases {
            let err = lookup(pairs).unwrap_err();
            assert_eq!(err.var, *var);
            let text = err.to_string();
            assert!(text.starts_with(var), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = lookup(&[("DATABASE_URL", URL), ("JWT_SECRET", SECRET)]).unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("hunter2") && !text.contains(SECRET),
            "{text}"
        );
    }
}
