//! Test harness: a real `todo-backend` process on its own database (of the shared throwaway
//! PostgreSQL server of `test-support`), the frontend in-process or as a real process, and a
//! cookie-keeping HTTP client that fills in CSRF fields.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use test_support::{PgServer, free_port};
use todo_frontend::config::{Config, LogFormat};
use todo_frontend::csrf::CsrfKey;

/// The `todo-backend` binary of the current sources ([`test_support::workspace_binary`]).
pub fn backend_binary() -> Result<PathBuf, String> {
    test_support::workspace_binary("todo-backend")
}

/// A running `todo-backend` process on its own database; killed on drop.
pub struct Backend {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    database_url: String,
    /// Extra settings (limits for a test).
    extra_env: Vec<(String, String)>,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

static DB_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Backend {
    /// Starts a backend with a fresh database and waits until it is ready (`/ready`: database
    /// reachable, migrations applied; before that it answers every API call 503).
    pub fn start(server: &PgServer) -> Self {
        Self::start_with(server, &[])
    }

    /// Like [`Backend::start`], with `extra` settings in its environment.
    pub fn start_with(server: &PgServer, extra: &[(&str, &str)]) -> Self {
        let n = DB_COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let db = format!("fe_{}_{n}", std::process::id());
        let database_url = server.create_database(&db);
        let logdir = tempfile::tempdir().unwrap();
        let mut backend = Self {
            child: None,
            url: String::new(),
            port: 0,
            database_url,
            extra_env: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log: logdir.path().join("backend.log"),
            _logdir: logdir,
        };
        backend.spawn();
        backend
    }

    fn spawn(&mut self) {
        let bin = backend_binary().unwrap_or_else(|e| panic!("{e}"));
        let port = if self.port == 0 {
            free_port()
        } else {
            self.port
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("JWT_SECRET", "frontend-tests-jwt-secret-0123456789abcdef")
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "info")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.port = port;
        self.url = format!("http://127.0.0.1:{port}");
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let health = format!("{}/ready", self.url);
        loop {
            if probe::http_ok(&health) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "todo-backend exited ({status}) before becoming ready:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "todo-backend not ready after 60 s:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the process (the port stays reserved for [`Backend::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Everything the backend logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Minimal blocking HTTP probe, so blocking harness code needs no async runtime.
pub mod probe {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// Whether `GET url` answers 200 (`url` is `http://host:port/path`).
    pub fn http_ok(url: &str) -> bool {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200")
    }
}

/// The CSRF_SECRET of the frontends the tests start (a fixture, not a real secret).
pub const CSRF_SECRET: &str = "frontend-tests-csrf-secret-0123456789abcdef";

/// Frontend configuration pointing at `backend_url`.
pub fn frontend_config(backend_url: &str, cookie_secure: bool) -> Config {
    Config {
        backend_url: backend_url.parse().unwrap(),
        port: 0,
        cookie_secure,
        csrf_secret: CsrfKey::new(CSRF_SECRET),
        log_level: "info".to_owned(),
        log_format: LogFormat::Text,
        trusted_proxies: Default::default(),
        timeouts: Default::default(),
    }
}

/// The frontend served in-process on a free port; stops when dropped.
pub struct Frontend {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Frontend {
    /// Serves the frontend for `backend_url` on the current tokio runtime.
    pub async fn start(backend_url: &str, cookie_secure: bool) -> Self {
        Self::start_config(frontend_config(backend_url, cookie_secure)).await
    }

    /// Serves the frontend with `config` (its port is ignored: a free one is used).
    pub async fn start_config(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            todo_frontend::app::serve(&config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(tx),
        }
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Everything a web test needs: a backend on its own database, the frontend.
pub struct Stack {
    pub backend: Backend,
    pub frontend: Frontend,
}

/// Starts the full stack, or skips (returns `None`) / fails under CI when PostgreSQL is absent.
pub async fn stack(test: &str, cookie_secure: bool) -> Option<Stack> {
    let test = test.to_owned();
    let backend = tokio::task::spawn_blocking(move || PgServer::shared(&test).map(Backend::start))
        .await
        // A prerequisite failure under CI is a panic: keep its message as it is.
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    let frontend = Frontend::start(&backend.url, cookie_secure).await;
    Some(Stack { backend, frontend })
}

/// Like [`stack`], with `backend_env` for the backend and `trusted_proxies` for the frontend.
pub async fn stack_with(
    test: &str,
    backend_env: &[(&str, &str)],
    trusted_proxies: &str,
) -> Option<Stack> {
    let test = test.to_owned();
    let env: Vec<(String, String)> = backend_env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let backend = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        PgServer::shared(&test).map(|s| Backend::start_with(s, &env))
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    let mut config = frontend_config(&backend.url, false);
    config.trusted_proxies =
        todo_frontend::client_addr::TrustedProxies::parse(trusted_proxies).unwrap();
    let frontend = Frontend::start_config(config).await;
    Some(Stack { backend, frontend })
}

/// A browser-like client: keeps cookies, follows redirects, and reads CSRF fields from pages.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: Arc<reqwest::cookie::Jar>,
}

/// A fetched page.
pub struct Page {
    pub status: u16,
    pub url: String,
    pub html: String,
}

impl Page {
    /// The value of the first hidden CSRF field on the page.
    pub fn csrf(&self) -> String {
        hidden_field(&self.html, "csrf_token")
            .unwrap_or_else(|| panic!("no csrf_token field on {}:\n{}", self.url, self.html))
    }

    /// Asserts the page shows `text` (HTML-escaped as the templates do).
    #[track_caller]
    pub fn assert_shows(&self, text: &str) {
        let escaped = text
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(
            self.html.contains(&escaped),
            "expected {text:?} on {} (status {}):\n{}",
            self.url,
            self.status,
            self.html
        );
    }
}

/// Value of the first `<input ... name="NAME" value="...">` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl Browser {
    /// A fresh browser with an empty cookie jar.
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            http,
            base: base.to_owned(),
            jar,
        }
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Self::page(res).await
    }

    async fn page(res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let url = res.url().to_string();
        let html = res.text().await.unwrap();
        Page { status, url, html }
    }

    /// POSTs a form with `fields` plus the CSRF token taken from `from` (a page's CSRF field).
    pub async fn submit(&self, from: &Page, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = from.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POSTs exactly `fields`, with no CSRF token added.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        Self::page(res).await
    }

    /// The value of cookie `name` as the browser would send it, if set.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    /// Signs up a new account (which also signs in) and returns the task page.
    pub async fn sign_up(&self, email: &str, password: &str) -> Page {
        let form = self.get("/signup").await;
        self.submit(
            &form,
            "/signup",
            &[
                ("email", email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }
}

/// A unique email for one test run.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}
