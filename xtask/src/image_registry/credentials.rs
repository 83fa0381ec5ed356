//! A registry's credentials, found as Docker finds them, or in our environment variables.
//!
//! Order: `XTASK_REGISTRY_USERNAME` and `XTASK_REGISTRY_PASSWORD` (both, e.g. from a CI secret);
//! else the user's Docker config (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`)
//! the way the Docker CLI reads it: the registry's `credHelpers` entry, else `credsStore`, each
//! a `docker-credential-<helper> get` program given the registry on stdin; else its `auths`
//! entry. None of them: anonymous access.
//!
//! The password is a [`SecretValue`]: it goes to stdin (`docker login --password-stdin`, a
//! Secret's manifest) and into HTTP headers only, never into an argument, a log line or an error.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use xshell::{Shell, cmd};

use super::Address;
use crate::secrets::SecretValue;

/// The environment variable holding the registry user.
pub const USERNAME_ENV: &str = "XTASK_REGISTRY_USERNAME";
/// The environment variable holding the registry password or token.
pub const PASSWORD_ENV: &str = "XTASK_REGISTRY_PASSWORD";

/// Where credentials came from (named in errors so the user knows what to fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `XTASK_REGISTRY_USERNAME` / `XTASK_REGISTRY_PASSWORD`.
    Environment,
    /// The `auths` entry of this Docker config file.
    DockerConfig(PathBuf),
    /// `docker-credential-<name>`.
    Helper(String),
}

impl Source {
    /// Whether the Docker CLI finds these credentials on its own (so no `docker login` is needed).
    pub fn known_to_docker(&self) -> bool {
        !matches!(self, Source::Environment)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => write!(f, "{USERNAME_ENV}/{PASSWORD_ENV}"),
            Source::DockerConfig(p) => write!(f, "the `auths` of {}", p.display()),
            Source::Helper(h) => write!(f, "docker-credential-{h}"),
        }
    }
}

/// A user and password (or token) for one registry.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user name (not secret: shown in errors).
    pub username: String,
    /// The password or token.
    pub password: SecretValue,
    /// Where they came from.
    pub source: Source,
}

impl Credentials {
    /// `Basic base64(user:password)`, for the HTTP API.
    pub fn basic_header(&self) -> SecretValue {
        SecretValue::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                self.username,
                self.password.expose()
            ))
        ))
    }
}

/// The credentials for `address`, or `None` when nothing provides any.
pub fn resolve(sh: &Shell, address: &Address) -> Result<Option<Credentials>> {
    let user = sh.var(USERNAME_ENV).ok().filter(|v| !v.is_empty());
    let password = sh.var(PASSWORD_ENV).ok().filter(|v| !v.is_empty());
    match (user, password) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username,
                password: SecretValue::new(password),
                source: Source::Environment,
            }));
        }
        (Some(_), None) => bail!(
            "{USERNAME_ENV} is set but {PASSWORD_ENV} is not; set both, or neither to use Docker's stored credentials"
        ),
        (None, Some(_)) => bail!(
            "{PASSWORD_ENV} is set but {USERNAME_ENV} is not; set both, or neither to use Docker's stored credentials"
        ),
        (None, None) => {}
    }
    let Some(path) = docker_config_path(sh) else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the Docker config {}", path.display()));
        }
    };
    let config: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "the Docker config {} is not valid JSON; fix or move it",
            path.display()
        )
    })?;
    from_config(sh, &config, &path, address.credentials_key())
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn docker_config_path(sh: &Shell) -> Option<PathBuf> {
    if let Ok(dir) = sh.var("DOCKER_CONFIG")
        && !dir.is_empty()
    {
        return Some(Path::new(&dir).join("config.json"));
    }
    let home = sh.var("HOME").ok().filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".docker").join("config.json"))
}

/// What a parsed Docker config says about `key`, as the Docker CLI reads it.
fn from_config(
    sh: &Shell,
    config: &serde_json::Value,
    path: &Path,
    key: &str,
) -> Result<Option<Credentials>> {
    let helper = config
        .pointer("/credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(serde_json::Value::as_str)
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return from_helper(sh, helper, key);
    }
    let Some(auths) = config.get("auths").and_then(serde_json::Value::as_object) else {
        return Ok(None);
    };
    // The CLI stores some registries with their scheme (`https://host`); match either form.
    let entry = [
        key.to_owned(),
        format!("https://{key}"),
        format!("http://{key}"),
    ]
    .iter()
    .find_map(|k| auths.get(k));
    let Some(entry) = entry else {
        return Ok(None);
    };
    let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
    let source = Source::DockerConfig(path.to_path_buf());
    if let Some(auth) = field("auth").filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .with_context(|| {
                format!("the `auth` of `{key}` in {} is not base64 of USER:PASSWORD; run `docker login {key}` again", path.display())
            })?;
        let Some((username, password)) = decoded.split_once(':') else {
            bail!(
                "the `auth` of `{key}` in {} is not USER:PASSWORD; run `docker login {key}` again",
                path.display()
            );
        };
        return Ok(Some(Credentials {
            username: username.to_owned(),
            password: SecretValue::new(password),
            source,
        }));
    }
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(Some(Credentials {
            username: username.to_owned(),
            password: SecretValue::new(password),
            source,
        }));
    }
    if field("identitytoken").is_some() {
        bail!(
            "the Docker config {} holds an identity token for `{key}`, which the pipeline does not \
             use; set {USERNAME_ENV} and {PASSWORD_ENV} (a token as the password) instead",
            path.display()
        );
    }
    Ok(None)
}

/// `docker-credential-<helper> get`, the registry on stdin; its answer's `Secret` never leaves
/// memory. "Not found" answers are no credentials.
fn from_helper(sh: &Shell, helper: &str, key: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let out = cmd!(sh, "{program} get")
        .stdin(key)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| {
            format!(
                "the Docker config names the credential helper `{helper}`, but `{program}` cannot \
                 be run; install it or remove it from the Docker config"
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper's protocol: "credentials not found in native keychain" on stdout.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{program} get` failed for `{key}` ({}): {}",
            out.status,
            stderr.lines().next().unwrap_or("no message")
        );
    }
    // Never quote the answer in an error: it holds the secret.
    let answer: serde_json::Value = serde_json::from_str(&stdout).ok().with_context(|| {
        format!("`{program} get` answered something other than JSON for `{key}`")
    })?;
    let username = answer.get("Username").and_then(serde_json::Value::as_str);
    let secret = answer.get("Secret").and_then(serde_json::Value::as_str);
    match (username, secret) {
        (Some("<token>"), _) => bail!(
            "`{program}` holds an identity token for `{key}`, which the pipeline does not use; set \
             {USERNAME_ENV} and {PASSWORD_ENV} (a token as the password) instead"
        ),
        (Some(u), Some(s)) if !u.is_empty() && !s.is_empty() => Ok(Some(Credentials {
            username: u.to_owned(),
            password: SecretValue::new(s),
            source: Source::Helper(helper.to_owned()),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        let sh = Shell::new().unwrap();
        sh.set_var(USERNAME_ENV, "");
        sh.set_var(PASSWORD_ENV, "");
        sh
    }

    #[test]
    fn auths_entries_decode_with_or_without_a_scheme() {
        let sh = shell();
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret:with:colons");
        let config = serde_json::json!({"auths": {"https://ghcr.io": {"auth": auth}}});
        let c = from_config(&sh, &config, Path::new("/c.json"), "ghcr.io")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "ci");
        assert_eq!(c.password.expose(), "s3cret:with:colons");
        assert_eq!(c.source, Source::DockerConfig("/c.json".into()));
        assert!(
            from_config(&sh, &config, Path::new("/c.json"), "quay.io")
                .unwrap()
                .is_none()
        );
        let shown = format!("{c:?} {}", c.source);
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn helpers_get_the_registry_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        // Answers only for ghcr.io, as real helpers do.
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread host\n\
             if [ \"$host\" = ghcr.io ]; then echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"bot\",\"Secret\":\"tok\"}';\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sh = shell();
        sh.set_var("PATH", dir.path());
        let config = serde_json::json!({"credHelpers": {"ghcr.io": "fake"}, "credsStore": "fake",
            "auths": {"ghcr.io": {"auth": "eDp5"}}});
        let c = from_config(&sh, &config, Path::new("/c.json"), "ghcr.io")
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("bot", "tok"));
        assert_eq!(c.source, Source::Helper("fake".into()));
        assert!(
            from_config(&sh, &config, Path::new("/c.json"), "quay.io")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_environment_wins_and_must_be_complete() {
        let sh = shell();
        sh.set_var("HOME", "/nonexistent");
        sh.set_var("DOCKER_CONFIG", "");
        let address = Address::parse("ghcr.io/acme").unwrap();
        assert!(resolve(&sh, &address).unwrap().is_none());
        sh.set_var(USERNAME_ENV, "ci");
        let err = resolve(&sh, &address).unwrap_err().to_string();
        assert!(err.contains(PASSWORD_ENV), "{err}");
        sh.set_var(PASSWORD_ENV, "pw");
        let c = resolve(&sh, &address).unwrap().unwrap();
        assert_eq!(c.source, Source::Environment);
        assert!(!c.source.known_to_docker());
    }
}
