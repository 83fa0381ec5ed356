//! `cargo xtask bench loop`: the inner loop's figures, each beside its floor measured in the
//! same run on the same machine (never a timed assertion in a test).
//!
//! On a copy of the project's files (so edits never touch the user's tree), against the Docker
//! target in its own namespace with its own builder (`<namespace>-builder`: the cold figure
//! empties it, and the user's shared builder is neither used nor touched):
//! - **edit → live, dev**: one changed line in a backend handler, then `cargo xtask deploy
//!   --build-profile dev` until the new backend serves it and the smoke test passes; floor: the
//!   host's incremental `cargo build -p todo-backend` after the same kind of edit.
//! - **edit → live, release**: the same with the release profile; floor: the host's incremental
//!   `cargo build --release -p todo-backend`.
//! - **cold**: `cargo xtask build --build-profile release` (both images) with none of this
//!   namespace's images, nor its builder or the builder's volumes, on the daemon; floor: a cold host `cargo build
//!   --release` of both apps into an empty target directory.
//!
//! Reps alternate which side goes first; a ratio is the median of the per-rep ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use xshell::Shell;

use crate::builder::Profile;
use crate::pipeline::Pipeline;
use crate::target::DockerTarget;
use crate::target::docker::BACKEND_PORT;
use crate::tools::ChildEnv;
use crate::tools::docker::Docker;

/// Options of `cargo xtask bench loop`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Edits per profile (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Leave out the cold build (it takes minutes on two cores).
    #[arg(long)]
    pub no_cold: bool,
    /// The build profiles whose edit -> live figure to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dev,release")]
    pub profiles: Vec<Profile>,
    /// Namespace of the benchmark's own deployment and of its builder (`<namespace>-builder`),
    /// all removed, images and the builder's volumes included, when the benchmark ends.
    #[arg(long, default_value = "bench-loop")]
    pub namespace: String,
    /// Local port of the benchmark deployment's frontend.
    #[arg(long, default_value_t = 3990)]
    pub port: u16,
}

/// The handler the benchmark edits, and the line it rewrites there.
const HANDLER: &str = "backend/src/routes/health.rs";
const LINE: &str = r#"Json(json!({ "status": "ok" }))"#;

/// One figure: our side and its floor, rep by rep.
struct Figure {
    name: &'static str,
    floor: String,
    ours: Vec<Duration>,
    base: Vec<Duration>,
    goal: &'static str,
}

/// Run `cargo xtask bench loop`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let work = std::env::temp_dir().join(format!("xtask-bench-loop-{}", std::process::id()));
    let tree = work.join("tree");
    copy_tracked(sh, &p.session.root, &tree)?;
    let bench = Bench {
        exe,
        tree,
        host_target: work.join("host-target"),
        args: args.clone(),
    };
    eprintln!(
        "bench loop: copy of the project in {}; Docker target, namespace {}; load average {}",
        bench.tree.display(),
        args.namespace,
        load_average()
    );
    let result = bench.figures(sh);
    eprintln!("bench loop: removing the benchmark deployment, its images and its builder");
    let down = bench
        .xtask(&["down", "--volumes", "--images", "--compile-cache"])
        .output();
    let _ = std::fs::remove_dir_all(&work);
    let figures = result?;
    print_table(&figures);
    if let Ok(out) = down
        && !out.status.success()
    {
        eprintln!(
            "bench loop: warning: `down` failed; remove namespace {} by hand: {}",
            args.namespace,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

struct Bench {
    exe: PathBuf,
    tree: PathBuf,
    host_target: PathBuf,
    args: Args,
}

impl Bench {
    fn figures(&self, sh: &Shell) -> Result<Vec<Figure>> {
        let mut figures = Vec::new();
        if !self.args.no_cold {
            figures.push(self.cold()?);
        }
        let mut edit = 0;
        for (profile, goal) in [
            (Profile::Dev, "<= 2.5x and <= 5 s"),
            (Profile::Release, "<= 1.3x"),
        ] {
            if self.args.profiles.contains(&profile) {
                figures.push(self.edit_to_live(sh, profile.name(), goal, &mut edit)?);
            }
        }
        Ok(figures)
    }

    /// `cargo xtask` on the copy, against the benchmark's own Docker deployment.
    fn xtask(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("--root").arg(&self.tree);
        c.args(["--target", "docker", "--namespace", &self.args.namespace]);
        c.args(["--port", &self.args.port.to_string()]);
        c.args(["--builder", &format!("{}-builder", self.args.namespace)]);
        c.args(args).env("NO_COLOR", "1").env_remove("XTASK_TARGET");
        c
    }

    /// Host `cargo build` in the copy, into `target_dir`.
    fn cargo(&self, target_dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("cargo");
        c.current_dir(&self.tree)
            .args(["build", "--locked", "--quiet"])
            .args(args)
            .env("CARGO_TARGET_DIR", target_dir);
        c
    }

    fn cold(&self) -> Result<Figure> {
        eprintln!("bench loop: cold: removing this namespace's images and its builder");
        timed(self.xtask(&["down", "--volumes", "--images", "--compile-cache"]))?;
        let empty = self.host_target.with_file_name("cold-target");
        eprintln!("bench loop: cold: host `cargo build --release` of both apps, empty target dir");
        let base = timed(self.cargo(
            &empty,
            &["--release", "-p", "todo-backend", "-p", "todo-frontend"],
        ))?;
        let _ = std::fs::remove_dir_all(&empty);
        eprintln!("bench loop: cold: `cargo xtask build --build-profile release`");
        let ours = timed(self.xtask(&["build", "--build-profile", "release"]))?;
        Ok(Figure {
            name: "cold, both images",
            floor: "cold host cargo build --release (both apps)".into(),
            ours: vec![ours],
            base: vec![base],
            goal: "<= 1.15x",
        })
    }

    fn edit_to_live(
        &self,
        sh: &Shell,
        profile: &'static str,
        goal: &'static str,
        edit: &mut u32,
    ) -> Result<Figure> {
        let release: &[&str] = if profile == "release" {
            &["--release"]
        } else {
            &[]
        };
        let host = |extra: &[&str]| {
            let mut a = release.to_vec();
            a.extend_from_slice(&["-p", "todo-backend"]);
            a.extend_from_slice(extra);
            self.cargo(&self.host_target, &a)
        };
        let deploy = || self.xtask(&["deploy", "--build-profile", profile]);
        eprintln!("bench loop: {profile}: first deploy and host build (untimed, warm-up)");
        timed(deploy())?;
        timed(host(&[]))?;
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for rep in 0..self.args.reps.max(1) {
            *edit += 1;
            self.edit(*edit)?;
            let before = self.backend_container()?;
            let mut deploy_side = || -> Result<()> {
                ours.push(timed(deploy())?);
                let after = self.backend_container()?;
                ensure!(
                    after != before,
                    "the edit did not replace the backend container ({before})"
                );
                self.check_live(sh, *edit)
            };
            if rep % 2 == 0 {
                deploy_side()?;
                base.push(timed(host(&[]))?);
            } else {
                base.push(timed(host(&[]))?);
                deploy_side()?;
            }
            eprintln!(
                "bench loop: {profile} edit {rep}: live in {:.2}s, host build {:.2}s",
                ours[rep].as_secs_f64(),
                base[rep].as_secs_f64()
            );
        }
        Ok(Figure {
            name: if profile == "dev" {
                "edit -> live, dev"
            } else {
                "edit -> live, release"
            },
            floor: format!(
                "host incremental cargo build {}-p todo-backend",
                release.first().map_or(String::new(), |r| format!("{r} "))
            ),
            ours,
            base,
            goal,
        })
    }

    /// Rewrite the handler's line so the backend's `/health` answers with `edit`.
    fn edit(&self, edit: u32) -> Result<()> {
        let path = self.tree.join(HANDLER);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let start = text
            .find(r#"Json(json!({ "status": "ok""#)
            .with_context(|| {
                format!("{HANDLER} no longer has the line the benchmark edits: {LINE}")
            })?;
        let end = start + text[start..].find(')').context("unterminated line")? + 1;
        let new = format!(r#"Json(json!({{ "status": "ok", "edit": {edit} }}))"#);
        let text = format!("{}{new}{}", &text[..start], &text[end + 1..]);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn names(&self) -> DockerTarget {
        DockerTarget {
            namespace: self.args.namespace.clone(),
            port: self.args.port,
            registry: None,
            builder: format!("{}-builder", self.args.namespace),
        }
    }

    /// The backend container's ID (empty when there is none).
    fn backend_container(&self) -> Result<String> {
        let name = self.names().container("backend");
        let out = Command::new("docker")
            .args(["inspect", "--format", "{{.Id}}", &name])
            .output()
            .context("running docker inspect")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The live backend answers `/health` with this edit.
    fn check_live(&self, sh: &Shell, edit: u32) -> Result<()> {
        let docker = Docker::new(sh, ChildEnv::new());
        let addr = docker.port(&self.names().container("backend"), BACKEND_PORT)?;
        let url = format!("http://{addr}/health");
        let body = ureq::get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?
            .into_string()
            .context("reading /health")?;
        let want = format!("\"edit\":{edit}");
        if !body.replace(' ', "").contains(&want) {
            bail!("the live backend does not serve edit {edit} yet: /health answered {body}");
        }
        Ok(())
    }
}

/// The tracked and untracked-but-not-ignored files of `root`, copied to `to`.
fn copy_tracked(sh: &Shell, root: &Path, to: &Path) -> Result<()> {
    let _dir = sh.push_dir(root);
    let list = xshell::cmd!(sh, "git ls-files -z --cached --others --exclude-standard")
        .output()
        .context("listing the project's files with git (the benchmark copies them)")?;
    for rel in list.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).context("a non-UTF-8 path")?);
        let src = root.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue; // deleted but still tracked
        };
        if !meta.is_file() {
            continue;
        }
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
    }
    Ok(())
}

fn timed(mut c: Command) -> Result<Duration> {
    let shown = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let t0 = Instant::now();
    let out = c.output().with_context(|| format!("running {shown}"))?;
    let elapsed = t0.elapsed();
    ensure!(
        out.status.success(),
        "`{shown}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(elapsed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn print_table(figures: &[Figure]) {
    println!(
        "{:<24} {:>5} {:>9} {:>9} {:>7}  {:<12} floor",
        "figure", "reps", "ours", "floor", "ratio", "goal"
    );
    for f in figures {
        let secs = |v: &[Duration]| median(v.iter().map(Duration::as_secs_f64).collect());
        let ratio = median(
            f.ours
                .iter()
                .zip(&f.base)
                .map(|(o, b)| o.as_secs_f64() / b.as_secs_f64())
                .collect(),
        );
        println!(
            "{:<24} {:>5} {:>8.2}s {:>8.2}s {:>6.2}x  {:<12} {}",
            f.name,
            f.ours.len(),
            secs(&f.ours),
            secs(&f.base),
            ratio,
            f.goal,
            f.floor
        );
    }
    println!(
        "times are medians; ratios are medians of per-rep ratios; load average now {}",
        load_average()
    );
}
