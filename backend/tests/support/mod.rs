//! Test support: throwaway PostgreSQL servers, a database per test, the app in-process, and
//! the skip-or-fail rule for absent prerequisites.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;
use todo_backend::config::Config;
use tokio::sync::oneshot;

/// Reports an absent prerequisite: prints a SKIP line naming what to install and returns, or
/// panics when `CI=true` so that CI never goes green by skipping.
pub fn skip_or_fail(test: &str, missing: &str, install: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {missing}; CI=true forbids skipping. Install: {install}");
    }
    eprintln!("SKIP: {test}: {missing}; install {install}");
}

const PG_INSTALL_HINT: &str = "PostgreSQL server binaries (apt-get install postgresql, or ../shared/ci/provision.sh postgres)";

/// Directory holding `initdb`, `pg_ctl` and `postgres`, from PATH or /usr/lib/postgresql/*/bin.
pub fn pg_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file());
    let found = on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let initdb = e.path().join("bin/initdb");
                initdb.is_file().then_some((v, initdb))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, p)| p)
    })?;
    // Follow symlinks (/usr/local/bin/initdb → /usr/lib/postgresql/15/bin/initdb) so pg_ctl
    // and postgres are taken from the same installation.
    let real = std::fs::canonicalize(&found).ok()?;
    Some(real.parent()?.to_path_buf())
}

/// When running as root, PostgreSQL refuses to start; run its commands as this prefix.
fn run_as_prefix() -> Vec<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let is_root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return vec![];
    }
    let user = if Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        "postgres"
    } else {
        "nobody"
    };
    vec![
        "setpriv".into(),
        format!("--reuid={user}"),
        format!("--regid={user}"),
        "--init-groups".into(),
        "--".into(),
        // Keep the user name at the end so `chown` can find it.
        user.into(),
    ]
}

/// `program` run through the `run_as` prefix (or directly when it is empty).
fn as_user(run_as: &[String], program: &Path) -> Command {
    match run_as.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
    }
}

/// A free TCP port on 127.0.0.1 (released just before use; the race is harmless in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// Runs pg_ctl start, reports "ready", then waits for stdin to close (the test process ended or
// `stop` was called) and stops the server; in cleanup mode it also deletes the directory. This
// way even a static server that is never dropped does not outlive the test binary.
const SUPERVISOR: &str = r#"
set -u
dir="$1"; bin="$2"; mode="$3"; shift 3
if ! "$@" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
  echo failed; exit 1
fi
echo ready
cat >/dev/null || true
"$@" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
if [ "$mode" = cleanup ]; then rm -rf "$dir"; fi
"#;

/// A throwaway PostgreSQL server in its own directory, on its own port, trusting local TCP.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Vec<String>,
    cleanup_on_exit: bool,
    supervisor: Option<(Child, ChildStdin)>,
}

impl PgServer {
    /// Creates and starts a server; `None` when the binaries are absent.
    pub fn start_new(cleanup_on_exit: bool) -> Option<PgServer> {
        let bin = pg_bin_dir()?;
        let dir = std::env::temp_dir().join(format!("todo-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut run_as = run_as_prefix();
        let user = run_as.pop();
        if let Some(user) = &user {
            let st = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success(), "chown of {} failed", dir.display());
        }
        let out = as_user(&run_as, &bin.join("initdb"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data/postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300"
        )
        .unwrap();
        let mut server = PgServer {
            dir,
            bin,
            port,
            run_as,
            cleanup_on_exit,
            supervisor: None,
        };
        server.start();
        Some(server)
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.supervisor.is_none(), "already running");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("pg-supervisor")
            .arg(&self.dir)
            .arg(&self.bin)
            .arg(if self.cleanup_on_exit {
                "cleanup"
            } else {
                "keep"
            })
            .args(&self.run_as)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
            panic!("postgres did not start:\n{log}");
        }
        self.supervisor = Some((child, stdin));
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.supervisor.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        if !self.cleanup_on_exit {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where test databases are created: `DATABASE_URL` when set, else one shared throwaway
/// server per test binary.
enum Admin {
    Url(String),
    Server(PgServer),
}

static ADMIN: OnceLock<Option<Admin>> = OnceLock::new();

fn admin_url() -> Option<String> {
    let admin = ADMIN.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Some(Admin::Url(url));
        }
        PgServer::start_new(true).map(Admin::Server)
    });
    match admin.as_ref()? {
        Admin::Url(u) => Some(u.clone()),
        Admin::Server(s) => Some(s.url("postgres")),
    }
}

/// Replaces the database name in a postgres URL (keeping any `?query`).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A new, empty database for one test; `None` (after a SKIP line) when PostgreSQL is absent.
pub async fn fresh_database(test: &str) -> Option<String> {
    let Some(admin) = admin_url() else {
        skip_or_fail(
            test,
            "PostgreSQL not found and DATABASE_URL unset",
            PG_INSTALL_HINT,
        );
        return None;
    };
    let name = format!("todo_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    Some(with_database(&admin, &name))
}

/// The test JWT secret (48 bytes).
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef-xyz";

/// Builds a [`Config`] from pairs, the way the binary builds it from its environment.
pub fn config(pairs: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned()).unwrap()
}

/// The app served in-process on a real socket, stopped on drop.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts the app on a fresh database and waits until it is ready; `None` means skipped.
    pub async fn spawn(test: &str) -> Option<TestApp> {
        let db = fresh_database(test).await?;
        Some(Self::spawn_with(&[("DATABASE_URL", &db), ("JWT_SECRET", JWT_SECRET)]).await)
    }

    /// Starts the app with the given settings and waits until `/ready` is 200.
    pub async fn spawn_with(pairs: &[(&str, &str)]) -> TestApp {
        let config = config(pairs);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            todo_backend::serve(config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let app = TestApp {
            base,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
        };
        wait_ready(&app.http, &app.base).await;
        app
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a JSON request, optionally with a bearer token; returns status and parsed body
    /// (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    /// Registers an account and returns its token.
    pub async fn user(&self, email: &str) -> String {
        register_and_login(&self.http, &self.base, email, "correct horse").await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Registers `email` with `password` at the API under `base`, signs in and returns the token.
pub async fn register_and_login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> String {
    let creds = serde_json::json!({"email": email, "password": password});
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {email}");
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Status and JSON body of a response; asserts that error responses have the documented shape.
pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    if status >= 400 && !matches!(status, 503) {
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "error body has the wrong shape: {body}"
        );
    }
    (status, body)
}

/// Polls `/ready` until it answers 200 (30 s at most).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    wait_for_ready_status(http, base, 200, Duration::from_secs(30)).await;
}

/// Polls `/ready` until it answers `want`; panics with the last answer after `limit`.
pub async fn wait_for_ready_status(
    http: &reqwest::Client,
    base: &str,
    want: u16,
    limit: Duration,
) -> Value {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < limit {
        if let Ok(r) = http
            .get(format!("{base}/ready"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status == want {
                return body;
            }
            last = format!("{status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/ready did not become {want} within {limit:?}; last: {last}");
}

/// Path of the built `todo-backend` binary.
pub fn backend_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_todo-backend"))
}
