//! `cargo xtask bench`: hashing and no-op planning on generated trees, as ratios against
//! `sha256sum` and `git status` measured in the same run (never timed assertions in tests).
//! `cargo xtask bench load` is the load-and-fault suite against the Docker target
//! ([`crate::load`]); `cargo xtask bench loop` is the inner loop's figures
//! ([`crate::loop_bench`]).
//!
//! Fairness: every baseline works on the same files, from the same warm page cache, and is
//! timed alternately with the engine (rep by rep), so load from other processes hits both
//! sides alike; each ratio is the median of the per-rep ratios. The exact commands are printed.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::pipeline::Pipeline;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Another benchmark instead of hashing.
    #[command(subcommand)]
    pub suite: Option<Suite>,
    /// Tree sizes in files (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    pub files: Vec<usize>,
    /// Number of large files in the large-file case.
    #[arg(long, default_value_t = 4)]
    pub large: usize,
    /// Size of each large file in MiB.
    #[arg(long, default_value_t = 64)]
    pub large_mib: usize,
    /// Least repetitions per measurement (medians are reported); quick measurements repeat
    /// until each side has run for about a second, at most 41 times, so noise from other
    /// processes averages out where a single run takes milliseconds.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Keep the generated trees in this directory and reuse them on the next run (default: a
    /// fresh temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// The benchmarks other than hashing.
#[derive(Debug, clap::Subcommand)]
pub enum Suite {
    /// Load and faults against the Docker target: a sign-in burst, a mixed workload, database
    /// and backend kills, down and deploy, hostile input; prints a table.
    Load(crate::load::Args),
    /// The inner loop against the Docker target: edit -> live with the dev and the release
    /// profile and a cold build of both images, each beside the host's cargo build.
    Loop(crate::loop_bench::Args),
}

/// One measured tree: per-rep durations of each side, in the order they were taken.
struct Row {
    name: String,
    files: usize,
    bytes: u64,
    cold: Vec<Duration>,
    sha256sum: Vec<Duration>,
    warm: Vec<Duration>,
    git: Vec<Duration>,
}

/// Median over the reps of `num[i] / den[i]` (each pair was timed back to back).
fn paired_ratio(num: &[Duration], den: &[Duration]) -> f64 {
    median(
        num.iter()
            .zip(den)
            .map(|(n, d)| n.as_secs_f64() / d.as_secs_f64())
            .collect(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_secs(v: &[Duration]) -> f64 {
    median(v.iter().map(Duration::as_secs_f64).collect())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Run `cargo xtask bench`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    match &args.suite {
        Some(Suite::Load(load)) => return crate::load::run(sh, p, load),
        Some(Suite::Loop(inner)) => return crate::loop_bench::run(sh, p, inner),
        None => {}
    }
    for tool in ["sha256sum", "git", "xargs"] {
        if crate::tools::find_program(sh, tool).is_none() {
            anyhow::bail!(
                "`{tool}` not found on PATH; the benchmark compares against it (install coreutils/git/findutils)"
            );
        }
    }
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench: {cores} cores, load average {} at start; {} reps per side, alternating",
        load_average(),
        args.reps.max(1)
    );
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
        let row = measure(&exe, &root, &name, n, bytes, args.reps.max(1))?;
        eprintln!(
            "bench: {name}: cold {:.3}s vs sha256sum {:.3}s ({} reps); warm plan {:.2}ms vs git status {:.2}ms ({} reps); medians; load {}",
            median_secs(&row.cold),
            median_secs(&row.sha256sum),
            row.cold.len(),
            median_secs(&row.warm) * 1e3,
            median_secs(&row.git) * 1e3,
            row.warm.len(),
            load_average()
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

/// Whether to take rep number `rep`: at least `reps`, then more while the engine's side has
/// run for less than a second in total, up to [`MAX_REPS`].
fn more(rep: usize, reps: usize, taken: &[Duration]) -> bool {
    rep < reps || (rep < MAX_REPS && taken.iter().sum::<Duration>() < Duration::from_secs(1))
}

/// Most repetitions of one quick measurement.
const MAX_REPS: usize = 41;

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
    let git = || {
        let mut c = std::process::Command::new("git");
        c.current_dir(root).args(["status", "--porcelain"]);
        c
    };
    eprintln!(
        "bench: {name}: baselines: `xargs -0 -a {} sha256sum` (the same {files} files, NUL-separated list), `git status --porcelain` in the tree (index refreshed by a first untimed run)",
        list.display()
    );
    // Warm the page cache and git's index so every timed run reads from memory.
    timed(sha())?;
    timed(git())?;
    let state = root.join("target/xtask");
    let (mut cold, mut sha256sum) = (Vec::new(), Vec::new());
    // Which side goes first alternates too, so neither always runs right after the other.
    for rep in 0.. {
        if !more(rep, reps, &cold) {
            break;
        }
        if rep % 2 == 1 {
            sha256sum.push(timed(sha())?);
        }
        let _ = std::fs::remove_dir_all(&state);
        cold.push(timed(xtask(&["plan"]))?);
        if rep % 2 == 0 {
            sha256sum.push(timed(sha())?);
        }
    }
    // Record a run, then a no-op plan walks, stats and compares only: no file is read.
    timed(xtask(&["run", "hash"]))?;
    timed(xtask(&["plan"]))?;
    let (mut warm, mut git_status) = (Vec::new(), Vec::new());
    for rep in 0.. {
        if !more(rep, reps, &warm) {
            break;
        }
        if rep % 2 == 1 {
            git_status.push(timed(git())?);
        }
        warm.push(timed(xtask(&["plan"]))?);
        if rep % 2 == 0 {
            git_status.push(timed(git())?);
        }
    }
    Ok(Row {
        name: name.to_string(),
        files,
        bytes,
        cold,
        sha256sum,
        warm,
        git: git_status,
    })
}

fn print_table(rows: &[Row]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8}",
        "tree",
        "files",
        "MiB",
        "cold",
        "sha256sum",
        "MiB/s",
        "sha/cold",
        "warm plan",
        "git stat",
        "warm/git"
    );
    for r in rows {
        let mib = r.bytes as f64 / f64::from(1 << 20);
        let cold = median_secs(&r.cold);
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>8.1} {:>8.3}s {:>8.3}s {:>9.0} {:>7.2}x {:>7.2}ms {:>6.2}ms {:>7.2}x",
            r.name,
            r.files,
            mib,
            cold,
            median_secs(&r.sha256sum),
            mib / cold,
            paired_ratio(&r.sha256sum, &r.cold),
            median_secs(&r.warm) * 1e3,
            median_secs(&r.git) * 1e3,
            paired_ratio(&r.warm, &r.git),
        );
    }
    let _ = writeln!(
        out,
        "times are medians; ratios are medians of per-rep ratios (sides alternate rep by rep); load average now {}",
        load_average()
    );
    let _ = writeln!(
        out,
        "targets: sha/cold >= 1.0 (cold hashing at least as fast as sha256sum); warm/git <= 1.0 (no-op plan no slower than git status)"
    );
}
