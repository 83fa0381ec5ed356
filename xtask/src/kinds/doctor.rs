//! `kind = "doctor"` and the checks behind `cargo xtask doctor`: is every tool the target needs
//! installed, new enough and pointed at the right place? Each failing row names its fix.
//!
//! ```toml
//! [tasks.doctor]
//! kind = "doctor"    # always runs; fails when anything blocks
//! ```

use std::fmt::Write as _;

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use super::{BoxTask, Diagnostic, LoadCx, Outputs, RunCx, Settings, Task, TaskKind};
use crate::target::{Choice, Options, Target};
use crate::tools::minikube::{self, ProfileState};
use crate::tools::{capture, find_program, helm, kubectl};

/// CPUs the app needs from the Minikube node (requests of both services plus PostgreSQL, surge).
pub const MIN_CPUS: u32 = 2;
/// Memory the app needs from the Minikube node, in MB.
pub const MIN_MEMORY_MB: u64 = 4096;

/// Row status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth knowing, does not block.
    Warn,
    /// Blocks the pipeline.
    Fail,
}

/// One row of the doctor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What is checked.
    pub check: String,
    /// What was found.
    pub found: String,
    /// What is required.
    pub required: String,
    /// Verdict.
    pub status: Status,
    /// The command that fixes a failing row (empty when ok).
    pub fix: String,
}

fn row(
    check: &str,
    found: impl Into<String>,
    required: &str,
    status: Status,
    fix: impl Into<String>,
) -> Row {
    Row {
        check: check.to_owned(),
        found: found.into(),
        required: required.to_owned(),
        status,
        fix: fix.into(),
    }
}

fn checked_row(check: &str, c: crate::tools::Check) -> Row {
    let status = if c.ok { Status::Ok } else { Status::Fail };
    row(check, c.found, &c.required, status, c.fix)
}

/// Which target the checks are for, decided like `Target::resolve` but without failing.
pub fn is_minikube(sh: &Shell, opts: &Options) -> bool {
    match opts.target {
        Choice::Minikube => true,
        Choice::Docker => false,
        Choice::Auto => find_program(sh, "minikube").is_some(),
    }
}

/// The fix for an unreachable daemon. For the local one a stale `DOCKER_HOST` (left over from
/// `eval $(minikube docker-env)` after the profile stopped) is as likely as a stopped daemon.
fn daemon_unreachable_fix(env: &crate::tools::ChildEnv) -> &'static str {
    if env.is_empty() {
        "start the Docker daemon (e.g. `sudo systemctl start docker`); if DOCKER_HOST is set (e.g. \
         left over from `eval $(minikube docker-env)`), run `unset DOCKER_HOST DOCKER_TLS_VERIFY \
         DOCKER_CERT_PATH`; then check `docker info`"
    } else {
        "start the Docker daemon (e.g. `sudo systemctl start docker`) and check `docker info`"
    }
}

fn docker_rows(sh: &Shell, rows: &mut Vec<Row>, env: &crate::tools::ChildEnv, daemon_label: &str) {
    if find_program(sh, "docker").is_none() {
        rows.push(row(
            "docker CLI",
            "not found",
            "installed",
            Status::Fail,
            "install Docker: https://docs.docker.com/engine/install/",
        ));
        return;
    }
    let format = "{{.Client.Version}}";
    let client = capture(
        cmd!(sh, "docker version --format {format}"),
        "docker version",
    )
    .map(|o| o.stdout.trim().to_owned())
    .unwrap_or_default();
    rows.push(row(
        "docker CLI",
        if client.is_empty() {
            "found".to_owned()
        } else {
            client
        },
        "installed",
        Status::Ok,
        "",
    ));
    let format = "{{.ServerVersion}}";
    let server = capture(
        crate::tools::with_env(cmd!(sh, "docker info --format {format}"), env),
        "docker info",
    );
    match server {
        Ok(o) if o.success() && !o.stdout.trim().is_empty() => {
            rows.push(row(
                daemon_label,
                o.stdout.trim(),
                "reachable",
                Status::Ok,
                "",
            ));
        }
        Ok(o) => rows.push(row(
            daemon_label,
            format!("unreachable: {}", o.tail(1)),
            "reachable",
            Status::Fail,
            daemon_unreachable_fix(env),
        )),
        Err(e) => rows.push(row(
            daemon_label,
            format!("{e}"),
            "reachable",
            Status::Fail,
            "check `docker info`",
        )),
    }
}

/// Runs every check for the chosen target.
pub fn checks(sh: &Shell, opts: &Options) -> Vec<Row> {
    let mut rows = Vec::new();
    if !is_minikube(sh, opts) {
        docker_rows(sh, &mut rows, &Default::default(), "docker daemon");
        return rows;
    }
    let p = &opts.profile;
    let start = format!("minikube start -p {p} --cpus={MIN_CPUS} --memory={MIN_MEMORY_MB}");
    let recreate = format!("minikube delete -p {p} && {start}");

    match minikube::version(sh) {
        Ok(v) => rows.push(checked_row(
            "minikube",
            crate::tools::version_check(
                v,
                crate::tools::versions::MINIKUBE,
                "minikube",
                "https://minikube.sigs.k8s.io/docs/start/",
            ),
        )),
        Err(_) => {
            rows.push(row("minikube", "not found", "installed", Status::Fail,
                "install minikube: https://minikube.sigs.k8s.io/docs/start/ (or use --target docker)"));
        }
    }
    let mut running = false;
    let mut runtime = String::new();
    if rows.last().is_some_and(|r| r.status == Status::Ok) {
        match minikube::status(sh, p) {
            Ok(ProfileState::Exists(n)) if n.is_running() => {
                running = true;
                rows.push(row(
                    &format!("profile {p}"),
                    "Running",
                    "Running",
                    Status::Ok,
                    "",
                ));
            }
            Ok(ProfileState::Exists(n)) => rows.push(row(
                &format!("profile {p}"),
                format!("host {}, apiserver {}", n.host, n.api_server),
                "Running",
                Status::Fail,
                format!("minikube start -p {p}"),
            )),
            Ok(ProfileState::NotFound) => rows.push(row(
                &format!("profile {p}"),
                "does not exist",
                "Running",
                Status::Fail,
                start.clone(),
            )),
            Err(e) => rows.push(row(
                &format!("profile {p}"),
                format!("{e:#}"),
                "Running",
                Status::Fail,
                format!("minikube status -p {p}"),
            )),
        }
        match minikube::profile_config(sh, p) {
            Ok(Some(cfg)) => {
                rows.push(row("driver", cfg.driver.clone(), "any", Status::Ok, ""));
                runtime = cfg.container_runtime.clone();
                let (status, found) = if runtime == "docker" || runtime.is_empty() {
                    (
                        Status::Ok,
                        if runtime.is_empty() {
                            "docker (default)".to_owned()
                        } else {
                            runtime.clone()
                        },
                    )
                } else {
                    (
                        Status::Warn,
                        format!("{runtime} (images via `minikube image build`)"),
                    )
                };
                rows.push(row("container runtime", found, "docker (others: slower builds)", status,
                    if status == Status::Ok { String::new() } else {
                        format!("optional: minikube delete -p {p} && minikube start -p {p} --container-runtime=docker")
                    }));
                let no_limit = minikube::is_no_limit(cfg.cpus.into(), &cfg.driver);
                let ok = cfg.cpus >= MIN_CPUS || no_limit;
                rows.push(row(
                    "CPUs",
                    if no_limit {
                        "no-limit (the host's)".to_owned()
                    } else {
                        cfg.cpus.to_string()
                    },
                    &format!(">= {MIN_CPUS}"),
                    if ok { Status::Ok } else { Status::Fail },
                    if ok { String::new() } else { recreate.clone() },
                ));
                let no_limit = minikube::is_no_limit(cfg.memory_mb, &cfg.driver);
                let ok = cfg.memory_mb >= MIN_MEMORY_MB || no_limit;
                rows.push(row(
                    "memory",
                    if no_limit {
                        "no-limit (the host's)".to_owned()
                    } else {
                        format!("{} MB", cfg.memory_mb)
                    },
                    &format!(">= {MIN_MEMORY_MB} MB"),
                    if ok { Status::Ok } else { Status::Fail },
                    if ok { String::new() } else { recreate.clone() },
                ));
            }
            Ok(None) => {}
            Err(e) => rows.push(row(
                "profile config",
                format!("{e:#}"),
                "readable",
                Status::Fail,
                recreate.clone(),
            )),
        }
    }
    if running && (runtime.is_empty() || runtime == "docker") {
        match minikube::docker_env(sh, p) {
            Ok(env) => docker_rows(sh, &mut rows, &env, "minikube docker daemon"),
            Err(e) => rows.push(row(
                "minikube docker-env",
                format!("{e:#}"),
                "works",
                Status::Fail,
                format!("minikube start -p {p}"),
            )),
        }
    } else if find_program(sh, "docker").is_none() {
        rows.push(row(
            "docker CLI",
            "not found",
            "installed",
            Status::Fail,
            "install Docker: https://docs.docker.com/engine/install/",
        ));
    }

    if find_program(sh, "kubectl").is_none() {
        rows.push(row(
            "kubectl",
            "not found",
            "installed",
            Status::Fail,
            "install kubectl: https://kubernetes.io/docs/tasks/tools/ (or `minikube kubectl --`)",
        ));
    } else {
        match kubectl::client_version(sh) {
            Ok(v) => rows.push(checked_row(
                "kubectl",
                crate::tools::version_check(
                    v,
                    crate::tools::versions::KUBECTL,
                    "kubectl",
                    "https://kubernetes.io/docs/tasks/tools/",
                ),
            )),
            Err(e) => rows.push(row(
                "kubectl",
                format!("{e:#}"),
                "works",
                Status::Fail,
                "check `kubectl version --client`",
            )),
        }
        rows.push(checked_row(
            "kubectl context",
            kubectl::context_check(sh, p),
        ));
        match kubectl::api_ready(sh, p) {
            Ok(()) => rows.push(row("API server", "reachable", "reachable", Status::Ok, "")),
            Err(_) => rows.push(row(
                "API server",
                "unreachable",
                "reachable",
                Status::Fail,
                format!("minikube start -p {p} (then `minikube update-context -p {p}`)"),
            )),
        }
    }
    match helm::version(sh) {
        Ok(v) if v.supported() => {
            rows.push(row("helm", v.to_string(), "v3.8+ or v4", Status::Ok, ""))
        }
        Ok(v) => rows.push(row(
            "helm",
            v.to_string(),
            "v3.8+ or v4",
            Status::Fail,
            "install a current helm: https://helm.sh/docs/intro/install/",
        )),
        Err(_) => rows.push(row(
            "helm",
            "not found",
            "v3.8+ or v4",
            Status::Fail,
            "install helm: https://helm.sh/docs/intro/install/",
        )),
    }
    rows
}

/// The table as text.
pub fn render(rows: &[Row]) -> String {
    let head = ["check", "found", "required", "status", "fix"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let s = match r.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            [
                r.check.clone(),
                r.found.clone(),
                r.required.clone(),
                s.to_owned(),
                r.fix.clone(),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cols: [&str; 5]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 4 {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head);
    for c in &cells {
        line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
    }
    out
}

impl Status {
    /// The word used in JSON events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One row as a JSON event (`--json`): `{"event":"doctor","check":…,"found":…,…}`.
pub fn json_event(r: &Row) -> serde_json::Value {
    serde_json::json!({
        "event": "doctor",
        "check": r.check,
        "found": r.found,
        "required": r.required,
        "status": r.status.as_str(),
        "fix": r.fix,
    })
}

/// Runs the checks, prints the table (under `--json`: one JSON event per row, so stdout stays
/// one JSON object per line), and fails when any row blocks.
pub fn check_and_print(sh: &Shell, opts: &Options, json: bool) -> Result<()> {
    let rows = checks(sh, opts);
    if json {
        let mut out = String::new();
        for r in &rows {
            let _ = writeln!(out, "{}", json_event(r));
        }
        print!("{out}");
    } else {
        print!("{}", render(&rows));
    }
    let failing: Vec<&Row> = rows.iter().filter(|r| r.status == Status::Fail).collect();
    if !failing.is_empty() {
        bail!(
            "doctor: {} check(s) failed: {}",
            failing.len(),
            failing
                .iter()
                .map(|r| format!("{} (fix: {})", r.check, r.fix))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// The `doctor` kind.
#[derive(Debug)]
pub struct DoctorKind;

#[derive(Debug)]
struct DoctorTask;

impl TaskKind<Target> for DoctorKind {
    fn name(&self) -> &'static str {
        "doctor"
    }

    fn parse(&self, _s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        Ok(Box::new(DoctorTask))
    }
}

impl Task<Target> for DoctorTask {
    fn always_run(&self) -> bool {
        true
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let rows = checks(cx.sh, &cx.target.options());
        for line in render(&rows).lines() {
            cx.log(line.to_owned());
        }
        if let Some(r) = rows.iter().find(|r| r.status == Status::Fail) {
            bail!("doctor: {} is {}; fix: {}", r.check, r.found, r.fix);
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_local_daemon_names_a_stale_docker_host() {
        let fix = daemon_unreachable_fix(&Default::default());
        assert!(fix.contains("systemctl start docker"), "{fix}");
        assert!(
            fix.contains("unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH")
                && fix.contains("minikube docker-env"),
            "{fix}"
        );
    }

    #[test]
    fn table_aligns_and_shows_fixes() {
        let rows = vec![
            row("helm", "v4.1.4", "v3.8+ or v4", Status::Ok, ""),
            row(
                "memory",
                "2048 MB",
                ">= 4096 MB",
                Status::Fail,
                "minikube start -p m --memory=4096",
            ),
        ];
        let t = render(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("check   found    required     status  fix"),
            "{t}"
        );
        assert!(
            lines[2].contains("FAIL") && lines[2].ends_with("minikube start -p m --memory=4096"),
            "{t}"
        );
        assert_eq!(lines[1].find("v4.1.4"), lines[2].find("2048 MB"));
    }

    #[test]
    fn json_rows_are_one_object_each() {
        let r = row(
            "docker daemon",
            "unreachable \"x\"\nsecond line",
            "reachable",
            Status::Fail,
            "start Docker",
        );
        let line = json_event(&r).to_string();
        assert!(!line.contains('\n'), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["event"], "doctor");
        assert_eq!(back["check"], "docker daemon");
        assert_eq!(back["found"], "unreachable \"x\"\nsecond line");
        assert_eq!(back["status"], "fail");
        assert_eq!(back["fix"], "start Docker");
    }
}
