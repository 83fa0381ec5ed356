//! `cargo xtask bench`: hashing and no-op planning on generated trees, as ratios against
//! `sha256sum` and `git status` measured in the same run (never timed assertions in tests).

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::engine::Session;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tree sizes in files (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    pub files: Vec<usize>,
    /// Number of large files in the large-file case.
    #[arg(long, default_value_t = 4)]
    pub large: usize,
    /// Size of each large file in MiB.
    #[arg(long, default_value_t = 64)]
    pub large_mib: usize,
    /// Repetitions per measurement (the best is kept).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Keep the generated trees in this directory and reuse them on the next run (default: a
    /// fresh temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// One measured tree.
struct Row {
    name: String,
    files: usize,
    bytes: u64,
    cold: Duration,
    sha256sum: Duration,
    warm: Duration,
    git: Duration,
}

/// Run `cargo xtask bench`.
pub fn run(sh: &Shell, _session: &Session, args: &Args) -> anyhow::Result<()> {
    for tool in ["sha256sum", "git", "xargs"] {
        if crate::target::find_on_path(sh, tool).is_none() {
            anyhow::bail!(
                "`{tool}` not found on PATH; the benchmark compares against it (install coreutils/git/findutils)"
            );
        }
    }
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let keep = args.dir.is_some();
    let tmp = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => tempfile_dir()?,
    };
    let mut rows = Vec::new();
    let mut cases: Vec<(String, usize, usize)> = args
        .files
        .iter()
        .map(|&n| (format!("{n} files"), n, 0))
        .collect();
    if args.large > 0 {
        cases.push((
            format!("{} x {} MiB", args.large, args.large_mib),
            args.large,
            args.large_mib,
        ));
    }
    for (name, n, mib) in cases {
        let root = tmp.join(name.replace(' ', "-"));
        let done = root.join("target/bench-tree-complete");
        let bytes = match std::fs::read_to_string(&done) {
            Ok(b) if keep => b.trim().parse().context("reading the kept tree's size")?,
            _ => {
                if root.exists() {
                    std::fs::remove_dir_all(&root)
                        .with_context(|| format!("removing {}", root.display()))?;
                }
                eprintln!("bench: generating {name} in {}", root.display());
                let bytes = generate(&root, n, mib)?;
                git_commit(sh, &root)?;
                std::fs::create_dir_all(root.join("target"))?;
                std::fs::write(&done, bytes.to_string())?;
                bytes
            }
        };
        let row = measure(sh, &exe, &root, &name, n, bytes, args.reps.max(1))?;
        eprintln!(
            "bench: {name}: cold {:.3}s vs sha256sum {:.3}s; warm plan {:.3}s vs git status {:.3}s",
            row.cold.as_secs_f64(),
            row.sha256sum.as_secs_f64(),
            row.warm.as_secs_f64(),
            row.git.as_secs_f64()
        );
        rows.push(row);
        if !keep {
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("removing {}", root.display()))?;
        }
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    print_table(&rows);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `n` small files (0.5–4 KiB, 100 per directory) or `n` files of `mib` MiB; returns total bytes.
fn generate(root: &Path, n: usize, mib: usize) -> anyhow::Result<u64> {
    let files = root.join("files");
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut total = 0u64;
    let mut buf = Vec::new();
    for i in 0..n {
        let dir = files.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let size = if mib > 0 {
            mib << 20
        } else {
            512 + (next() % 3584) as usize
        };
        buf.clear();
        while buf.len() < size {
            buf.extend_from_slice(&next().to_le_bytes());
        }
        buf.truncate(size);
        std::fs::write(dir.join(format!("f{i}.bin")), &buf)?;
        total += size as u64;
    }
    std::fs::create_dir_all(root.join("xtask"))?;
    std::fs::write(
        root.join("xtask/pipeline.toml"),
        "[tasks.hash]\nkind = \"command\"\ninputs = [\"files\"]\nrun = [\"true\"]\n",
    )?;
    std::fs::write(root.join(".gitignore"), "/target/\n")?;
    Ok(total)
}

fn git_commit(sh: &Shell, root: &Path) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    cmd!(sh, "git init -q").run().context("git init")?;
    cmd!(sh, "git add -A").run().context("git add")?;
    cmd!(
        sh,
        "git -c user.name=bench -c user.email=bench@localhost commit -q -m tree"
    )
    .run()
    .context("git commit")?;
    Ok(())
}

fn best(reps: usize, mut f: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..reps {
        best = best.min(f()?);
    }
    Ok(best)
}

fn timed(mut c: std::process::Command) -> anyhow::Result<Duration> {
    let shown = format!("{c:?}");
    let t0 = Instant::now();
    let out = c.output().with_context(|| format!("running {shown}"))?;
    let elapsed = t0.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "{shown} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(elapsed)
}

fn measure(
    sh: &Shell,
    exe: &Path,
    root: &Path,
    name: &str,
    files: usize,
    bytes: u64,
    reps: usize,
) -> anyhow::Result<Row> {
    let xtask = |args: &[&str]| {
        let mut c = std::process::Command::new(exe);
        c.arg("--root")
            .arg(root)
            .args(["--target", "docker"])
            .args(args);
        c.env("NO_COLOR", "1").env_remove("XTASK_TARGET");
        c
    };
    let list = root.join("target/bench-files.list");
    std::fs::create_dir_all(root.join("target"))?;
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(root.join("files")) {
        let entry = entry?;
        if entry.file_type().is_file() {
            paths.extend_from_slice(entry.path().as_os_str().as_encoded_bytes());
            paths.push(0);
        }
    }
    std::fs::write(&list, paths)?;
    let sha = || {
        let mut c = std::process::Command::new("xargs");
        c.arg("-0")
            .arg("-a")
            .arg(&list)
            .arg("sha256sum")
            .stdout(std::process::Stdio::null());
        c
    };
    // Warm the page cache so both sides read from memory.
    timed(sha())?;
    let state = root.join("target/xtask");
    let sha256sum = best(reps, || timed(sha()))?;
    let cold = best(reps, || {
        let _ = std::fs::remove_dir_all(&state);
        timed(xtask(&["plan"]))
    })?;
    // Record a run, then a no-op plan walks, stats and compares only.
    timed(xtask(&["run", "hash"]))?;
    timed(xtask(&["plan"]))?;
    let warm = best(reps, || timed(xtask(&["plan"])))?;
    let _dir = sh.push_dir(root);
    let git = best(reps, || {
        let mut c = std::process::Command::new("git");
        c.current_dir(root).args(["status", "--porcelain"]);
        timed(c)
    })?;
    Ok(Row {
        name: name.to_string(),
        files,
        bytes,
        cold,
        sha256sum,
        warm,
        git,
    })
}

fn print_table(rows: &[Row]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<16} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12}",
        "tree",
        "files",
        "MiB",
        "cold",
        "sha256sum",
        "sha/cold",
        "warm plan",
        "git status",
        "warm/git"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>10.1} {:>9.3}s {:>9.3}s {:>11.2}x {:>9.3}s {:>9.3}s {:>11.2}x",
            r.name,
            r.files,
            r.bytes as f64 / f64::from(1 << 20),
            r.cold.as_secs_f64(),
            r.sha256sum.as_secs_f64(),
            r.sha256sum.as_secs_f64() / r.cold.as_secs_f64(),
            r.warm.as_secs_f64(),
            r.git.as_secs_f64(),
            r.warm.as_secs_f64() / r.git.as_secs_f64(),
        );
    }
    let _ = writeln!(
        out,
        "targets: sha/cold >= 1.0 (cold hashing at least as fast as sha256sum); warm/git <= 1.0 (no-op plan no slower than git status)"
    );
}
