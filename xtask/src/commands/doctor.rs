//! `cargo xtask doctor`: is every tool the target needs installed, new enough and pointed at
//! the right place? Prints a table of check, found, required, status and fix (under `--json`
//! one `doctor` event per row) and fails when anything blocks. `deploy` runs it first.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use crate::image_registry::Registry;
use crate::pipeline::Pipeline;
use crate::target::kube::{Allowed, Delivery, KubeTarget};
use crate::target::{Choice, Options, Target};
use crate::tools::minikube::{self, ProfileState};
use crate::tools::{
    Check, ChildEnv, capture, find_program, helm, kubectl, version_check, versions,
};

/// CPUs the app needs from the Minikube node (requests of both services plus PostgreSQL, surge).
pub(crate) const MIN_CPUS: u32 = 2;
/// Memory the app needs from the Minikube node, in MB.
pub(crate) const MIN_MEMORY_MB: u64 = 4096;

/// Options of `cargo xtask doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask doctor`.
pub(crate) fn run(sh: &Shell, p: &Pipeline, _args: &Args) -> Result<()> {
    check(sh, p)
}

/// Runs the checks, prints the table (under `--json`: one JSON event per row, so stdout stays
/// one JSON object per line), and fails when any row blocks.
pub(crate) fn check(sh: &Shell, p: &Pipeline) -> Result<()> {
    let opts = p.opts.target_options();
    crate::target::check_context_flags(&opts)?;
    let mut rows = if opts.target == Choice::Kube {
        // Resolving checks the safety rule first: a context not named, unknown or refused is
        // the error, before any row.
        match p.target(sh)? {
            Target::Kube(k) => kube_rows(sh, k),
            _ => checks(sh, &opts),
        }
    } else {
        checks(sh, &opts)
    };
    if let Some(registry) = &opts.registry {
        // Asked in the first image's repository: a pull token is scoped to one.
        let image = p
            .graph()
            .ok()
            .and_then(|g| p.image_repositories(&g).into_iter().next())
            .unwrap_or_else(|| "xtask-doctor".to_owned());
        rows.push(registry_row(sh, registry, &image));
    }
    if p.opts.json {
        let out: String = rows
            .iter()
            .map(|r| format!("{}\n", json_event(r)))
            .collect();
        print!("{out}");
    } else {
        print!("{}", render(&rows));
    }
    let failing: Vec<String> = (rows.iter().filter(|r| r.status == Status::Fail))
        .map(|r| format!("{} (fix: {})", r.check, r.fix))
        .collect();
    if !failing.is_empty() {
        bail!(
            "doctor: {} check(s) failed: {}",
            failing.len(),
            failing.join("; ")
        );
    }
    Ok(())
}

/// Row status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Fine.
    Ok,
    /// Worth knowing, does not block.
    Warn,
    /// Blocks the pipeline.
    Fail,
}

/// One row of the doctor table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    check: String,
    found: String,
    required: String,
    status: Status,
    /// The command that fixes a failing row (empty when ok).
    fix: String,
}

impl Row {
    fn new(check: &str, found: impl Into<String>, required: &str, status: Status) -> Row {
        let (check, found, required) = (check.to_owned(), found.into(), required.to_owned());
        let fix = String::new();
        Row {
            check,
            found,
            required,
            status,
            fix,
        }
    }

    fn ok(check: &str, found: impl Into<String>, required: &str) -> Row {
        Row::new(check, found, required, Status::Ok)
    }

    fn fail(check: &str, found: impl Into<String>, required: &str, fix: impl Into<String>) -> Row {
        Row {
            fix: fix.into(),
            ..Row::new(check, found, required, Status::Fail)
        }
    }

    /// An ok row when `ok`, else a failing one with `fix`.
    fn pass_if(ok: bool, check: &str, found: String, required: &str, fix: &str) -> Row {
        if ok {
            Row::ok(check, found, required)
        } else {
            Row::fail(check, found, required, fix)
        }
    }

    fn checked(check: &str, c: Check) -> Row {
        Row::pass_if(c.ok, check, c.found, &c.required, &c.fix)
    }
}

/// With `--registry`: it answers the Registry HTTP API and grants the credentials (or anonymous
/// access) pull access, asked as the look-up of a tag that need not exist.
fn registry_row(sh: &Shell, registry: &Registry, image: &str) -> Row {
    let (check, required) = ("registry", "reachable, access granted");
    let address = &registry.address;
    if !registry.lookup {
        return Row::new(
            check,
            format!("{address} (not asked: --no-registry-cache)"),
            required,
            Status::Warn,
        );
    }
    let who = match registry.credentials(sh) {
        Ok(Some(c)) => format!("user `{}` from {}", c.username, c.source),
        Ok(None) => "anonymous".to_owned(),
        Err(e) => {
            return Row::fail(
                check,
                format!("{address}: {e:#}"),
                required,
                "fix the credentials named",
            );
        }
    };
    match registry.lookup(sh, image, "xtask-doctor-probe") {
        Ok(_) => Row::ok(check, format!("{address} ({who})"), required),
        Err(e) => {
            let text = format!("{e:#}");
            let (found, fix) = text
                .split_once("; fix: ")
                .unwrap_or((text.as_str(), "check --registry"));
            Row::fail(check, found.to_owned(), required, fix.to_owned())
        }
    }
}

/// Which target the checks are for, decided like `Target::resolve` but without failing.
fn is_minikube(sh: &Shell, opts: &Options) -> bool {
    match opts.target {
        Choice::Minikube => true,
        Choice::Docker | Choice::Kube => false,
        Choice::Auto => find_program(sh, "minikube").is_some(),
    }
}

/// The fix for an unreachable daemon. For the local one a stale `DOCKER_HOST` (left over from
/// `eval $(minikube docker-env)` after the profile stopped) is as likely as a stopped daemon.
fn daemon_unreachable_fix(env: &ChildEnv) -> &'static str {
    if env.is_empty() {
        "start the Docker daemon (e.g. `sudo systemctl start docker`); if DOCKER_HOST is set (e.g. \
         left over from `eval $(minikube docker-env)`), run `unset DOCKER_HOST DOCKER_TLS_VERIFY \
         DOCKER_CERT_PATH`; then check `docker info`"
    } else {
        "start the Docker daemon (e.g. `sudo systemctl start docker`) and check `docker info`"
    }
}

const INSTALL_DOCKER: &str = "install Docker: https://docs.docker.com/engine/install/";

fn docker_rows(sh: &Shell, rows: &mut Vec<Row>, env: &ChildEnv, daemon_label: &str) {
    if find_program(sh, "docker").is_none() {
        return rows.push(Row::fail(
            "docker CLI",
            "not found",
            "installed",
            INSTALL_DOCKER,
        ));
    }
    let format = "{{.Client.Version}}";
    let client = capture(
        cmd!(sh, "docker version --format {format}"),
        "docker version",
    )
    .map(|o| o.stdout.trim().to_owned())
    .unwrap_or_default();
    let client = if client.is_empty() {
        "found".to_owned()
    } else {
        client
    };
    rows.push(Row::ok("docker CLI", client, "installed"));
    let format = "{{.ServerVersion}}";
    let info = cmd!(sh, "docker info --format {format}");
    rows.push(
        match capture(crate::tools::with_env(info, env), "docker info") {
            Ok(o) if o.success() && !o.stdout.trim().is_empty() => {
                Row::ok(daemon_label, o.stdout.trim(), "reachable")
            }
            Ok(o) => {
                let found = format!("unreachable: {}", o.tail(1));
                Row::fail(
                    daemon_label,
                    found,
                    "reachable",
                    daemon_unreachable_fix(env),
                )
            }
            Err(e) => Row::fail(
                daemon_label,
                e.to_string(),
                "reachable",
                "check `docker info`",
            ),
        },
    );
}

/// The profile's state, driver, runtime and size; returns whether it runs Docker, so that its
/// daemon can be checked.
fn profile_rows(sh: &Shell, rows: &mut Vec<Row>, p: &str) -> bool {
    let start = format!("minikube start -p {p} --cpus={MIN_CPUS} --memory={MIN_MEMORY_MB}");
    let recreate = format!("minikube delete -p {p} && {start}");
    let check = format!("profile {p}");
    let running = match minikube::status(sh, p) {
        Ok(ProfileState::Exists(n)) if n.is_running() => {
            rows.push(Row::ok(&check, "Running", "Running"));
            true
        }
        Ok(ProfileState::Exists(n)) => {
            let found = format!("host {}, apiserver {}", n.host, n.api_server);
            rows.push(Row::fail(
                &check,
                found,
                "Running",
                format!("minikube start -p {p}"),
            ));
            false
        }
        Ok(ProfileState::NotFound) => {
            rows.push(Row::fail(&check, "does not exist", "Running", &start));
            false
        }
        Err(e) => {
            let fix = format!("minikube status -p {p}");
            rows.push(Row::fail(&check, format!("{e:#}"), "Running", fix));
            false
        }
    };
    let cfg = match minikube::profile_config(sh, p) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return running,
        Err(e) => {
            rows.push(Row::fail(
                "profile config",
                format!("{e:#}"),
                "readable",
                recreate,
            ));
            return running;
        }
    };
    rows.push(Row::ok("driver", cfg.driver.clone(), "any"));
    let runtime = cfg.container_runtime.as_str();
    let docker = runtime.is_empty() || runtime == "docker";
    let required = "docker (others: slower deploys)";
    rows.push(match runtime {
        "" => Row::ok("container runtime", "docker (default)", required),
        "docker" => Row::ok("container runtime", "docker", required),
        other => Row {
            fix: format!("optional: {recreate} --container-runtime=docker"),
            ..Row::new(
                "container runtime",
                format!("{other} (images built locally, then `minikube image load`)"),
                required,
                Status::Warn,
            )
        },
    });
    let host = "no-limit (the host's)".to_owned();
    let no_limit = minikube::is_no_limit(cfg.cpus.into(), &cfg.driver);
    let found = if no_limit {
        host.clone()
    } else {
        cfg.cpus.to_string()
    };
    let ok = cfg.cpus >= MIN_CPUS || no_limit;
    rows.push(Row::pass_if(
        ok,
        "CPUs",
        found,
        &format!(">= {MIN_CPUS}"),
        &recreate,
    ));
    let no_limit = minikube::is_no_limit(cfg.memory_mb, &cfg.driver);
    let found = if no_limit {
        host
    } else {
        format!("{} MB", cfg.memory_mb)
    };
    let ok = cfg.memory_mb >= MIN_MEMORY_MB || no_limit;
    let required = format!(">= {MIN_MEMORY_MB} MB");
    rows.push(Row::pass_if(ok, "memory", found, &required, &recreate));
    running && docker
}

/// Runs every check for the chosen target.
fn checks(sh: &Shell, opts: &Options) -> Vec<Row> {
    let mut rows = Vec::new();
    if !is_minikube(sh, opts) {
        docker_rows(sh, &mut rows, &ChildEnv::default(), "docker daemon");
        return rows;
    }
    let p = &opts.profile;
    let install = "https://minikube.sigs.k8s.io/docs/start/";
    let has_docker_daemon = match minikube::version(sh) {
        Ok(v) => {
            rows.push(Row::checked(
                "minikube",
                version_check(v, versions::MINIKUBE, "minikube", install),
            ));
            rows.last().is_some_and(|r| r.status == Status::Ok) && profile_rows(sh, &mut rows, p)
        }
        Err(_) => {
            let fix = format!("install minikube: {install} (or use --target docker)");
            rows.push(Row::fail("minikube", "not found", "installed", fix));
            false
        }
    };
    if has_docker_daemon {
        match minikube::docker_env(sh, p) {
            Ok(env) => docker_rows(sh, &mut rows, &env, "minikube docker daemon"),
            Err(e) => rows.push(Row::fail(
                "minikube docker-env",
                format!("{e:#}"),
                "works",
                format!("minikube start -p {p}"),
            )),
        }
    } else if find_program(sh, "docker").is_none() {
        rows.push(Row::fail(
            "docker CLI",
            "not found",
            "installed",
            INSTALL_DOCKER,
        ));
    }

    if find_program(sh, "kubectl").is_none() {
        let fix =
            "install kubectl: https://kubernetes.io/docs/tasks/tools/ (or `minikube kubectl --`)";
        rows.push(Row::fail("kubectl", "not found", "installed", fix));
    } else {
        let install = "https://kubernetes.io/docs/tasks/tools/";
        rows.push(match kubectl::client_version(sh) {
            Ok(v) => Row::checked(
                "kubectl",
                version_check(v, versions::KUBECTL, "kubectl", install),
            ),
            Err(e) => Row::fail(
                "kubectl",
                format!("{e:#}"),
                "works",
                "check `kubectl version --client`",
            ),
        });
        rows.push(Row::checked(
            "kubectl context",
            kubectl::context_check(sh, p),
        ));
        let fix = format!("minikube start -p {p} (then `minikube update-context -p {p}`)");
        let ready = kubectl::api_ready(sh, p).is_ok();
        let found = if ready { "reachable" } else { "unreachable" };
        rows.push(Row::pass_if(
            ready,
            "API server",
            found.to_owned(),
            "reachable",
            &fix,
        ));
    }
    let required = "v3.8+ or v4";
    rows.push(match helm::version(sh) {
        Ok(v) => Row::pass_if(
            v.supported(),
            "helm",
            v.to_string(),
            required,
            "install a current helm: https://helm.sh/docs/intro/install/",
        ),
        Err(_) => Row::fail(
            "helm",
            "not found",
            required,
            "install helm: https://helm.sh/docs/intro/install/",
        ),
    });
    rows
}

/// The checks of the kube target: kubectl, the context (why it may be deployed to), its API
/// server, how images reach its nodes and the tool that loads them, helm, Docker.
fn kube_rows(sh: &Shell, k: &KubeTarget) -> Vec<Row> {
    let mut rows = Vec::new();
    docker_rows(sh, &mut rows, &ChildEnv::default(), "docker daemon");
    let install = "https://kubernetes.io/docs/tasks/tools/";
    rows.push(match kubectl::client_version(sh) {
        Ok(v) => Row::checked(
            "kubectl",
            version_check(v, versions::KUBECTL, "kubectl", install),
        ),
        Err(e) => Row::fail(
            "kubectl",
            format!("{e:#}"),
            "works",
            format!("install kubectl: {install}"),
        ),
    });
    let why = match &k.allowed {
        Allowed::Local(product) => format!("local {} cluster", product.name()),
        Allowed::Setting => format!("allowed in {}", crate::target::settings::FILE),
        Allowed::Flag => "allowed by --allow-context".to_owned(),
    };
    rows.push(Row::ok(
        "kube context",
        format!("{} (cluster {}, {why})", k.context, k.cluster.cluster),
        "named, local or allowed",
    ));
    let ready = kubectl::api_ready(sh, &k.context);
    rows.push(match ready {
        Ok(()) => Row::ok("API server", k.cluster.server.clone(), "reachable"),
        Err(e) => Row::fail(
            "API server",
            format!("{e:#}"),
            "reachable",
            format!("start the cluster of context `{}`", k.context),
        ),
    });
    let (tool, install) = match k.delivery(sh) {
        Ok(Delivery::Kind { cluster }) => {
            rows.push(Row::ok(
                "images",
                format!("loaded into kind cluster {cluster}"),
                "reach the nodes",
            ));
            (
                Some("kind"),
                "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            )
        }
        Ok(Delivery::K3d { cluster }) => {
            rows.push(Row::ok(
                "images",
                format!("imported into k3d cluster {cluster}"),
                "reach the nodes",
            ));
            (Some("k3d"), "https://k3d.io/#installation")
        }
        Ok(Delivery::Registry { address }) => {
            rows.push(Row::ok(
                "images",
                format!("pushed to {address}; the nodes pull them by digest"),
                "reach the nodes",
            ));
            (None, "")
        }
        Ok(Delivery::SharedDaemon) => {
            rows.push(Row::ok(
                "images",
                "the nodes use this Docker daemon",
                "reach the nodes",
            ));
            (None, "")
        }
        Err(e) => {
            // The message's first line ends with why; the table shows why, and the fix.
            let text = format!("{e:#}");
            let (first, fix) = text.split_once("\nfix: ").unwrap_or((&text, ""));
            let found = first
                .rsplit_once("Docker daemon: ")
                .map_or(first, |(_, why)| why);
            rows.push(Row::fail("images", found, "reach the nodes", fix));
            (None, "")
        }
    };
    if let Some(tool) = tool {
        rows.push(if find_program(sh, tool).is_some() {
            Row::ok(tool, "installed", "installed")
        } else {
            Row::fail(
                tool,
                "not found",
                "installed",
                format!("install {tool}: {install}"),
            )
        });
    }
    let required = "v3.8+ or v4";
    rows.push(match helm::version(sh) {
        Ok(v) => Row::pass_if(
            v.supported(),
            "helm",
            v.to_string(),
            required,
            "install a current helm: https://helm.sh/docs/intro/install/",
        ),
        Err(_) => Row::fail(
            "helm",
            "not found",
            required,
            "install helm: https://helm.sh/docs/intro/install/",
        ),
    });
    rows
}

/// The table as text: columns padded to their widest cell, the fix last and unpadded.
fn render(rows: &[Row]) -> String {
    let cells: Vec<[&str; 5]> = std::iter::once(["check", "found", "required", "status", "fix"])
        .chain(rows.iter().map(|r| {
            let status = match r.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            [&*r.check, &*r.found, &*r.required, status, &*r.fix]
        }))
        .collect();
    let mut widths = [0; 4];
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for c in &cells {
        let mut line = String::new();
        for (cell, w) in c.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        line.push_str(c[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One row as a JSON event (`--json`): `{"event":"doctor","check":…,"found":…,…}`.
fn json_event(r: &Row) -> serde_json::Value {
    let status = match r.status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
    };
    serde_json::json!({
        "event": "doctor",
        "check": r.check,
        "found": r.found,
        "required": r.required,
        "status": status,
        "fix": r.fix,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_local_daemon_names_a_stale_docker_host() {
        let fix = daemon_unreachable_fix(&ChildEnv::default());
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
            Row::ok("helm", "v4.1.4", "v3.8+ or v4"),
            Row::fail(
                "memory",
                "2048 MB",
                ">= 4096 MB",
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
            lines[1].ends_with("ok"),
            "an ok row has no trailing padding: {t:?}"
        );
        assert!(
            lines[2].contains("FAIL") && lines[2].ends_with("minikube start -p m --memory=4096"),
            "{t}"
        );
        assert_eq!(lines[1].find("v4.1.4"), lines[2].find("2048 MB"));
    }

    #[test]
    fn json_rows_are_one_object_each() {
        let r = Row::fail(
            "docker daemon",
            "unreachable \"x\"\nsecond line",
            "reachable",
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
