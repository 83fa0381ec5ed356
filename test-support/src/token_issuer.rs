//! The token server of a test registry in `auth: token` mode: what Docker Hub's auth service or
//! `docker_auth` is to a real registry, on 127.0.0.1 at a free port. The registry
//! (`docker-registry`, the CNCF distribution registry) stays real and verifies every token itself.
//!
//! The flow of the distribution token spec: a client that the registry answered
//! `401 WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends
//! `GET /token?service=…&scope=TYPE:NAME:ACTIONS` (any number of `scope`s) with Basic
//! credentials; this server checks them against the test's one user and answers
//! `{"token": JWT, "access_token": JWT, "expires_in": 300}`, the JWT granting exactly the
//! requested actions, except on a repository [`TokenIssuer::deny`] names, which gets none (as an
//! ACL of `docker_auth` would). Wrong or no credentials: 401; another `service`: 400.
//!
//! The JWT is what distribution 2.8 (`registry/auth/token/token.go`) verifies: ES256 (P-256),
//! its certificate in the header's `x5c`, which must chain to the registry's `rootcertbundle`
//! (here that same self-signed certificate, made with `rcgen`); `iss` equal to the registry's
//! `issuer`, `aud` (one string) equal to its `service`, `exp`/`nbf` (60 s leeway), and `access`
//! as `[{"type", "name", "actions"}]`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Serialize;

/// The registry's `auth.token.issuer`, the tokens' `iss`.
pub const ISSUER: &str = "xtask-test-token-issuer";
/// The registry's `auth.token.service`, the tokens' `aud`.
pub const SERVICE: &str = "xtask-test-registry";
/// How long a token lives, in seconds.
pub const LIFETIME: u64 = 300;

/// One token request as the issuer saw it (never its password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic user, if the request had credentials.
    pub user: Option<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// The `scope` parameters, each `TYPE:NAME:ACTIONS`.
    pub scopes: Vec<String>,
    /// Whether a token was issued.
    pub granted: bool,
}

/// A running token server, stopped on drop.
pub struct TokenIssuer {
    port: u16,
    cert_pem: String,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    user: String,
    password: String,
    key: jsonwebtoken::EncodingKey,
    cert_der: String,
    requests: Mutex<Vec<TokenRequest>>,
    tokens: Mutex<Vec<String>>,
    denied: Mutex<Vec<String>>,
    audience: Mutex<String>,
    serial: AtomicU64,
}

/// An entry of the JWT's `access` claim.
#[derive(Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Serialize)]
struct Claims {
    iss: &'static str,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

impl TokenIssuer {
    /// A server that issues tokens to `user` with `password` only, with a new signing key.
    pub fn start(user: &str, password: &str) -> TokenIssuer {
        let signer = rcgen::generate_simple_self_signed(vec![ISSUER.to_owned()]).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&signer.signing_key.serialize_der());
        let shared = Arc::new(Shared {
            user: user.to_owned(),
            password: password.to_owned(),
            key,
            cert_der: base64::engine::general_purpose::STANDARD.encode(signer.cert.der()),
            requests: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
            denied: Mutex::new(Vec::new()),
            audience: Mutex::new(SERVICE.to_owned()),
            serial: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    // The Docker daemon may ask for several tokens at once (a push's layers).
                    std::thread::spawn(move || serve(&shared, stream));
                }
            })
        };
        TokenIssuer {
            port,
            cert_pem: signer.cert.pem(),
            stop,
            shared,
            thread: Some(thread),
        }
    }

    /// The token endpoint, the registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The signing certificate (PEM), the registry's `auth.token.rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Every token request so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// From now on, tokens grant no action on `repository` (the user may not even pull it).
    pub fn deny(&self, repository: &str) {
        self.shared
            .denied
            .lock()
            .unwrap()
            .push(repository.to_owned());
    }

    /// From now on, tokens name `audience` as their `aud`, as an issuer set up for another
    /// registry would: the registry rejects them (`invalid_token`).
    pub fn set_audience(&self, audience: &str) {
        *self.shared.audience.lock().unwrap() = audience.to_owned();
    }

    /// Every token issued so far (secrets the tests look for where none may be).
    pub fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one connection's one request, then closes it.
fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let (status, headers, body) = answer(shared, &request_line, authorization.as_deref());
    let reply = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// The status line, extra headers and JSON body answering `GET target`.
fn answer(
    shared: &Shared,
    request_line: &str,
    authorization: Option<&str>,
) -> (&'static str, String, String) {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != "/token" {
        return error("404 Not Found", "", "not the token endpoint: GET /token");
    }
    let mut service = None;
    let mut scopes = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "service" => service = Some(value.into_owned()),
            // The spec repeats `scope`; some clients join several with spaces in one.
            "scope" => scopes.extend(value.split_whitespace().map(str::to_owned)),
            _ => {}
        }
    }
    let credentials = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    let mut record = TokenRequest {
        user: credentials.as_ref().map(|(u, _)| u.clone()),
        service: service.clone(),
        scopes: scopes.clone(),
        granted: false,
    };
    let reply = if service.as_deref() != Some(SERVICE) {
        error("400 Bad Request", "", "unknown service")
    } else if credentials != Some((shared.user.clone(), shared.password.clone())) {
        error(
            "401 Unauthorized",
            &format!("WWW-Authenticate: Basic realm=\"{ISSUER}\"\r\n"),
            "authentication required",
        )
    } else {
        match scopes.iter().map(|s| access(s)).collect::<Option<Vec<_>>>() {
            None => error("400 Bad Request", "", "invalid scope"),
            Some(mut access) => {
                let denied = shared.denied.lock().unwrap().clone();
                for a in &mut access {
                    if denied.contains(&a.name) {
                        a.actions.clear();
                    }
                }
                let token = sign(shared, access);
                shared.tokens.lock().unwrap().push(token.clone());
                record.granted = true;
                let body = serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": LIFETIME,
                });
                ("200 OK", String::new(), body.to_string())
            }
        }
    };
    shared.requests.lock().unwrap().push(record);
    reply
}

fn error(status: &'static str, headers: &str, message: &str) -> (&'static str, String, String) {
    (
        status,
        headers.to_owned(),
        serde_json::json!({ "details": message }).to_string(),
    )
}

/// `TYPE:NAME:ACTIONS`; a repository name holds no `:`, actions are comma-separated.
fn access(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(Access {
        kind: kind.to_owned(),
        name: name.to_owned(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A JWT for the configured user granting `access`, as distribution 2.8 verifies it.
fn sign(shared: &Shared, access: Vec<Access>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![shared.cert_der.clone()]);
    let claims = Claims {
        iss: ISSUER,
        sub: shared.user.clone(),
        aud: shared.audience.lock().unwrap().clone(),
        exp: now + LIFETIME,
        nbf: now,
        iat: now,
        jti: format!("{}-{}", now, shared.serial.fetch_add(1, Ordering::SeqCst)),
        access,
    };
    jsonwebtoken::encode(&header, &claims, &shared.key).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_as_the_token_spec_writes_them() {
        let a = access("repository:test/img:pull,push").unwrap();
        assert_eq!(
            (a.kind.as_str(), a.name.as_str(), a.actions),
            ("repository", "test/img", vec!["pull".into(), "push".into()])
        );
        let a = access("registry:catalog:*").unwrap();
        assert_eq!((a.name.as_str(), a.actions), ("catalog", vec!["*".into()]));
        assert!(access("repository").is_none());
        assert!(access("repository::pull").is_none());
    }
}
