//! A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl` on a free port,
//! trusting local TCP, fsync off. Finds the server binaries on PATH or under
//! `/usr/lib/postgresql/*/bin` (the newest), and runs them as `postgres` (or `nobody`) when the
//! tests run as root, since PostgreSQL refuses to run as root.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use crate::{check, free_port, skip_or_fail};

/// What a test without PostgreSQL is missing, and how to install it.
const MISSING: &str =
    "PostgreSQL server binaries (initdb, pg_ctl on PATH or in /usr/lib/postgresql/*/bin)";
const INSTALL: &str = "../shared/ci/provision.sh postgres (or apt-get install postgresql)";

/// Directory holding `initdb`, `pg_ctl`, `postgres` and `createdb`, if installed.
pub fn bin_dir() -> Option<PathBuf> {
    let found = crate::on_path(&["initdb"]).or_else(|| {
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
    // Follow symlinks (/usr/local/bin/initdb → /usr/lib/postgresql/15/bin/initdb) so that
    // pg_ctl, postgres and createdb come from the same installation.
    let real = std::fs::canonicalize(&found).ok()?;
    Some(real.parent()?.to_path_buf())
}

/// The user PostgreSQL runs as when the tests run as root (it refuses root): `postgres` when
/// that account exists, else `nobody`; `None` when not root.
fn server_user() -> Option<&'static str> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let has_postgres = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .is_ok_and(|o| o.status.success());
    Some(if has_postgres { "postgres" } else { "nobody" })
}

/// The prefix that runs a command as `user` (empty when not root).
fn run_as(user: Option<&str>) -> Vec<String> {
    user.map_or_else(Vec::new, |user| {
        vec![
            "setpriv".into(),
            format!("--reuid={user}"),
            format!("--regid={user}"),
            "--init-groups".into(),
            "--".into(),
        ]
    })
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

/// A throwaway PostgreSQL server in its own directory, on its own port, trusting local TCP
/// (superuser `postgres`, no password). Stopped and deleted on drop, or when the test process
/// ends.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Vec<String>,
    cleanup_on_exit: bool,
    supervisor: Option<(Child, ChildStdin)>,
}

impl PgServer {
    /// A new running server of this test's own (one it may stop and start); `None` after
    /// [`skip_or_fail`] when PostgreSQL is not installed.
    #[track_caller]
    pub fn new(test: &str) -> Option<PgServer> {
        Self::start_new(false).or_else(|| {
            skip_or_fail(test, MISSING, INSTALL);
            None
        })
    }

    /// The one server shared by every test of this test binary (each test makes its own
    /// database with [`PgServer::create_database`]); `None` after [`skip_or_fail`] when
    /// PostgreSQL is not installed.
    #[track_caller]
    pub fn shared(test: &str) -> Option<&'static PgServer> {
        static SHARED: OnceLock<Option<PgServer>> = OnceLock::new();
        let server = SHARED.get_or_init(|| Self::start_new(true)).as_ref();
        if server.is_none() {
            skip_or_fail(test, MISSING, INSTALL);
        }
        server
    }

    fn start_new(cleanup_on_exit: bool) -> Option<PgServer> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("todo-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let user = server_user();
        if let Some(user) = user {
            let out = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(&dir)
                .output()
                .unwrap();
            check(&out, &format!("chown -R {user} {}", dir.display()));
        }
        let run_as = run_as(user);
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
        check(&out, "initdb");
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

    /// Starts the (stopped) server again and waits until it accepts connections.
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

    /// Stops the server (fast shutdown) and waits for it to exit; [`PgServer::start`] brings
    /// it back on the same port and data.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.supervisor.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates the empty database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", name])
            .output()
            .unwrap();
        check(&out, &format!("createdb {name}"));
        self.url(name)
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
