//! Python tools from PyPI for tests (chart validators, actionlint): one virtualenv per tool set
//! under `target/`, built once and reused. Shared by `chart.rs` and `docs.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Creates `venv` with `pins` (extra `pip install` flags in `pip_args`) unless a complete one with
/// the same pins exists; returns how long an install took, or `None` when it was already there.
/// Cross-process safe: a lock directory (atomic `mkdir`) serialises builders, and the marker
/// holding the pins is written last, so a reader never uses a half-installed venv and a crashed
/// build is redone.
pub fn ensure(venv: &Path, pins: &[&str], pip_args: &[&str]) -> Result<Option<Duration>, String> {
    let marker = venv.join(".pins-installed");
    let wanted = pins.join("\n");
    let ready = || fs::read_to_string(&marker).is_ok_and(|m| m == wanted);
    if ready() {
        return Ok(None);
    }
    let lock = venv.with_extension("lock");
    if let Some(parent) = lock.parent() {
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let _guard = LockDir::acquire(&lock, Duration::from_secs(20 * 60))?;
    if ready() {
        return Ok(None);
    }
    let started = Instant::now();
    if venv.exists() {
        fs::remove_dir_all(venv).map_err(|e| format!("removing an incomplete venv: {e}"))?;
    }
    run_ok(
        Command::new("python3").args(["-m", "venv"]).arg(venv),
        "python3 -m venv",
    )?;
    run_ok(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(pip_args)
            .args(pins),
        "pip install (needs PyPI)",
    )?;
    fs::write(&marker, &wanted).map_err(|e| e.to_string())?;
    Ok(Some(started.elapsed()))
}

/// Runs `cmd`; its output on success, else an error with its status and output.
pub fn run_ok(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A lock held as long as the value lives: a directory holding the owner's pid. A lock whose
/// owner died (no /proc/<pid>) is taken over.
struct LockDir(PathBuf);

impl LockDir {
    fn acquire(path: &Path, patience: Duration) -> Result<Self, String> {
        let deadline = Instant::now() + patience;
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    fs::write(path.join("pid"), std::process::id().to_string())
                        .map_err(|e| e.to_string())?;
                    return Ok(Self(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(path.join("pid")).unwrap_or_default();
                    let dead = !owner.is_empty() && !Path::new("/proc").join(owner.trim()).exists();
                    if dead {
                        // Renamed first so that two waiters cannot both delete a fresh lock.
                        let stale = path.with_extension(format!("stale-{}", std::process::id()));
                        if fs::rename(path, &stale).is_ok() {
                            let _ = fs::remove_dir_all(&stale);
                        }
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "waited {} s for {} (held by pid {owner}); remove it if no test runs",
                            patience.as_secs(),
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(format!("creating {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
