//! The backend container's memory while the steps run, from `docker stats` (the daemon's own
//! accounting, the same on cgroup v1 and v2 and on Docker Desktop: usage without the page
//! cache). The stream refreshes about once a second; a container that is killed and started
//! again is picked up again.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples taken so far: when, and bytes in use.
type Samples = Arc<Mutex<Vec<(Instant, u64)>>>;

/// A running `docker stats` reader; [`Sampler::stop`] ends it.
pub(crate) struct Sampler {
    samples: Samples,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts reading `command` (a `docker stats --format {{.MemUsage}} NAME`), restarting it
    /// whenever it ends until stopped.
    pub(crate) fn start(command: &Command) -> Self {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let envs: Vec<_> = command
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect();
        let samples: Samples = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let child: Arc<Mutex<Option<Child>>> = Arc::default();
        let thread = {
            let (samples, stop, child) = (samples.clone(), stop.clone(), child.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut c = Command::new(&program);
                    c.args(&args)
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::null());
                    for (k, v) in &envs {
                        match v {
                            Some(v) => c.env(k, v),
                            None => c.env_remove(k),
                        };
                    }
                    let Ok(mut spawned) = c.spawn() else {
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    };
                    let stdout = spawned.stdout.take();
                    *lock(&child) = Some(spawned);
                    if let Some(out) = stdout {
                        read_stream(out, &samples);
                    }
                    if let Some(mut c) = lock(&child).take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        Self {
            samples,
            stop,
            child,
            thread: Some(thread),
        }
    }

    /// The highest sample taken between `from` and `to`, in bytes.
    pub(crate) fn peak_between(&self, from: Instant, to: Instant) -> Option<u64> {
        lock(&self.samples)
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, b)| *b)
            .max()
    }

    /// Waits (at most `within`) for a sample taken after `t`, so a step's last moments are
    /// sampled too.
    pub(crate) fn wait_for_sample_after(&self, t: Instant, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if lock(&self.samples).last().is_some_and(|(at, _)| *at > t) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The highest sample of the whole run, in bytes.
    pub(crate) fn peak(&self) -> Option<u64> {
        lock(&self.samples).iter().map(|(_, b)| *b).max()
    }

    /// Stops the reader and its `docker stats` child.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(c) = lock(&self.child).as_mut() {
            let _ = c.kill();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads refreshes until the stream ends. `docker stats` redraws with terminal escapes even
/// into a pipe, so samples are split on those as well as on newlines.
fn read_stream(mut out: impl std::io::Read, samples: &Samples) {
    let mut buf = [0u8; 4096];
    let mut pending = String::new();
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(end) = pending.find(['\n', '\u{1b}']) {
            let piece: String = pending.drain(..=end).collect();
            if let Some(bytes) = parse_usage(&piece) {
                lock(samples).push((Instant::now(), bytes));
            }
        }
    }
}

/// `12.5MiB / 1GiB` → bytes in use; `None` for anything else, including a stopped container's
/// `0B / 0B`.
pub(crate) fn parse_usage(line: &str) -> Option<u64> {
    let clean: String = line
        .trim_start_matches(|c: char| c == '\u{1b}' || c == '[' || c.is_ascii_uppercase())
        .to_owned();
    let (used, limit) = clean.split_once('/')?;
    let limit = parse_size(
        limit
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric()),
    )?;
    let used = parse_size(used.trim())?;
    (limit > 0).then_some(used)
}

/// `512MiB`, `1.5GiB`, `800kB`, `0B` → bytes.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let at = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(at);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// Bytes as `123.4 MiB`.
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn docker_stats_lines_parse_with_their_escapes() {
        assert_eq!(parse_usage("1.41MiB / 64MiB"), Some(1_478_492));
        assert_eq!(parse_usage("\u{1b}[H1.41MiB / 64MiB \u{1b}[K"), None);
        assert_eq!(parse_usage("[H1.5GiB / 2GiB "), Some(1_610_612_736));
        assert_eq!(parse_usage("0B / 0B"), None);
        assert_eq!(parse_usage("garbage"), None);
        assert_eq!(parse_size("800kB"), Some(800_000));
    }

    #[test]
    fn a_stream_with_escapes_yields_every_sample() {
        let samples: Samples = Arc::default();
        let stream = "\u{1b}[H1.41MiB / 64MiB \u{1b}[K\n \u{1b}[K\n\u{1b}[J\u{1b}[H2MiB / 64MiB\n";
        read_stream(stream.as_bytes(), &samples);
        let got: Vec<u64> = lock(&samples).iter().map(|(_, b)| *b).collect();
        assert_eq!(got, vec![1_478_492, 2 * 1_048_576]);
    }

    /// The Docker target's `--memory` per role equals the chart's `resources.limits.memory`.
    #[test]
    fn the_docker_target_s_memory_limits_are_the_chart_s() {
        let values = include_str!("../../../k8s/todo-app/values.yaml");
        for (role, docker) in crate::kinds::containers::MEMORY_LIMITS {
            let chart = chart_memory_limit(values, role)
                .unwrap_or_else(|| panic!("no {role}.resources.limits.memory in values.yaml"));
            let as_docker = chart
                .replace("Gi", "g")
                .replace("Mi", "m")
                .to_ascii_lowercase();
            assert_eq!(as_docker, docker, "{role}: chart says {chart}");
        }
    }

    /// `ROLE.resources.limits.memory` of values.yaml (two-space indentation, top-level roles).
    fn chart_memory_limit(values: &str, role: &str) -> Option<String> {
        let mut in_role = false;
        let mut path: Vec<(usize, String)> = Vec::new();
        for line in values.lines() {
            let content = line.split('#').next().unwrap_or("").trim_end();
            if content.trim().is_empty() {
                continue;
            }
            let indent = content.len() - content.trim_start().len();
            let Some((key, value)) = content.trim().split_once(':') else {
                continue;
            };
            if indent == 0 {
                in_role = key == role;
                path.clear();
                continue;
            }
            path.retain(|(i, _)| *i < indent);
            path.push((indent, key.to_owned()));
            let keys: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
            if in_role && keys == ["resources", "limits", "memory"] {
                return Some(value.trim().to_owned());
            }
        }
        None
    }
}
