//! Step 3: faults while the workload runs. PostgreSQL is killed (SIGKILL) and started again,
//! then the backend is; each time the suite watches what the app says (`/ready`, the
//! frontend's error page) and how long it takes to serve again by itself. The ledger is checked
//! afterwards by the caller: no acknowledged write may be lost.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::http::{Answer, Base, Http};
use super::signin::cookie_header;
use super::stats::percentile;
use super::workload::{Measured, Shared};
use crate::smoke::flow::{Flow, TASKS_PAGE};
use crate::smoke::page::page_error;
use crate::target::DockerTarget;
use crate::target::docker::BACKEND_PORT;
use crate::tools::docker::Docker;

/// The phases of the fault step, as the workload counts its answers.
pub(crate) const PHASES: [&str; 7] = [
    "before",
    "database down",
    "database restarting",
    "between",
    "backend down",
    "backend restarting",
    "after",
];

/// One observation: what happened, how long it took, and whether it is what the app promises.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// What was watched, e.g. `database killed: backend /ready`.
    pub(crate) what: String,
    /// What was seen.
    pub(crate) seen: String,
    /// Seconds from the fault (or the restart) to what was seen.
    pub(crate) seconds: Option<f64>,
    /// Whether it is what the app promises.
    pub(crate) ok: bool,
}

/// What the fault script needs: the containers, the client, where the app answers.
pub(crate) struct Scene<'a> {
    /// The target's Docker CLI.
    pub(crate) docker: &'a Docker<'a>,
    /// The target's object names.
    pub(crate) names: &'a DockerTarget,
    /// The suite's client.
    pub(crate) http: &'a Http,
    /// The backend's base URL (moves when its container restarts).
    pub(crate) api: &'a Base,
    /// A signed-in visitor of the frontend.
    pub(crate) visitor: &'a Flow,
    /// How long each container stays down.
    pub(crate) outage: Duration,
    /// How long to wait for the app to recover before calling it a failure.
    pub(crate) recovery_deadline: Duration,
}

impl Scene<'_> {
    /// The fault script; runs on the driving thread while the workload's workers run.
    pub(crate) fn script(&self, shared: &Shared) -> Vec<Observation> {
        let mut seen = Vec::new();
        let phase = |p: usize| shared.phase.store(p as u8, Ordering::SeqCst);
        let postgres = self.names.container("postgres");
        let backend = self.names.container("backend");

        phase(0);
        std::thread::sleep(Duration::from_secs(3));

        phase(1);
        act(&mut seen, "kill PostgreSQL", self.docker.kill(&postgres));
        let killed = Instant::now();
        seen.push(self.watch(
            "database killed: backend /ready",
            killed,
            Duration::from_secs(30),
            || self.http.send("GET", &self.api.url("/ready"), &[], None),
            |a| a.status == Some(503),
            "turned 503",
        ));
        sleep_until(killed + self.outage);

        phase(2);
        act(&mut seen, "start PostgreSQL", self.docker.start(&postgres));
        let restarted = Instant::now();
        seen.push(self.watch(
            "database started: backend /ready",
            restarted,
            self.recovery_deadline,
            || self.http.send("GET", &self.api.url("/ready"), &[], None),
            |a| a.status == Some(200),
            "200 again, by itself",
        ));
        seen.push(self.watch(
            "database started: frontend /tasks",
            restarted,
            self.recovery_deadline,
            || self.visit_tasks(),
            |a| a.status == Some(200),
            "200 again",
        ));

        phase(3);
        std::thread::sleep(Duration::from_secs(3));

        phase(4);
        act(&mut seen, "kill the backend", self.docker.kill(&backend));
        let killed = Instant::now();
        let mut error_page = String::new();
        seen.push(self.watch(
            "backend killed: frontend /tasks",
            killed,
            Duration::from_secs(30),
            || {
                let a = self.visit_tasks();
                if a.status.is_some_and(|s| s >= 500) {
                    error_page = format!("{} “{}”", a.status_key(), page_error(&a.body));
                }
                a
            },
            |a| a.status.is_some_and(|s| (500..600).contains(&s)) && a.body.contains("<h1>"),
            "its error page",
        ));
        if let Some(last) = seen.last_mut()
            && !error_page.is_empty()
        {
            last.seen = format!("error page {error_page}");
        }
        seen.push(self.watch(
            "backend killed: frontend /ready",
            killed,
            Duration::from_secs(30),
            || {
                let front = self.visitor.url("/ready");
                self.http.send("GET", &front, &[], None)
            },
            |a| a.status == Some(503),
            "turned 503",
        ));
        sleep_until(killed + self.outage);

        phase(5);
        act(&mut seen, "start the backend", self.docker.start(&backend));
        let restarted = Instant::now();
        // A restarted container gets a new host port for the backend.
        let port = self.docker.port(&backend, BACKEND_PORT);
        if let Ok(addr) = &port {
            self.api.set(&format!("http://{addr}"));
        }
        act(&mut seen, "the restarted backend's port", port.map(drop));
        seen.push(self.watch(
            "backend started: frontend /tasks",
            restarted,
            self.recovery_deadline,
            || self.visit_tasks(),
            |a| a.status == Some(200),
            "200 again, by itself",
        ));

        phase(6);
        std::thread::sleep(Duration::from_secs(2));
        seen
    }

    fn visit_tasks(&self) -> Answer {
        let cookie = cookie_header(self.visitor);
        self.http.send(
            "GET",
            &self.visitor.url(TASKS_PAGE),
            &[("Cookie", cookie.as_str())],
            None,
        )
    }

    /// Polls `probe` every 100 ms until `done` holds or `within` has passed since `from`.
    fn watch(
        &self,
        what: &str,
        from: Instant,
        within: Duration,
        mut probe: impl FnMut() -> Answer,
        done: impl Fn(&Answer) -> bool,
        wanted: &str,
    ) -> Observation {
        let mut last = Answer::default();
        while from.elapsed() < within {
            last = probe();
            if done(&last) {
                return Observation {
                    what: what.to_owned(),
                    seen: wanted.to_owned(),
                    seconds: Some(from.elapsed().as_secs_f64()),
                    ok: true,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Observation {
            what: what.to_owned(),
            seen: format!(
                "not {wanted} within {}s (last: {})",
                within.as_secs(),
                last.status_key()
            ),
            seconds: None,
            ok: false,
        }
    }
}

/// What the workload saw while the database was down: failures, their p99 latency (do they
/// fail fast), and whether any failure was a 5xx other than 503.
pub(crate) fn outage_observation(measured: &Measured) -> Observation {
    let mut failed = Vec::new();
    let mut other_5xx = 0;
    let mut requests = 0;
    for p in [1u8, 2] {
        if let Some(t) = measured.phases.get(&p) {
            requests += t.requests();
            failed.extend_from_slice(&t.failed_ms);
            other_5xx += t
                .statuses
                .iter()
                .filter(|(k, _)| k.starts_with('5') && k.as_str() != "503")
                .map(|(_, v)| v)
                .sum::<u64>();
        }
    }
    let p99 = percentile(&failed, 99.0);
    Observation {
        what: "database down: workload answers".to_owned(),
        seen: format!(
            "{} of {requests} failed, p99 of failures {}; other 5xx: {other_5xx}",
            failed.len(),
            p99.map_or("-".to_owned(), |ms| format!("{ms:.0} ms"))
        ),
        seconds: p99.map(|ms| ms / 1e3),
        ok: other_5xx == 0,
    }
}

/// Records a Docker action that failed (the container may have died on its own first): the
/// script goes on, and the report shows what could not be done.
fn act(seen: &mut Vec<Observation>, what: &str, result: Result<()>) {
    if let Err(e) = result {
        seen.push(Observation {
            what: what.to_owned(),
            seen: format!("failed: {e:#}").replace('\n', " "),
            seconds: None,
            ok: false,
        });
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
