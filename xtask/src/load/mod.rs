//! `cargo xtask bench load`: the load-and-fault suite against the Docker target. It deploys
//! (or reuses) the target through the pipeline, then, with traffic to 127.0.0.1 only and every
//! step bounded in count and time:
//!
//! 1. a burst of concurrent sign-ins through the frontend (`signin`), while a signed-in visitor
//!    keeps loading their list, with the backend's memory sampled against its limit (`memory`);
//! 2. a mixed workload over many accounts for a fixed time (`workload`), then every
//!    acknowledged write checked against the API (`ledger`);
//! 3. the same workload while PostgreSQL and then the backend are killed and started again
//!    (`faults`), and `down` followed by `deploy` (`redeploy`);
//! 4. hostile input against the API and the forms (`hostile`).
//!
//! It prints one table (`report`) and fails when a property does not hold (an answer the step
//! does not allow, a lost write, no recovery, a hostile case not refused); figures such as
//! rates and latencies are reported, never judged.

mod accounts;
mod faults;
mod hostile;
mod http;
mod ledger;
mod memory;
mod redeploy;
mod report;
mod signin;
mod stats;
mod workload;

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{FromArgMatches, value_parser};
use xshell::Shell;

use crate::commands::deploy;
use crate::pipeline::Pipeline;
use crate::smoke::client::Client;
use crate::smoke::flow::{Flow, nonce};
use crate::target::docker::BACKEND_PORT;
use crate::target::{DockerTarget, Target};
use crate::tools::docker::Docker;
use accounts::Account;
use http::{Base, Http};
use report::{Report, StepRow};

/// Options of `cargo xtask bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Sign-in attempts released at once through the frontend (step 1).
    #[arg(long, default_value_t = 300, value_parser = value_parser!(u32).range(1..=5000))]
    pub sign_ins: u32,
    /// Seconds of the mixed workload (step 2).
    #[arg(long, default_value_t = 60, value_parser = value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Workload workers, each with one request in flight.
    #[arg(long, default_value_t = 32, value_parser = value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Accounts the steps spread over (created first).
    #[arg(long, default_value_t = 100, value_parser = value_parser!(u32).range(1..=10000))]
    pub users: u32,
    /// Seconds PostgreSQL and then the backend each stay down (step 3).
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u64).range(1..=300))]
    pub outage: u64,
    /// Steps to leave out (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<Step>,
    /// Give each simulated client its own `X-Forwarded-For` address. Only meaningful when the
    /// app is configured to trust that header; otherwise per-address throttling sees one
    /// client (127.0.0.1) and its 429s are reported as they come.
    #[arg(long)]
    pub forwarded_for: bool,
    /// Seconds before one request gives up.
    #[arg(long, default_value_t = 30, value_parser = value_parser!(u64).range(1..=600))]
    pub request_timeout: u64,
}

/// The suite's steps, as `--skip` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// Step 1: the sign-in burst.
    Signin,
    /// Step 2: the mixed workload.
    Workload,
    /// Step 3: PostgreSQL and the backend killed during the workload.
    Faults,
    /// Step 3: `down` then `deploy`.
    Redeploy,
    /// Step 4: hostile input.
    Hostile,
}

/// How long checking the ledgers may take before a task counts as unverifiable.
const VERIFY_WITHIN: Duration = Duration::from_secs(120);
/// How long creating the accounts may take (throttled sign-ups wait for `Retry-After`).
const ACCOUNTS_WITHIN: Duration = Duration::from_secs(300);
/// How long the app may take to recover from a fault by itself.
const RECOVERY_WITHIN: Duration = Duration::from_secs(90);

/// Run `cargo xtask bench load`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> Result<()> {
    let target = p.target(sh)?;
    let Target::Docker(names) = target else {
        bail!(
            "`cargo xtask bench load` runs against the Docker target (its faults are `docker \
             kill`s); pass `--target docker`"
        );
    };
    let json = p.opts.json;
    let say = |line: &str| {
        if !json {
            eprintln!("load: {line}");
        }
    };
    say("deploying the Docker target (or reusing it when nothing changed)");
    deploy::run(sh, p, &defaults::<deploy::Args>("deploy")?)?;
    let (frontend, backend) = endpoints(sh, p)?;
    let docker = Docker::new(sh, names.docker_env());
    let backend_name = names.container("backend");
    let timeout = Duration::from_secs(args.request_timeout);
    let http = Http::new(timeout);
    let api = Base::new(&backend);
    let mut report = Report {
        memory_limit: memory_limit(&docker, &backend_name)?,
        ..Report::default()
    };
    let sampler = memory::Sampler::start(&docker.stats_memory_command(&backend_name));
    let run_id = nonce();
    let skip = |s: Step| args.skip.contains(&s);

    say(&format!("creating {} accounts", args.users));
    let deadline = Instant::now() + ACCOUNTS_WITHIN;
    let mut accounts = accounts::create(
        &http,
        &api,
        &run_id,
        args.users as usize,
        args.forwarded_for,
        deadline,
    )?;
    let visitor_id = format!("{run_id}-v");
    let visitor = signed_in_visitor(
        &http,
        &api,
        &frontend,
        &visitor_id,
        args.forwarded_for,
        timeout,
    )?;

    if !skip(Step::Signin) {
        say(&format!(
            "step 1: {} sign-ins through the frontend at once",
            args.sign_ins
        ));
        let from = Instant::now();
        let burst = signin::run(
            &http,
            &frontend,
            &accounts,
            args.sign_ins as usize,
            timeout,
            &visitor.1,
        );
        let peak = settle_peak(&sampler, from);
        report.check(
            "sign-in burst: every answer 303/200/401/429/503",
            burst.attempts.errors == 0,
            format!(
                "{} ({} could not load the form)",
                burst.attempts.status_counts(),
                burst.unprepared
            ),
        );
        report.check(
            "sign-in burst: no wrong password signed in",
            burst.wrong_accepted == 0,
            format!("{} wrong passwords signed in", burst.wrong_accepted),
        );
        report.check(
            "sign-in burst: normal traffic served throughout",
            burst.normal.errors == 0 && burst.normal.requests() > 0,
            format!("/tasks: {}", burst.normal.status_counts()),
        );
        report.steps.push(StepRow {
            step: format!("sign-in burst ({} at once)", args.sign_ins),
            tally: burst.attempts,
            elapsed: Some(burst.elapsed),
            peak_memory: peak,
            lost: None,
        });
        report.steps.push(StepRow {
            step: "  normal traffic meanwhile".to_owned(),
            tally: burst.normal,
            elapsed: Some(burst.elapsed),
            peak_memory: None,
            lost: None,
        });
        memory_check(&mut report, &docker, names, &api, "sign-in burst", peak)?;
    }

    let workers = args.concurrency as usize;
    if !skip(Step::Workload) {
        say(&format!(
            "step 2: mixed workload for {} s, {workers} workers over {} accounts",
            args.duration, args.users
        ));
        let from = Instant::now();
        let m = workload::run_for(
            &http,
            &api,
            &mut accounts,
            workers,
            seed(&run_id, 2),
            Duration::from_secs(args.duration),
        );
        let peak = settle_peak(&sampler, from);
        // First, so that a backend that died is running again for the ledger's check.
        memory_check(&mut report, &docker, names, &api, "workload", peak)?;
        say("step 2: checking every acknowledged write");
        let verdict = ledger::verify(&http, &api, &mut accounts, VERIFY_WITHIN);
        let total = m.total();
        report.check(
            "workload: every answer 2xx or throttled",
            total.errors == 0,
            total.status_counts(),
        );
        lost_check(
            &mut report,
            "workload",
            &total,
            &verdict,
            m.ambiguous_writes,
        );
        report.steps.push(StepRow {
            step: format!(
                "workload ({} s, {workers} workers, {} users)",
                args.duration, args.users
            ),
            tally: total,
            elapsed: Some(m.elapsed),
            peak_memory: peak,
            lost: Some(verdict.lost),
        });
    }

    if !skip(Step::Faults) {
        say(&format!(
            "step 3: killing PostgreSQL, then the backend, for {} s each, during the workload",
            args.outage
        ));
        let scene = faults::Scene {
            docker: &docker,
            names,
            http: &http,
            api: &api,
            visitor: &visitor.1,
            outage: Duration::from_secs(args.outage),
            recovery_deadline: RECOVERY_WITHIN,
        };
        let from = Instant::now();
        let (m, seen) = workload::run(
            &http,
            &api,
            &mut accounts,
            workers,
            seed(&run_id, 3),
            |shared| scene.script(shared),
        );
        // Whatever the script managed, leave both containers running.
        restart_if_stopped(&docker, names, &api)?;
        let peak = settle_peak(&sampler, from);
        let verdict = ledger::verify(&http, &api, &mut accounts, VERIFY_WITHIN);
        let survived = seen.iter().all(|o| o.ok);
        report.observations.extend(seen);
        report.observations.push(faults::outage_observation(&m));
        let total = m.total();
        let acked: Vec<String> = faults::PHASES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let n = m.phases.get(&(i as u8)).map_or(0, |t| t.acked_writes);
                format!("{name}: {n}")
            })
            .collect();
        report.check(
            "faults: the app said so and recovered by itself",
            survived && report.observations.iter().all(|o| o.ok),
            report
                .observations
                .iter()
                .filter(|o| !o.ok)
                .map(|o| format!("{}: {}", o.what, o.seen))
                .collect::<Vec<_>>()
                .join("; "),
        );
        lost_check(&mut report, "faults", &total, &verdict, m.ambiguous_writes);
        report.check(
            "faults: writes acknowledged in every phase",
            true,
            format!("acknowledged {}", acked.join(", ")),
        );
        report.steps.push(StepRow {
            step: format!("faults (workload, {} s outages)", args.outage),
            tally: total,
            elapsed: Some(m.elapsed),
            peak_memory: peak,
            lost: Some(verdict.lost),
        });
        memory_check(&mut report, &docker, names, &api, "faults", peak)?;
    }

    let mut frontend = frontend;
    if !skip(Step::Redeploy) {
        say("step 3: `down` then `deploy`, then every account and task must still be there");
        let r = match redeploy::run(sh, p, &http, &mut accounts, VERIFY_WITHIN) {
            Ok(r) => r,
            Err(e) => {
                // The table still shows everything measured so far.
                report.check("down + deploy: ran to the end", false, format!("{e:#}"));
                return finish(report, sampler, json);
            }
        };
        api.set(&r.backend);
        frontend = r.frontend;
        let ok = r.observations.iter().all(|o| o.ok);
        report.check(
            "down + deploy: every account and acknowledged write kept",
            ok,
            r.observations
                .iter()
                .map(|o| o.seen.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
        report.observations.extend(r.observations);
        report.steps.push(StepRow {
            step: "down + deploy".to_owned(),
            lost: Some(r.verdict.lost),
            ..StepRow::default()
        });
        report.memory_limit = memory_limit(&docker, &backend_name)?;
    }

    if !skip(Step::Hostile) {
        say("step 4: hostile input");
        let sent = (|| -> Result<_> {
            let mut pair = accounts::create(
                &http,
                &api,
                &format!("{run_id}-h"),
                2,
                args.forwarded_for,
                Instant::now() + ACCOUNTS_WITHIN,
            )?;
            let victim_web = web_session(&frontend, &pair[0], timeout)?;
            let mut attacker_web = web_session(&frontend, &pair[1], timeout)?;
            let (victim, attacker) = pair.split_at_mut(1);
            hostile::Parties {
                http: &http,
                api: &api,
                victim: &victim[0],
                victim_web: &victim_web,
                attacker: &attacker[0],
                attacker_web: &mut attacker_web,
            }
            .run()
        })();
        let (cases, unchanged) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                report.check("hostile input: ran to the end", false, format!("{e:#}"));
                return finish(report, sampler, json);
            }
        };
        let mut tally = stats::Tally::default();
        for (case, answer) in &cases {
            let class = if case.ok {
                stats::Class::Ok
            } else {
                stats::Class::Error
            };
            tally.record(answer, class);
        }
        let server_errors: u64 = tally
            .statuses
            .iter()
            .filter(|(k, _)| k.starts_with('5'))
            .map(|(_, v)| v)
            .sum();
        report.check(
            "hostile input: no 5xx",
            server_errors == 0,
            format!("{server_errors} answers were 5xx"),
        );
        let refused = cases.iter().filter(|(c, _)| c.ok).count();
        report.check(
            "hostile input: every case clearly refused",
            refused == cases.len(),
            format!("{refused} of {} cases", cases.len()),
        );
        report.check(
            "hostile input: nothing changed",
            unchanged.ok,
            unchanged.got.clone(),
        );
        report.steps.push(StepRow {
            step: format!("hostile input ({} cases)", cases.len()),
            tally,
            elapsed: None,
            peak_memory: None,
            lost: None,
        });
        report.hostile = cases.into_iter().map(|(c, _)| c).collect();
        report.hostile.push(unchanged);
    }

    finish(report, sampler, json)
}

/// Stops sampling, prints the report, and fails when a check failed.
fn finish(mut report: Report, mut sampler: memory::Sampler, json: bool) -> Result<()> {
    sampler.stop();
    report.peak_memory = sampler.peak();
    if json {
        for line in report.json_lines() {
            println!("{line}");
        }
    } else {
        print!("{}", report.table());
    }
    let failures = report.failures();
    if !failures.is_empty() {
        bail!(
            "{} of {} checks of the load suite failed: {}",
            failures.len(),
            report.checks.len(),
            failures
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// The frontend's and the backend's base URLs on this host, both on loopback.
pub(crate) fn endpoints(sh: &Shell, p: &Pipeline) -> Result<(String, String)> {
    let target = p.target(sh)?;
    let front = target
        .deployment()
        .frontend(sh, &|_| {})
        .context("finding the live deployment")?;
    let frontend = front.endpoints.frontend.clone();
    let backend = front.endpoints.backend.clone().with_context(|| {
        format!(
            "the backend publishes no port {BACKEND_PORT} on this host; run `cargo xtask deploy \
             --target docker`"
        )
    })?;
    http::require_loopback(&frontend)?;
    http::require_loopback(&backend)?;
    Ok((frontend, backend))
}

/// A command's options as its command line gives them with no arguments, so options added
/// later keep their defaults here too.
pub(crate) fn defaults<T: clap::Args + FromArgMatches>(name: &'static str) -> Result<T> {
    let matches = T::augment_args(clap::Command::new(name))
        .try_get_matches_from([name])
        .with_context(|| format!("the default options of `{name}`"))?;
    Ok(T::from_arg_matches(&matches)?)
}

fn memory_limit(docker: &Docker<'_>, name: &str) -> Result<u64> {
    Ok(docker
        .container_inspect(name)?
        .with_context(|| format!("container {name} does not exist; run `cargo xtask deploy`"))?
        .memory_limit)
}

/// The peak sampled from `from` through the first sample after now (`docker stats` refreshes
/// about once a second, so a short step may fall between two samples).
fn settle_peak(sampler: &memory::Sampler, from: Instant) -> Option<u64> {
    let end = Instant::now();
    sampler.wait_for_sample_after(end, Duration::from_secs(10));
    sampler.peak_between(from, Instant::now())
}

/// Records whether the backend stayed under its memory limit and alive through `step`; a
/// backend that died is started again so the suite can go on.
fn memory_check(
    report: &mut Report,
    docker: &Docker<'_>,
    names: &DockerTarget,
    api: &Base,
    step: &str,
    peak: Option<u64>,
) -> Result<()> {
    let name = names.container("backend");
    let info = docker
        .container_inspect(&name)?
        .with_context(|| format!("container {name} is gone"))?;
    let limit = info.memory_limit;
    let ok = limit > 0 && peak.is_some_and(|p| p < limit) && !info.oom_killed && info.is_running();
    let detail = format!(
        "peak {} of {}{}{}",
        peak.map_or("not sampled".to_owned(), memory::mib),
        if limit == 0 {
            "no limit (redeploy: `cargo xtask deploy --target docker`)".to_owned()
        } else {
            memory::mib(limit)
        },
        if info.oom_killed { "; OOM-killed" } else { "" },
        if info.is_running() {
            String::new()
        } else {
            format!("; backend {} (exit {})", info.status, info.exit_code)
        },
    );
    report.check(
        &format!("{step}: backend under its memory limit"),
        ok,
        detail,
    );
    restart_if_stopped(docker, names, api)
}

/// Starts PostgreSQL and the backend again if they are not running, and waits for the backend.
fn restart_if_stopped(docker: &Docker<'_>, names: &DockerTarget, api: &Base) -> Result<()> {
    for role in ["postgres", "backend"] {
        let name = names.container(role);
        let running = docker
            .container_inspect(&name)?
            .is_some_and(|i| i.is_running());
        if !running {
            docker.start(&name)?;
        }
    }
    let backend = names.container("backend");
    api.set(&format!("http://{}", docker.port(&backend, BACKEND_PORT)?));
    let probe = Http::new(Duration::from_secs(3));
    let deadline = Instant::now() + RECOVERY_WITHIN;
    while probe.send("GET", &api.url("/ready"), &[], None).status != Some(200) {
        if Instant::now() > deadline {
            bail!(
                "the backend is not ready {} s after it was started again; see `docker logs {backend}`",
                RECOVERY_WITHIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Records the zero-lost-writes verdict of `step`.
fn lost_check(
    report: &mut Report,
    step: &str,
    total: &stats::Tally,
    verdict: &ledger::Verdict,
    ambiguous: u64,
) {
    let mut detail = format!(
        "{} writes acknowledged; {} tasks checked: {} lost, {} unverifiable; {} writes without \
         a clear answer ({} tasks in either state)",
        total.acked_writes,
        verdict.checked,
        verdict.lost,
        verdict.unverified,
        ambiguous,
        verdict.unknown
    );
    if !verdict.examples.is_empty() {
        detail.push_str(&format!("; e.g. {}", verdict.examples.join("; ")));
    }
    report.check(
        &format!("{step}: zero lost writes"),
        verdict.clean(),
        detail,
    );
}

/// A fresh account signed in through the frontend: the visitor whose list is loaded during the
/// burst and whose pages show the faults.
fn signed_in_visitor(
    http: &Http,
    api: &Base,
    frontend: &str,
    run: &str,
    forwarded_for: bool,
    timeout: Duration,
) -> Result<(Account, Flow)> {
    let within = Instant::now() + ACCOUNTS_WITHIN;
    let mut one = accounts::create(http, api, run, 1, forwarded_for, within)?;
    let acct = one.remove(0);
    let flow = web_session(frontend, &acct, timeout)?;
    Ok((acct, flow))
}

/// A frontend session signed in as `acct`, on its task list.
fn web_session(frontend: &str, acct: &Account, timeout: Duration) -> Result<Flow> {
    let mut flow = Flow::new(Client::new(timeout), frontend);
    flow.email.clone_from(&acct.email);
    flow.password.clone_from(&acct.password);
    flow.sign_in()
        .with_context(|| format!("signing in as {} through the frontend", acct.email))?;
    Ok(flow)
}

/// A seed for step `n`'s random choices, from the run's nonce.
fn seed(run: &str, n: u64) -> u64 {
    run.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ n, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
