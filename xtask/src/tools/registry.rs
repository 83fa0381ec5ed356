//! A client of the Registry HTTP API v2 (the OCI distribution spec), for the one question the
//! pipeline asks: does `<name>:<tag>` exist, and with which digest?
//!
//! `HEAD /v2/<name>/manifests/<reference>` with an `Accept` header naming the OCI and Docker v2
//! manifest and index types (a registry answers 404 for a type it is not told the client takes),
//! the digest from `Docker-Content-Digest`. Authentication as the registry asks in its 401's
//! `WWW-Authenticate`: `Basic`, or `Bearer realm=…,service=…,scope=…` (ghcr.io, Docker Hub,
//! distribution with token auth): a token from the realm for `repository:<name>:pull`, fetched
//! with the credentials as Basic, then the request again with `Authorization: Bearer <token>`.
//! The authorization the registry took is kept (in memory, for the run, per repository) and sent
//! first on the next request there; a 401 to it (an expired token) starts over.
//!
//! HTTPS, except for this machine's registries (`localhost`, `127.0.0.0/8`, `::1`), which Docker
//! too talks plain HTTP to, or `--registry-insecure`. Every error is one line naming the registry
//! and the fix; no credential is ever part of one.

use std::time::Duration;

use anyhow::{Result, anyhow};
use sha2::{Digest as _, Sha256};

use crate::image_registry::{Credentials, Registry};
use crate::secrets::SecretValue;

/// The manifest types the pipeline accepts, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A registry's answer to "does this tag exist".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It does, with this manifest digest (`sha256:…`).
    Found(String),
    /// It does not (404).
    Missing,
}

/// How the registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `WWW-Authenticate: Basic …`.
    Basic,
    /// `WWW-Authenticate: Bearer realm=…,service=…,scope=…[,error=…]`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// Its `service` parameter, if any.
        service: Option<String>,
        /// Why a token was refused (RFC 6750: `invalid_token`, `insufficient_scope`), if it was.
        error: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value: the scheme and its comma-separated `key="value"` pairs.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut error = None;
    for (key, value) in params(rest) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            "error" => error = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        error,
    })
}

/// `key="value", key=value` pairs; a quoted value may hold commas (scopes do).
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The Registry HTTP API of one registry, with the run's credentials.
pub struct Client<'a> {
    registry: &'a Registry,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    /// A client of `registry`, authenticating with `credentials` when it asks.
    pub fn new(registry: &'a Registry, credentials: Option<Credentials>) -> Client<'a> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("todo-app-xtask/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            registry,
            credentials,
            agent,
        }
    }

    fn url(&self, repository: &str, reference: &str) -> String {
        format!(
            "{}://{}/v2/{repository}/manifests/{reference}",
            self.registry.scheme(),
            self.registry.address.api_host()
        )
    }

    /// `send`'s answer, authorized as the registry asks: first with the authorization it took
    /// for `repository` before in this run (none at first); on a 401, with a new one answering
    /// its challenge, which is kept for the next request. `None`: not found (404).
    fn authorized(
        &self,
        repository: &str,
        send: impl Fn(Option<&SecretValue>) -> Result<Answer>,
    ) -> Result<Option<(Box<ureq::Response>, Option<SecretValue>)>> {
        let kept = self.registry.authorization(repository);
        let challenge = match send(kept.as_ref())? {
            Answer::Ok(r) => return Ok(Some((r, kept))),
            Answer::NotFound => return Ok(None),
            Answer::Unauthorized(challenge) => challenge,
        };
        // No authorization yet, or a kept token that expired: as the challenge says.
        self.registry.set_authorization(repository, None);
        let auth = self.authorization(challenge.as_deref(), repository)?;
        match send(Some(&auth))? {
            Answer::Ok(r) => {
                self.registry
                    .set_authorization(repository, Some(auth.clone()));
                Ok(Some((r, Some(auth))))
            }
            Answer::NotFound => {
                self.registry.set_authorization(repository, Some(auth));
                Ok(None)
            }
            Answer::Unauthorized(again) => {
                Err(self.refused_again(challenge.as_deref(), again.as_deref(), repository))
            }
        }
    }

    /// Whether `repository:reference` exists, and its digest.
    pub fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Lookup> {
        let url = self.url(repository, reference);
        let Some((response, auth)) = self.authorized(repository, |auth| self.head(&url, auth))?
        else {
            return Ok(Lookup::Missing);
        };
        match response.header("Docker-Content-Digest") {
            Some(d) if d.starts_with("sha256:") => Ok(Lookup::Found(d.to_owned())),
            // The header is optional in the spec: then the digest is that of the manifest bytes.
            _ => self.digest_of_body(&url, auth.as_ref()).map(Lookup::Found),
        }
    }

    /// The labels of the single-platform image `repository:reference` (its config's
    /// `config.Labels`), or `None` when the tag does not exist: a manifest, then its config blob,
    /// authenticated as the registry asks.
    pub fn image_labels(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json";
        let api = format!(
            "{}://{}/v2/{repository}",
            self.registry.scheme(),
            self.registry.address.api_host()
        );
        let url = format!("{api}/manifests/{reference}");
        let Some((manifest, auth)) =
            self.authorized(repository, |auth| self.get(&url, IMAGE_MANIFEST, auth))?
        else {
            return Ok(None);
        };
        let manifest = self.json(*manifest, "a manifest")?;
        let Some(config) = manifest.pointer("/config/digest").and_then(|d| d.as_str()) else {
            return Err(anyhow!(
                "registry {}: {repository}:{reference} is not a single-platform image manifest",
                self.registry.address
            ));
        };
        let blob = match self.get(&format!("{api}/blobs/{config}"), "*/*", auth.as_ref())? {
            Answer::Ok(r) => self.json(*r, "an image config")?,
            Answer::NotFound | Answer::Unauthorized(_) => {
                return Err(anyhow!(
                    "registry {}: {repository}:{reference} names config {config}, which it does \
                     not serve; fix: push the image again",
                    self.registry.address
                ));
            }
        };
        let labels = blob
            .pointer("/config/Labels")
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(labels))
    }

    fn get(&self, url: &str, accept: &str, auth: Option<&SecretValue>) -> Result<Answer> {
        let mut request = self.agent.get(url).set("Accept", accept);
        if let Some(auth) = auth {
            request = request.set("Authorization", auth.expose());
        }
        self.answer(request.call(), auth.is_some())
    }

    fn json(&self, response: ureq::Response, what: &str) -> Result<serde_json::Value> {
        let text = response
            .into_string()
            .map_err(|e| anyhow!("registry {}: reading {what}: {e}", self.registry.address))?;
        serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "registry {}: {what} that is not JSON ({e})",
                self.registry.address
            )
        })
    }

    /// The digest of the manifest's bytes, fetched with the authorization the HEAD took.
    fn digest_of_body(&self, url: &str, auth: Option<&SecretValue>) -> Result<String> {
        let mut request = self.agent.get(url).set("Accept", MANIFEST_ACCEPT);
        if let Some(auth) = auth {
            request = request.set("Authorization", auth.expose());
        }
        let response = request.call().map_err(|e| self.transport(&e))?;
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body).map_err(|e| {
            anyhow!(
                "registry {}: reading a manifest: {e}",
                self.registry.address
            )
        })?;
        Ok(format!("sha256:{}", hex::encode(Sha256::digest(&body))))
    }

    /// The `Authorization` value answering `challenge` (the 401's `WWW-Authenticate`).
    fn authorization(&self, challenge: Option<&str>, repository: &str) -> Result<SecretValue> {
        let parsed = challenge
            .and_then(parse_challenge)
            .unwrap_or(Challenge::Basic);
        match parsed {
            Challenge::Basic => match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(self.needs_credentials()),
            },
            Challenge::Bearer { realm, service, .. } => {
                let token = self.token(&realm, service.as_deref(), repository)?;
                Ok(SecretValue::new(format!("Bearer {}", token.expose())))
            }
        }
    }

    /// A pull token for `repository` from the token endpoint `realm`, with the credentials as
    /// Basic authentication when there are any (anonymous tokens serve public images).
    fn token(&self, realm: &str, service: Option<&str>, repository: &str) -> Result<SecretValue> {
        let scope = format!("repository:{repository}:pull");
        let mut request = self.agent.get(realm).query("scope", &scope);
        if let Some(service) = service {
            request = request.query("service", service);
        }
        if let Some(c) = &self.credentials {
            request = request.set("Authorization", c.basic_header().expose());
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401 | 403, _)) if self.credentials.is_some() => {
                return Err(self.refused());
            }
            Err(ureq::Error::Status(401 | 403, _)) => return Err(self.needs_credentials()),
            Err(e) => return Err(self.transport(&e)),
        };
        let text = response.into_string().map_err(|e| {
            anyhow!(
                "registry {}: reading the answer of its token endpoint {realm}: {e}",
                self.registry.address
            )
        })?;
        let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "registry {}: its token endpoint {realm} answered something other than JSON ({e})",
                self.registry.address
            )
        })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
            .map(SecretValue::new)
            .ok_or_else(|| {
                anyhow!(
                    "registry {}: its token endpoint {realm} gave no token",
                    self.registry.address
                )
            })
    }

    fn head(&self, url: &str, auth: Option<&SecretValue>) -> Result<Answer> {
        let mut request = self.agent.head(url).set("Accept", MANIFEST_ACCEPT);
        if let Some(auth) = auth {
            request = request.set("Authorization", auth.expose());
        }
        self.answer(request.call(), auth.is_some())
    }

    /// A request's result as an [`Answer`]; `authenticated`: it carried an `Authorization`.
    fn answer(
        &self,
        result: Result<ureq::Response, ureq::Error>,
        authenticated: bool,
    ) -> Result<Answer> {
        match result {
            Ok(r) => Ok(Answer::Ok(Box::new(r))),
            Err(ureq::Error::Status(404, _)) => Ok(Answer::NotFound),
            Err(ureq::Error::Status(401, r)) => Ok(Answer::Unauthorized(
                r.header("WWW-Authenticate").map(str::to_owned),
            )),
            Err(ureq::Error::Status(403, _)) if authenticated => Err(self.refused()),
            Err(ureq::Error::Status(403, _)) => Err(self.needs_credentials()),
            Err(e) => Err(self.transport(&e)),
        }
    }

    /// 401 to a request authorized as `first` (the first 401's `WWW-Authenticate`) asked: with
    /// a token, the token endpoint took the credentials but the registry not its token, for
    /// want of access (`again` says `insufficient_scope`) or because it does not trust it.
    fn refused_again(
        &self,
        first: Option<&str>,
        again: Option<&str>,
        repository: &str,
    ) -> anyhow::Error {
        let r = &self.registry.address;
        let (Some(Challenge::Bearer { realm, .. }), Some(c)) =
            (first.and_then(parse_challenge), &self.credentials)
        else {
            return self.refused();
        };
        match again.and_then(parse_challenge) {
            Some(Challenge::Bearer {
                error: Some(error), ..
            }) if error == "insufficient_scope" => anyhow!(
                "registry {r} gave user `{}` (from {}) no pull access to {repository} (its token \
                 endpoint {realm} accepted the credentials); fix: grant that user pull access to \
                 {repository}, or use credentials that have it",
                c.username,
                c.source,
            ),
            again => anyhow!(
                "registry {r} rejected the token its token endpoint {realm} issued to user `{}` \
                 ({}); fix: the registry's token settings (issuer, service, signing certificate) \
                 must match that endpoint's tokens, and this machine's clock must be right",
                c.username,
                match again {
                    Some(Challenge::Bearer {
                        error: Some(error), ..
                    }) => error,
                    _ => "no reason given".to_owned(),
                },
            ),
        }
    }

    /// 401 after authenticating: wrong user, password or token, or no pull access.
    fn refused(&self) -> anyhow::Error {
        let r = &self.registry.address;
        match &self.credentials {
            Some(c) => anyhow!(
                "registry {r} refused the credentials of user `{}` (from {}); fix: correct them \
                 (`docker login {}` or {}/{})",
                c.username,
                c.source,
                r.host(),
                crate::image_registry::credentials::USERNAME_ENV,
                crate::image_registry::credentials::PASSWORD_ENV,
            ),
            None => self.needs_credentials(),
        }
    }

    fn needs_credentials(&self) -> anyhow::Error {
        let r = &self.registry.address;
        anyhow!(
            "registry {r} requires credentials and none were found; fix: `docker login {}`, or set \
             {} and {}",
            r.host(),
            crate::image_registry::credentials::USERNAME_ENV,
            crate::image_registry::credentials::PASSWORD_ENV,
        )
    }

    fn transport(&self, e: &ureq::Error) -> anyhow::Error {
        let r = &self.registry.address;
        match e {
            ureq::Error::Status(code, response) => anyhow!(
                "registry {r} answered {code} {} to {}; fix: check that {r} is a registry (Registry \
                 HTTP API v2) and that it is up",
                response.status_text(),
                response.get_url(),
            ),
            ureq::Error::Transport(t) => {
                let why = std::error::Error::source(t)
                    .map_or_else(|| t.kind().to_string(), ToString::to_string);
                anyhow!(
                    "cannot reach registry {r} over {} ({why}); fix: start it or correct \
                     --registry/XTASK_REGISTRY{}",
                    self.registry.scheme().to_ascii_uppercase(),
                    if self.registry.scheme() == "https" {
                        " (a registry without TLS needs --registry-insecure)"
                    } else {
                        ""
                    }
                )
            }
        }
    }
}

enum Answer {
    Ok(Box<ureq::Response>),
    NotFound,
    Unauthorized(Option<String>),
}

/// The error of a tag that names another image (`found`) than the one this checkout recorded
/// or pushed (`expected`).
pub fn conflict(
    registry: &Registry,
    repository: &str,
    tag: &str,
    found: &str,
    expected: &str,
) -> anyhow::Error {
    anyhow!(
        "registry {} holds {repository}:{tag} as {found}, not {expected} as recorded here; fix: \
         if that image is right, `cargo xtask clean` and build again to adopt it, else delete the \
         tag in the registry (or push over it with --no-registry-cache)",
        registry.address
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_ghcr_and_docker_hub_send_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                error: None,
            })
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token", service="registry.docker.io", scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                error: None,
            })
        );
        // As distribution answers a token it refuses.
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:a/b:pull",error="insufficient_scope""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5001/token".into(),
                service: Some("reg".into()),
                error: Some("insufficient_scope".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }
}
