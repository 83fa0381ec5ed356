//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! serving on 127.0.0.1 at a free port from a temporary storage directory, open, behind
//! htpasswd authentication, or in token mode (`auth: token`, the Bearer flow of ghcr.io and
//! Docker Hub) with a [`TokenIssuer`] of its own; stopped and deleted on drop.
//!
//! The htpasswd entry is made here with the `bcrypt` crate (the only hash the registry's
//! htpasswd accepts): no `htpasswd` binary is needed, and the password never is an argument.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::token_issuer::{self, TokenIssuer};
use crate::{free_port, skip_or_fail};

/// The registry server's program.
pub const PROGRAM: &str = "docker-registry";

/// A running registry, stopped on drop.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `(user, password)` when it requires authentication.
    pub auth: Option<(String, String)>,
    /// The token server, in token mode.
    pub issuer: Option<TokenIssuer>,
}

/// How the registry authenticates.
enum Auth {
    Open,
    Htpasswd,
    Token,
}

impl Registry {
    /// An open registry, or `None` (after [`skip_or_fail`]) when `docker-registry` is missing.
    #[track_caller]
    pub fn start(test: &str) -> Option<Registry> {
        Self::spawn(test, Auth::Open, None)
    }

    /// A registry that accepts only `user` with `password` (htpasswd, bcrypt).
    #[track_caller]
    pub fn with_auth(test: &str, user: &str, password: &str) -> Option<Registry> {
        Self::spawn(
            test,
            Auth::Htpasswd,
            Some((user.to_owned(), password.to_owned())),
        )
    }

    /// A registry in token mode whose [`TokenIssuer`] issues tokens to `user` with `password`
    /// only: every request needs a token from the issuer, which the registry verifies.
    #[track_caller]
    pub fn with_token_auth(test: &str, user: &str, password: &str) -> Option<Registry> {
        Self::spawn(
            test,
            Auth::Token,
            Some((user.to_owned(), password.to_owned())),
        )
    }

    #[track_caller]
    fn spawn(test: &str, mode: Auth, auth: Option<(String, String)>) -> Option<Registry> {
        if !crate::runs(PROGRAM, &["--version"]) {
            skip_or_fail(
                test,
                "the OCI registry server `docker-registry`",
                "../shared/ci/provision.sh registry (Debian: apt-get install docker-registry)",
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("xtask-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let mut issuer = None;
        match (mode, &auth) {
            (Auth::Htpasswd, Some((user, password))) => {
                let hash = bcrypt::hash(password, 5).unwrap();
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: xtask-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            (Auth::Token, Some((user, password))) => {
                let tokens = TokenIssuer::start(user, password);
                let bundle = dir.path().join("token-signer.pem");
                std::fs::write(&bundle, tokens.cert_pem()).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                     rootcertbundle: {}\n",
                    tokens.realm(),
                    token_issuer::SERVICE,
                    token_issuer::ISSUER,
                    bundle.display()
                ));
                issuer = Some(tokens);
            }
            _ => {}
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(PROGRAM)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut registry = Registry {
            child,
            dir,
            port,
            auth,
            issuer,
        };
        registry.wait_ready();
        Some(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where it stores blobs and manifests.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Waits until `GET /v2/` answers (200 open, 401 with authentication).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if let Some(code) = self.get_status("/v2/") {
                assert!(code == 200 || code == 401, "GET /v2/ answered {code}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {}:\n{}",
                self.host(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The status code of a plain `GET path`, or `None` when nothing answers.
    pub fn get_status(&self, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- docker-registry log ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
