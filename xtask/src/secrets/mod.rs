//! The app's Secret: resolve each key from the environment, the gitignored `.env`, a prompt on
//! a terminal, or a stable generated value; validate; digest (keyed); and build the manifest that
//! goes to `kubectl apply` on stdin. Values never reach argv, output, events or state files:
//! only the name of each value's source is ever shown. `LLM_BASE_URL` is one of them, since a
//! URL may carry credentials.

pub mod digest;
pub mod dotenv;
pub mod llm;
pub mod store;
pub mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use value::SecretValue;

/// Name of the Kubernetes Secret the chart reads.
pub const SECRET_NAME: &str = "todo-app-secrets";
/// Annotation on the Secret carrying the keyed digest of its data.
pub const DIGEST_ANNOTATION: &str = "xtask.todo-app/secret-digest";
/// Secret keys, as in the API contract.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// HS256 signing key of the backend.
pub const JWT_SECRET: &str = "JWT_SECRET";
/// HMAC key of the frontend's CSRF tokens; one for every frontend replica.
pub const CSRF_SECRET: &str = "CSRF_SECRET";
/// Password of the in-cluster PostgreSQL.
pub const POSTGRES_PASSWORD: &str = "POSTGRES_PASSWORD";
/// Optional key for the chat assistant.
pub const LLM_API_KEY: &str = "LLM_API_KEY";
/// Optional base URL of the chat assistant's provider: a secret, as it may carry credentials.
pub const LLM_BASE_URL: &str = llm::LLM_BASE_URL;
/// Minimum length of the JWT secret, in bytes.
pub const MIN_JWT_BYTES: usize = 32;
/// Minimum length of the CSRF secret, in bytes (the frontend refuses shorter ones).
pub const MIN_CSRF_BYTES: usize = 32;

/// Where one value came from (the only thing ever printed about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable of the same name.
    Env,
    /// The `.env` file.
    DotEnv(PathBuf),
    /// Typed at the terminal prompt.
    Prompt,
    /// Generated on an earlier run and reused from this file.
    Stored(PathBuf),
    /// Reused from the Secret already in the cluster (keeps an initialized database's password).
    Cluster,
    /// Freshly generated from OS randomness (and stored for reuse).
    Generated(PathBuf),
    /// Built from other values (the in-cluster DATABASE_URL).
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env => write!(f, "environment variable"),
            Source::DotEnv(p) => write!(f, "{}", p.display()),
            Source::Prompt => write!(f, "prompt"),
            Source::Stored(p) => write!(f, "generated earlier ({})", p.display()),
            Source::Cluster => write!(f, "existing cluster Secret"),
            Source::Generated(p) => write!(f, "generated now (stored in {})", p.display()),
            Source::Derived(what) => write!(f, "derived from {what}"),
        }
    }
}

/// The in-cluster (or in-network) PostgreSQL the derived DATABASE_URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalDb {
    /// Service (Kubernetes) or container (Docker) host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database user.
    pub user: String,
    /// Database name.
    pub database: String,
}

/// Where the database lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbMode {
    /// External when DATABASE_URL is supplied (env or `.env`), else in-cluster.
    Auto,
    /// External: DATABASE_URL is required (prompted for on a terminal).
    External,
}

/// Everything resolution reads, passed in so tests need no process-global state.
pub struct Inputs<'a> {
    /// Environment lookup (production: `std::env::var`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The gitignored `.env` at the repository root.
    pub dotenv: PathBuf,
    /// Whether we may prompt (stdin is a terminal).
    pub interactive: bool,
    /// Prompt implementation (production: no-echo terminal read).
    pub prompt: &'a dyn Fn(&str) -> Result<String>,
    /// `target/xtask/<target-id>/generated-secrets.env`.
    pub generated_store: PathBuf,
    /// Values of the Secret already deployed (asked only when a generated value is missing).
    pub existing: &'a dyn Fn() -> Result<BTreeMap<String, SecretValue>>,
    /// The internal database for in-cluster mode.
    pub internal_db: InternalDb,
    /// External or auto.
    pub mode: DbMode,
}

/// One resolved key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The value.
    pub value: SecretValue,
    /// Where it came from.
    pub source: Source,
}

/// The resolved Secret.
#[derive(Debug, Clone)]
pub struct SecretSet {
    /// Key → value and source (optional keys absent when not supplied).
    pub values: BTreeMap<&'static str, Resolved>,
    /// True when DATABASE_URL points at an external database.
    pub external_db: bool,
    /// The chat assistant's provider settings, validated with the key (its base URL is also
    /// in `values`, as a secret).
    pub llm: llm::LlmSettings,
}

/// A production prompt: no echo, reads from the terminal.
pub fn terminal_prompt(label: &str) -> Result<String> {
    rpassword::prompt_password(format!("{label}: ")).context("could not read from the terminal")
}

/// Resolves every key; errors name the key, its source and the fix, never the value.
pub fn resolve(inputs: &Inputs<'_>) -> Result<SecretSet> {
    let dotenv = dotenv::read(&inputs.dotenv)?;
    let stored = store::read_generated(&inputs.generated_store)?;
    let mut generated_now = BTreeMap::new();
    let mut existing: Option<BTreeMap<String, SecretValue>> = None;
    let supplied = |key: &str| -> Option<Resolved> {
        if let Some(v) = (inputs.env)(key).filter(|v| !v.is_empty()) {
            return Some(Resolved {
                value: SecretValue::new(v),
                source: Source::Env,
            });
        }
        dotenv.get(key).filter(|v| !v.is_empty()).map(|v| Resolved {
            value: v.clone(),
            source: Source::DotEnv(inputs.dotenv.clone()),
        })
    };
    let mut generatable = |key: &'static str| -> Result<Resolved> {
        if let Some(r) = supplied(key) {
            return Ok(r);
        }
        if let Some(v) = stored.get(key) {
            return Ok(Resolved {
                value: v.clone(),
                source: Source::Stored(inputs.generated_store.clone()),
            });
        }
        if existing.is_none() {
            existing = Some((inputs.existing)()?);
        }
        if let Some(v) = existing
            .as_ref()
            .and_then(|e| e.get(key))
            .filter(|v| !v.is_empty())
        {
            generated_now.insert(key.to_owned(), v.clone());
            return Ok(Resolved {
                value: v.clone(),
                source: Source::Cluster,
            });
        }
        let v = SecretValue::new(store::random_hex()?);
        generated_now.insert(key.to_owned(), v.clone());
        Ok(Resolved {
            value: v,
            source: Source::Generated(inputs.generated_store.clone()),
        })
    };

    let mut values = BTreeMap::new();
    // Generated, stored and rotated alike: the backend's token key and the frontend's CSRF key.
    for (key, min) in [(JWT_SECRET, MIN_JWT_BYTES), (CSRF_SECRET, MIN_CSRF_BYTES)] {
        let r = generatable(key)?;
        if r.value.len() < min {
            bail!(
                "{key} from {} is {} bytes; it must be at least {min}. Fix: set a longer value \
                 (e.g. `openssl rand -hex 32`) or unset it to have one generated",
                r.source,
                r.value.len()
            );
        }
        values.insert(key, r);
    }

    let external = match (supplied(DATABASE_URL), inputs.mode) {
        (Some(url), _) => Some(url),
        (None, DbMode::External) if inputs.interactive => Some(Resolved {
            value: SecretValue::new((inputs.prompt)(
                "DATABASE_URL of the external PostgreSQL (postgres://user:password@host:5432/db)",
            )?),
            source: Source::Prompt,
        }),
        (None, DbMode::External) => bail!(
            "{DATABASE_URL} is required for an external database. Fix: export it or put it in {}",
            inputs.dotenv.display()
        ),
        (None, DbMode::Auto) => None,
    };
    let external_db = external.is_some();
    match external {
        Some(url) => {
            validate_database_url(&url.value).with_context(|| {
                format!(
                    "{DATABASE_URL} from {} is not a valid PostgreSQL URL",
                    url.source
                )
            })?;
            values.insert(DATABASE_URL, url);
        }
        None => {
            let pw = generatable(POSTGRES_PASSWORD)?;
            let url = internal_url(&inputs.internal_db, &pw.value)?;
            values.insert(
                DATABASE_URL,
                Resolved {
                    value: url,
                    source: Source::Derived(
                        "POSTGRES_PASSWORD and the in-cluster database service",
                    ),
                },
            );
            values.insert(POSTGRES_PASSWORD, pw);
        }
    }
    if let Some(llm) = supplied(LLM_API_KEY) {
        values.insert(LLM_API_KEY, llm);
    }
    // Before anything is stored or deployed: a key without its provider settings would only
    // surface as a backend that refuses to start.
    let llm_supplied = |k: &str| supplied(k).map(|r| (r.value.expose().to_owned(), r.source));
    let llm = llm::resolve(
        &llm_supplied,
        values.get(LLM_API_KEY).map(|r| r.source.clone()),
    )?;
    if let Some(base) = &llm.base_url {
        values.insert(LLM_BASE_URL, base.clone());
    }

    if !generated_now.is_empty() {
        let mut all = stored.clone();
        all.extend(generated_now);
        store::write_generated(&inputs.generated_store, &all)?;
    }
    Ok(SecretSet {
        values,
        external_db,
        llm,
    })
}

/// Validates an external DATABASE_URL without ever putting the value in the error.
pub fn validate_database_url(value: &SecretValue) -> Result<()> {
    let url = url::Url::parse(value.expose())
        .map_err(|e| anyhow::anyhow!("it does not parse as a URL ({e})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        bail!(
            "its scheme is {:?}; expected postgres:// or postgresql://",
            url.scheme()
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("it has no host; expected postgres://user:password@host:5432/database");
    }
    if url.path().trim_start_matches('/').is_empty() {
        bail!("it names no database; expected postgres://user:password@host:5432/database");
    }
    Ok(())
}

/// The DATABASE_URL without user, password or query (`postgres://host:port/db`): what the
/// chart's `database.external.url` needs to open the backend's egress, safe to pass as a value.
pub fn public_database_url(value: &SecretValue) -> Result<String> {
    let url = url::Url::parse(value.expose())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL does not parse as a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port().unwrap_or(5432);
    Ok(format!("{}://{host}:{port}{}", url.scheme(), url.path()))
}

/// Characters left as-is in userinfo: RFC 3986 unreserved.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `postgres://USER:PASSWORD@HOST:PORT/DB` with the user and password percent-encoded.
pub fn internal_url(db: &InternalDb, password: &SecretValue) -> Result<SecretValue> {
    let url = format!(
        "postgres://{}:{}@{}:{}/{}",
        utf8_percent_encode(&db.user, USERINFO),
        utf8_percent_encode(password.expose(), USERINFO),
        db.host,
        db.port,
        utf8_percent_encode(&db.database, USERINFO),
    );
    let value = SecretValue::new(url);
    validate_database_url(&value).context("internal DATABASE_URL")?;
    Ok(value)
}

impl SecretSet {
    /// One line per key: `KEY: source`. Never a value.
    pub fn report(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, r)| format!("{k}: {}", r.source))
            .collect()
    }

    /// The keyed digest of all values.
    pub fn digest(&self, key: &[u8]) -> String {
        digest::keyed_digest(key, self.values.iter().map(|(k, r)| (*k, &r.value)))
    }

    /// `(KEY, value)` pairs, e.g. for a container's environment (via an env file, never argv).
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &SecretValue)> {
        self.values.iter().map(|(k, r)| (*k, &r.value))
    }

    /// The Secret manifest (JSON) for `kubectl apply -f -`, named `name`.
    pub fn manifest(&self, name: &str, namespace: &str, digest: &str) -> Manifest {
        let data: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, r)| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(r.value.expose());
                ((*k).to_owned(), serde_json::Value::String(b64))
            })
            .collect();
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    crate::tools::kubectl::MANAGED_BY_LABEL: crate::tools::kubectl::MANAGED_BY_VALUE,
                    "app.kubernetes.io/part-of": "todo-app",
                },
                "annotations": { DIGEST_ANNOTATION: digest },
            },
            "data": data,
        });
        Manifest(doc.to_string().into_bytes())
    }
}

/// A serialized Secret manifest. Holds secret values, so its `Debug` is redacted.
pub struct Manifest(Vec<u8>);

impl Manifest {
    /// Wraps a serialized manifest that holds secret values.
    pub fn new(bytes: Vec<u8>) -> Manifest {
        Manifest(bytes)
    }

    /// The bytes, for stdin only.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Manifest(<redacted, {} bytes>)", self.0.len())
    }
}

/// Decodes the `data` of a Secret from `kubectl get secret -o json`.
pub fn decode_secret_data(secret: &serde_json::Value) -> BTreeMap<String, SecretValue> {
    let Some(data) = secret.get("data").and_then(|d| d.as_object()) else {
        return BTreeMap::new();
    };
    data.iter()
        .filter_map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?;
            Some((k.clone(), SecretValue::new(String::from_utf8(bytes).ok()?)))
        })
        .collect()
}

/// Default paths: `<root>/.env` and `<state_dir>/generated-secrets.env`.
pub fn default_paths(root: &Path, state_dir: &Path) -> (PathBuf, PathBuf) {
    (root.join(".env"), state_dir.join("generated-secrets.env"))
}

#[cfg(test)]
mod tests;
