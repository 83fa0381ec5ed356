//! The container registry images go through (`--registry HOST[:PORT]/PATH`): where an image is
//! pushed and looked up, how the Registry HTTP API and `docker` reach it, and with which
//! credentials ([`credentials`]). The HTTP client itself is [`crate::tools::registry`].

pub mod credentials;
pub mod pull_secret;
pub mod push;

use std::fmt;
use std::sync::Mutex;

use anyhow::Result;
use xshell::Shell;

use crate::secrets::SecretValue;
use crate::tools::registry::{Client, Lookup};

pub use credentials::Credentials;
#[cfg(test)]
pub use credentials::Source;

/// Docker Hub's names: images are `docker.io/...`, the API is at `registry-1.docker.io`, and
/// credentials are stored under the index URL.
const HUB_NAMES: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
const HUB_API: &str = "registry-1.docker.io";
const HUB_CREDENTIALS_KEY: &str = "https://index.docker.io/v1/";

/// A validated `--registry` value: `HOST[:PORT]` and an optional repository path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `host` or `host:port`, as given (lowercase).
    host: String,
    /// `team/project` (no leading or trailing `/`), or empty.
    path: String,
}

impl Address {
    /// Parses `HOST[:PORT]/PATH` with Docker's reference rules: the host has a `.` or a `:port`
    /// or is `localhost`; the path is lowercase repository components. The error quotes `input`
    /// and says what to give instead.
    pub fn parse(input: &str) -> Result<Address, String> {
        let bad = |why: &str| {
            format!(
                "`{input}` is not a registry: {why}; give HOST[:PORT]/PATH, e.g. `ghcr.io/acme` \
                 or `127.0.0.1:5000/test`"
            )
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.contains("://") {
            return Err(bad(
                "leave out the scheme (HTTPS is used, plain HTTP only for localhost)",
            ));
        }
        let text = text.strip_suffix('/').unwrap_or(text);
        let (host, path) = text.split_once('/').unwrap_or((text, ""));
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                (name, Some(port))
            }
            _ => (host, None),
        };
        if let Some(port) = port
            && !port.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(bad(&format!(
                "the port `{port}` is not a number from 1 to 65535"
            )));
        }
        let name_ok = !name.is_empty()
            && (name.starts_with('[') && name.ends_with(']')
                || name.split('.').all(|label| {
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                }));
        if !name_ok {
            return Err(bad(&format!("`{name}` is not a host name")));
        }
        if !(name.contains('.') || port.is_some() || name == "localhost" || name.starts_with('[')) {
            return Err(bad(&format!(
                "`{name}` has no `.` or port, so Docker would read it as a Docker Hub account"
            )));
        }
        if path.contains(':') || path.contains('@') {
            return Err(bad(
                "the path must not carry a tag or digest (the pipeline adds them)",
            ));
        }
        if !path.is_empty() && !path.split('/').all(valid_component) {
            return Err(bad(&format!(
                "the path `{path}` must be lowercase letters, digits and `._-` between `/`"
            )));
        }
        Ok(Address {
            host: host.to_ascii_lowercase(),
            path: path.to_owned(),
        })
    }

    /// `host[:port]` as Docker names it (`docker login HOST`, image references).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository name of `image` in the registry (`PATH/image`), as the HTTP API wants it.
    pub fn repository(&self, image: &str) -> String {
        if self.path.is_empty() {
            image.to_owned()
        } else {
            format!("{}/{image}", self.path)
        }
    }

    /// The full image name: `HOST[:PORT]/PATH/image`.
    pub fn image(&self, image: &str) -> String {
        format!("{}/{}", self.host, self.repository(image))
    }

    /// Whether the host is this machine (`localhost`, `127.0.0.0/8`, `::1`): Docker talks plain
    /// HTTP to those without configuration, and so do we.
    pub fn is_loopback(&self) -> bool {
        let name = self
            .host
            .rsplit_once(':')
            .filter(|(n, _)| !n.ends_with(']') || self.host.starts_with('['))
            .map_or(self.host.as_str(), |(n, _)| n);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether this is Docker Hub.
    fn is_hub(&self) -> bool {
        HUB_NAMES.contains(&self.host.as_str())
    }

    /// The host the Registry HTTP API answers on.
    pub fn api_host(&self) -> &str {
        if self.is_hub() { HUB_API } else { &self.host }
    }

    /// The key Docker's config and credential helpers store this registry's credentials under.
    pub fn credentials_key(&self) -> &str {
        if self.is_hub() {
            HUB_CREDENTIALS_KEY
        } else {
            &self.host
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}/{}", self.host, self.path)
        }
    }
}

/// A repository path component (the distribution reference grammar's `path-component`, loosely:
/// lowercase alphanumerics separated by `.`, `_`, `__` or dashes).
fn valid_component(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The registry a run pushes to and looks images up in, with the command line's settings.
/// Credentials are resolved on first use and kept for the run only, in memory, as are the
/// authorizations the registry took (a token endpoint's tokens, by repository).
#[derive(Debug)]
pub struct Registry {
    /// Where.
    pub address: Address,
    /// Ask the registry whether an image exists before building it (`--no-registry-cache`
    /// turns this and every other call of the HTTP API off).
    pub lookup: bool,
    /// Plain HTTP to a registry that is not on this machine (`--registry-insecure`).
    pub insecure: bool,
    credentials: Mutex<Option<Option<Credentials>>>,
    authorizations: Mutex<std::collections::BTreeMap<String, SecretValue>>,
}

impl PartialEq for Registry {
    fn eq(&self, other: &Self) -> bool {
        (&self.address, self.lookup, self.insecure)
            == (&other.address, other.lookup, other.insecure)
    }
}

impl Eq for Registry {}

impl Registry {
    /// The registry at `address`.
    pub fn new(address: Address, lookup: bool, insecure: bool) -> Registry {
        Registry {
            address,
            lookup,
            insecure,
            credentials: Mutex::new(None),
            authorizations: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// `http` for this machine's registries or with `--registry-insecure`, else `https`.
    pub fn scheme(&self) -> &'static str {
        if self.insecure || self.address.is_loopback() {
            "http"
        } else {
            "https"
        }
    }

    /// The credentials for this registry (environment, then Docker's config and credential
    /// helpers), or `None` for anonymous access; resolved once per run.
    pub fn credentials(&self, sh: &Shell) -> Result<Option<Credentials>> {
        let mut cached = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = cached.as_ref() {
            return Ok(found.clone());
        }
        let found = credentials::resolve(sh, &self.address)?;
        *cached = Some(found.clone());
        Ok(found)
    }

    /// The `Authorization` the registry last took for `repository` this run, if any: a token
    /// serves every request of its scope until it expires, so a look-up need not fetch another.
    pub fn authorization(&self, repository: &str) -> Option<SecretValue> {
        self.authorizations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(repository)
            .cloned()
    }

    /// Keeps `authorization` for `repository` (`None`: forgets it, as after a 401 to it).
    pub fn set_authorization(&self, repository: &str, authorization: Option<SecretValue>) {
        let mut kept = self
            .authorizations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match authorization {
            Some(a) => kept.insert(repository.to_owned(), a),
            None => kept.remove(repository),
        };
    }
}

impl Registry {
    /// Whether `image:tag` is in the registry, and its digest (the Registry HTTP API, with this
    /// run's credentials).
    pub fn lookup(&self, sh: &Shell, image: &str, tag: &str) -> Result<Lookup> {
        let credentials = self.credentials(sh)?;
        Client::new(self, credentials).manifest_digest(&self.address.repository(image), tag)
    }

    /// The labels of `image:tag` in the registry, or `None` when it has no such tag.
    pub fn labels(
        &self,
        sh: &Shell,
        image: &str,
        tag: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        let credentials = self.credentials(sh)?;
        Client::new(self, credentials).image_labels(&self.address.repository(image), tag)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_docker_references() {
        let a = Address::parse("127.0.0.1:5000/test").unwrap();
        assert_eq!(a.host(), "127.0.0.1:5000");
        assert_eq!(a.repository("todo-backend"), "test/todo-backend");
        assert_eq!(a.image("todo-backend"), "127.0.0.1:5000/test/todo-backend");
        assert!(a.is_loopback());
        assert_eq!(a.to_string(), "127.0.0.1:5000/test");
        let g = Address::parse("ghcr.io/acme/apps/").unwrap();
        assert_eq!(g.image("x"), "ghcr.io/acme/apps/x");
        assert!(!g.is_loopback());
        assert_eq!(g.credentials_key(), "ghcr.io");
        let hub = Address::parse("docker.io/acme").unwrap();
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.credentials_key(), "https://index.docker.io/v1/");
        assert!(Address::parse("localhost:5000").unwrap().is_loopback());
        assert!(Address::parse("[::1]:5000/x").unwrap().is_loopback());
        assert_eq!(Address::parse("localhost").unwrap().repository("i"), "i");
    }

    #[test]
    fn bad_addresses_are_quoted_with_the_fix() {
        for (input, why) in [
            ("", "empty"),
            ("https://ghcr.io/acme", "scheme"),
            ("acme/apps", "Docker Hub account"),
            ("ghcr.io:http/x", "port"),
            ("ghcr.io:0/x", "port"),
            ("ghcr.io/Acme", "lowercase"),
            ("ghcr.io/acme:v1", "tag or digest"),
            ("gh cr.io/x", "host name"),
            ("ghcr.io//x", "lowercase"),
        ] {
            let err = Address::parse(input).unwrap_err();
            assert!(err.contains(&format!("`{input}`")), "{err}");
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("HOST[:PORT]/PATH"), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
