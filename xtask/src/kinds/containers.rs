//! `kind = "containers"`: the Docker target's deployment. PostgreSQL, the backend and the
//! frontend run as containers on a private network, the frontend published on `--port`.
//!
//! ```toml
//! [tasks.app-containers]
//! kind = "containers"
//! targets = ["docker"]
//! backend-image = "backend-image"        # task whose `image` output is the backend
//! frontend-image = "frontend-image"      # task whose `image` output is the frontend
//! postgres-image = "postgres:15-bookworm" # optional
//! ready-timeout = 120                    # optional, seconds per container
//! ```
//! Each container carries a digest of its whole configuration (image ID, environment, keyed
//! digest of its secrets, ports); a deploy replaces only containers whose digest changed.
//! Secrets reach containers through `docker run -e NAME` with the value only in the CLI's own
//! environment: never argv, never a file we leave behind. They are POSTGRES_PASSWORD for
//! PostgreSQL; DATABASE_URL, JWT_SECRET, LLM_API_KEY and LLM_BASE_URL (a URL may carry
//! credentials) for the backend; CSRF_SECRET for the frontend. Runs on the Docker target only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest, Sha256};

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::engine::Session;
use crate::secrets::{self, DbMode, InternalDb, SecretSet, SecretValue};
use crate::target::docker::{BACKEND_PORT, ROLES};
use crate::target::{DockerTarget, Target};
use crate::tools::docker::{CONFIG_LABEL, Docker, ObjectKind, RunSpec};

/// The `containers` kind.
#[derive(Debug)]
pub struct ContainersKind;

/// One containers task's settings.
#[derive(Debug, Clone)]
pub struct Containers {
    backend_task: String,
    frontend_task: String,
    postgres_image: String,
    ready_timeout: Duration,
}

/// Database user and name of the in-network PostgreSQL.
const DB_USER: &str = "postgres";
const DB_NAME: &str = "todo";
const FRONTEND_PORT: u16 = 3000;
/// The backend's `TRUSTED_PROXIES`: the private ranges Docker allocates networks from, as the
/// chart's `backend.trustedProxies` default.
const PRIVATE_RANGES: &str = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";
/// Each role's `--memory`: the chart's `resources.limits.memory` (k8s/todo-app/values.yaml), so
/// the Docker target runs under the ceilings Kubernetes enforces (a test keeps them equal).
pub(crate) const MEMORY_LIMITS: [(&str, &str); 3] =
    [("postgres", "1g"), ("backend", "1g"), ("frontend", "512m")];
/// Every container's `--restart`: Docker's closest match to a pod's `restartPolicy: Always`.
/// A container a user or the pipeline stops is not restarted.
const RESTART_POLICY: &str = "unless-stopped";

/// Resolves the app's secrets for the Docker target (environment, `.env`, stored generated
/// values, the running PostgreSQL container's password, or freshly generated).
pub fn resolve_secrets(
    session: &Session,
    target: &Target,
    docker: &Docker<'_>,
) -> Result<ResolvedSecrets> {
    let names = target.docker()?;
    let state_dir = session.state_dir(target);
    let (dotenv, generated_store) = secrets::default_paths(&session.root, &state_dir);
    // An initialized volume keeps its first password: reuse the one the running database got.
    let existing = || -> Result<BTreeMap<String, SecretValue>> {
        let mut found = BTreeMap::new();
        if let Some(pw) =
            docker.container_env_var(&names.container("postgres"), secrets::POSTGRES_PASSWORD)?
        {
            found.insert(secrets::POSTGRES_PASSWORD.to_owned(), SecretValue::new(pw));
        }
        Ok(found)
    };
    let env = |k: &str| std::env::var(k).ok();
    let no_prompt = |label: &str| -> Result<String> {
        bail!("cannot prompt for {label} here; set it in the environment or .env")
    };
    let set = secrets::resolve(&secrets::Inputs {
        env: &env,
        dotenv,
        interactive: false,
        prompt: &no_prompt,
        generated_store,
        existing: &existing,
        internal_db: InternalDb {
            host: "postgres".to_owned(),
            port: 5432,
            user: DB_USER.to_owned(),
            database: DB_NAME.to_owned(),
        },
        mode: DbMode::Auto,
    })?;
    let key = secrets::digest::load_or_create_key(&super::digest_key_path(session))?;
    let digest = set.digest(&key);
    Ok(ResolvedSecrets { set, digest, key })
}

/// The resolved secrets, their keyed digest, and the digest key (for per-container digests).
pub struct ResolvedSecrets {
    /// The values.
    pub set: SecretSet,
    /// Keyed digest of all values.
    pub digest: String,
    key: Vec<u8>,
}

impl TaskKind<Target> for ContainersKind {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn targets(&self) -> Option<&'static [&'static str]> {
        Some(&[crate::target::docker::NAME])
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let backend_task = s.require_task("backend-image", "\"backend-image\"")?;
        let frontend_task = s.require_task("frontend-image", "\"frontend-image\"")?;
        let postgres_image: String = s
            .get("postgres-image")?
            .unwrap_or_else(|| "postgres:15-bookworm".to_owned());
        let secs: u64 = s.get("ready-timeout")?.unwrap_or(120);
        if secs == 0 {
            return Err(s.error(
                "ready-timeout",
                "`ready-timeout` must be at least 1 second",
                "give seconds, e.g. `ready-timeout = 120`",
            ));
        }
        Ok(Box::new(Containers {
            backend_task,
            frontend_task,
            postgres_image,
            ready_timeout: Duration::from_secs(secs),
        }))
    }
}

/// The configuration of one container and the digest that decides whether to replace it.
struct Planned {
    role: &'static str,
    spec: RunSpec,
    digest: String,
}

impl Containers {
    fn plan(
        &self,
        names: &DockerTarget,
        secrets: &ResolvedSecrets,
        images: &BTreeMap<&'static str, (String, String)>,
    ) -> Vec<Planned> {
        let port = names.port;
        let (set, key) = (&secrets.set, &secrets.key);
        let secret = |k: &str| set.pairs().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let mut out = Vec::new();
        for role in ROLES {
            let (image, image_id) = images[role].clone();
            let mut spec = RunSpec {
                name: names.container(role),
                image: image.clone(),
                network: Some(names.network()),
                network_alias: Some(role.to_owned()),
                labels: names.labels(),
                memory: MEMORY_LIMITS
                    .iter()
                    .find(|(r, _)| *r == role)
                    .map(|(_, m)| (*m).to_owned()),
                // As Kubernetes restarts a pod's container: a process that exits or is
                // OOM-killed comes back by itself, and so does the app after the daemon
                // restarts. What we stop (`docker stop`, `docker kill`, `down`) stays stopped.
                restart: Some(RESTART_POLICY.to_owned()),
                ..RunSpec::default()
            };
            spec.labels
                .insert("dev.todo-app.role".to_owned(), role.to_owned());
            let mut secret_env: BTreeMap<String, SecretValue> = BTreeMap::new();
            match role {
                "postgres" => {
                    spec.env.insert("POSTGRES_USER".into(), DB_USER.into());
                    spec.env.insert("POSTGRES_DB".into(), DB_NAME.into());
                    if let Some(pw) = secret(secrets::POSTGRES_PASSWORD) {
                        secret_env.insert(secrets::POSTGRES_PASSWORD.into(), pw);
                    }
                    spec.volumes
                        .push(format!("{}:/var/lib/postgresql/data", names.volume()));
                    spec.health_cmd =
                        Some(format!("pg_isready -h 127.0.0.1 -U {DB_USER} -d {DB_NAME}"));
                }
                "backend" => {
                    spec.env.insert("PORT".into(), BACKEND_PORT.to_string());
                    // The frontend container forwards each visitor's address; it reaches the
                    // backend from the private network's range (Docker picks the subnet), so
                    // per-address throttles key on visitors, not on the frontend.
                    spec.env
                        .insert("TRUSTED_PROXIES".into(), PRIVATE_RANGES.into());
                    // LLM_BASE_URL too: a URL may carry credentials.
                    for k in [
                        secrets::DATABASE_URL,
                        secrets::JWT_SECRET,
                        secrets::LLM_API_KEY,
                        secrets::LLM_BASE_URL,
                    ] {
                        if let Some(v) = secret(k) {
                            secret_env.insert(k.into(), v);
                        }
                    }
                    // Not secret (model, timeout): plain environment, and so part of the config
                    // digest (a changed model re-creates the backend).
                    for (k, v) in set.llm.env() {
                        spec.env.insert(k.to_owned(), v.to_owned());
                    }
                    // Loopback only, on a free port: the smoke test reaches /health and /ready.
                    spec.publish.push(format!("127.0.0.1::{BACKEND_PORT}"));
                }
                _ => {
                    if let Some(v) = secret(secrets::CSRF_SECRET) {
                        secret_env.insert(secrets::CSRF_SECRET.into(), v);
                    }
                    spec.env.insert(
                        "BACKEND_URL".into(),
                        format!("http://backend:{BACKEND_PORT}"),
                    );
                    spec.env.insert("PORT".into(), FRONTEND_PORT.to_string());
                    spec.publish
                        .push(format!("127.0.0.1:{port}:{FRONTEND_PORT}"));
                }
            }
            let secrets_digest =
                secrets::digest::keyed_digest(key, secret_env.iter().map(|(k, v)| (k.as_str(), v)));
            let digest = config_digest(&spec, &image_id, &secrets_digest);
            spec.labels.insert(CONFIG_LABEL.to_owned(), digest.clone());
            spec.secret_env = secret_env
                .into_iter()
                .map(|(k, v)| (k, v.expose().to_owned()))
                .collect();
            out.push(Planned { role, spec, digest });
        }
        out
    }
}

/// SHA-256 over everything that shapes a container except secret values (their keyed
/// digest stands in for them).
fn config_digest(spec: &RunSpec, image_id: &str, secrets_digest: &str) -> String {
    let material = serde_json::json!({
        "image": spec.image,
        "image_id": image_id,
        "network": spec.network,
        "alias": spec.network_alias,
        "env": spec.env,
        "secret_names": spec.secret_env.keys().collect::<Vec<_>>(),
        "secrets": secrets_digest,
        "publish": spec.publish,
        "volumes": spec.volumes,
        "labels": spec.labels,
        "health": spec.health_cmd,
        "command": spec.command,
        "memory": spec.memory,
        "restart": spec.restart,
    });
    hex::encode(Sha256::digest(material.to_string().as_bytes()))
}

impl Task<Target> for Containers {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let target = cx.target.docker()?;
        let docker = Docker::new(cx.sh, target.docker_env());
        m.insert("daemon".into(), docker.daemon_id()?);
        m.insert("port".into(), target.port.to_string());
        m.insert("names".into(), target.prefix());
        let resolved = resolve_secrets(cx.session, cx.target, &docker)?;
        // Includes LLM_BASE_URL and CSRF_SECRET.
        m.insert("secrets".into(), resolved.digest);
        // The plain provider settings (model, timeout), keyed like the secrets all the same.
        let llm = resolved
            .set
            .llm
            .env()
            .map(|(k, v)| (k, SecretValue::new(v)))
            .collect::<Vec<_>>();
        m.insert(
            "llm".into(),
            secrets::digest::keyed_digest(&resolved.key, llm.iter().map(|(k, v)| (*k, v))),
        );
        Ok(m)
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let names = cx.target.docker()?;
        let docker = Docker::new(cx.sh, names.docker_env());
        for role in ROLES {
            let Some(want) = cx.outputs.get(&format!("{role}_container")) else {
                return Ok(false);
            };
            match docker.container_inspect(&names.container(role))? {
                Some(info) if info.is_running() && &info.id == want => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let names = cx.target.docker()?;
        let port = names.port;
        let docker = Docker::new(cx.sh, names.docker_env());
        let resolved = resolve_secrets(cx.session, cx.target, &docker)?;
        for line in resolved.set.report() {
            cx.log(format!("secret {line}"));
        }

        let mut images: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
        for (role, task) in [
            ("backend", &self.backend_task),
            ("frontend", &self.frontend_task),
        ] {
            let image = cx.dep_output(task, "image")?.to_owned();
            // An image found in the registry (`--registry`) is pulled here, where it is needed.
            if cx
                .deps
                .get(task)
                .is_some_and(|o| o.contains_key("registry"))
                && docker.image_id(&image)?.is_none()
            {
                cx.log(format!("docker pull {image}"));
                docker.pull(&image)?;
            }
            let id = docker.image_id(&image)?.with_context(|| {
                format!(
                    "image {image} of task `{task}` is not in the daemon; run `cargo xtask build`"
                )
            })?;
            images.insert(role, (image, id));
        }
        let pg_id = docker.image_id(&self.postgres_image)?.with_context(|| {
            format!(
                "image {} is not in the daemon; pull it (`docker pull {0}`) or run ../shared/ci/provision.sh docker",
                self.postgres_image
            )
        })?;
        images.insert("postgres", (self.postgres_image.clone(), pg_id));

        docker.network_create(&names.network(), &names.labels())?;
        docker.volume_create(&names.volume(), &names.labels())?;

        let planned = self.plan(names, &resolved, &images);
        let mut outputs = Outputs::new();
        for p in &planned {
            let name = &p.spec.name;
            let current = docker.container_inspect(name)?;
            let keep = current
                .as_ref()
                .is_some_and(|c| c.is_running() && c.labels.get(CONFIG_LABEL) == Some(&p.digest));
            let id = if keep {
                cx.log(format!("{name}: unchanged"));
                current.map(|c| c.id).unwrap_or_default()
            } else {
                if let Some(c) = &current {
                    if c.is_running() {
                        cx.log(format!(
                            "{name}: configuration or image changed; replacing (the old one is \
                             kept, stopped, until the run ends)"
                        ));
                        names.set_aside(&docker, name)?;
                    } else {
                        cx.log(format!("{name}: {}; replacing", c.status));
                        docker.remove(ObjectKind::Container, std::slice::from_ref(name))?;
                    }
                } else {
                    cx.log(format!("{name}: creating"));
                }
                docker.run(&p.spec)?
            };
            self.wait_ready(cx, &docker, p.role, name, port)?;
            outputs.insert(format!("{}_container", p.role), id);
            outputs.insert(format!("{}_image", p.role), p.spec.image.clone());
        }
        outputs.insert("network".into(), names.network());
        outputs.insert("volume".into(), names.volume());
        cx.log(format!("app running at {}", names.url()));
        Ok(outputs)
    }
}

impl Containers {
    fn wait_ready(
        &self,
        cx: &RunCx<'_>,
        docker: &Docker<'_>,
        role: &str,
        name: &str,
        port: u16,
    ) -> Result<()> {
        let deadline = Instant::now() + self.ready_timeout;
        let mut last = String::new();
        loop {
            if cx.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                bail!("interrupted while waiting for {name}");
            }
            let info = docker.container_inspect(name)?;
            let Some(info) = info else {
                bail!("container {name} disappeared while starting");
            };
            if !info.is_running() {
                bail!(
                    "container {name} is {} (exit code {}); last log lines:\n{}",
                    info.status,
                    info.exit_code,
                    docker.logs_tail(name, 30)?
                );
            }
            let ready = match role {
                "postgres" => {
                    last = format!("health {}", info.health.as_deref().unwrap_or("none"));
                    info.health.as_deref() == Some("healthy")
                }
                _ => {
                    let url = if role == "backend" {
                        format!("http://{}/ready", docker.port(name, BACKEND_PORT)?)
                    } else {
                        format!("http://127.0.0.1:{port}/ready")
                    };
                    match http_status(&url) {
                        Ok(200) => true,
                        Ok(s) => {
                            last = format!("{url} answered {s}");
                            false
                        }
                        Err(e) => {
                            last = format!("{url}: {e}");
                            false
                        }
                    }
                }
            };
            if ready {
                cx.log(format!("{name}: ready"));
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut hint = String::new();
                if role == "backend" {
                    let db = name.replace("-backend", "-postgres");
                    if docker
                        .logs_tail(&db, 100)?
                        .contains("password authentication failed")
                    {
                        hint = "\nhint: PostgreSQL rejects the password: its data volume keeps the password \
                             it was created with. Restore that POSTGRES_PASSWORD, or run `cargo xtask down \
                             --target docker --volumes` to delete the volume (and its data) and deploy again."
                            .to_owned();
                    }
                }
                bail!(
                    "{name} not ready after {}s ({last}); last log lines:\n{}{hint}",
                    self.ready_timeout.as_secs(),
                    docker.logs_tail(name, 30)?
                );
            }
            // A replaced container is usually ready within a second: poll often.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn http_status(url: &str) -> Result<u16> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(3))
        .redirects(0)
        .build();
    match agent.get(url).call() {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(code, _)) => Ok(code),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The planned containers for secrets resolved from `env` (no Docker needed).
    fn planned(env: &[(&str, &str)]) -> Vec<Planned> {
        let dir = tempfile::tempdir().unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = |k: &str| env.get(k).cloned();
        let set = secrets::resolve(&secrets::Inputs {
            env: &lookup,
            dotenv: dir.path().join(".env"),
            interactive: false,
            prompt: &|_| unreachable!("no prompt"),
            generated_store: dir.path().join("generated-secrets.env"),
            existing: &|| Ok(BTreeMap::new()),
            internal_db: InternalDb {
                host: "postgres".into(),
                port: 5432,
                user: DB_USER.into(),
                database: DB_NAME.into(),
            },
            mode: DbMode::Auto,
        })
        .unwrap();
        let key = vec![7u8; 32];
        let resolved = ResolvedSecrets {
            digest: set.digest(&key),
            set,
            key,
        };
        let names = DockerTarget {
            namespace: "todo-app".into(),
            port: 3000,
            registry: None,
            builder: crate::builder::DEFAULT_NAME.into(),
        };
        let images = ROLES
            .iter()
            .map(|r| (*r, (format!("{r}:1"), format!("sha256:{r}"))))
            .collect();
        let tasks = Containers {
            backend_task: "b".into(),
            frontend_task: "f".into(),
            postgres_image: "postgres:15-bookworm".into(),
            ready_timeout: Duration::from_secs(1),
        };
        tasks.plan(&names, &resolved, &images)
    }

    fn backend(planned: &[Planned]) -> &Planned {
        planned.iter().find(|p| p.role == "backend").unwrap()
    }

    /// Everything of a spec that reaches `docker run`'s argv or a label: all but `secret_env`,
    /// whose values go only to the CLI's environment (`--env NAME`).
    fn argv_material(spec: &RunSpec) -> String {
        format!(
            "{} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            spec.name,
            spec.image,
            spec.network,
            spec.network_alias,
            spec.env,
            spec.secret_env.keys().collect::<Vec<_>>(),
            spec.publish,
            spec.volumes,
            spec.labels,
            spec.health_cmd,
            spec.command
        )
    }

    #[test]
    fn the_backend_gets_the_llm_provider_settings_and_a_change_replaces_it() {
        let jwt = ("JWT_SECRET", "j-0123456789abcdef0123456789abcdef");
        let base = [
            jwt,
            ("LLM_API_KEY", "sk-marker"),
            ("LLM_BASE_URL", "https://user:url-marker@llm.example/v1"),
            ("LLM_MODEL", "model-a"),
            ("LLM_TIMEOUT_SECONDS", "20"),
            // Fixed, so that only what a case changes differs between two plans.
            ("POSTGRES_PASSWORD", "pg-0123456789abcdef"),
            ("CSRF_SECRET", "c-0123456789abcdef0123456789abcdef"),
        ];
        let a = planned(&base);
        let spec = &backend(&a).spec;
        assert_eq!(spec.env["LLM_MODEL"], "model-a");
        assert_eq!(spec.env["LLM_TIMEOUT_SECONDS"], "20");
        // The frontend's forwarded visitor addresses are trusted, from the network's range.
        assert_eq!(spec.env["TRUSTED_PROXIES"], PRIVATE_RANGES);
        // The key and the base URL (it may carry credentials) stay secret variables: never in
        // the plain (argv) environment.
        for (k, v) in [
            ("LLM_API_KEY", "sk-marker"),
            ("LLM_BASE_URL", "https://user:url-marker@llm.example/v1"),
        ] {
            assert!(!spec.env.contains_key(k), "{k}");
            assert_eq!(spec.secret_env[k], v);
        }
        // The frontend does not talk to the provider.
        let frontend = a.iter().find(|p| p.role == "frontend").unwrap();
        assert!(
            !frontend
                .spec
                .env
                .keys()
                .chain(frontend.spec.secret_env.keys())
                .any(|k| k.starts_with("LLM_"))
        );
        // A new base URL (a rotated credential) replaces the backend alone.
        let mut rotated = base;
        rotated[2] = ("LLM_BASE_URL", "https://user:url-marker-2@llm.example/v1");
        let b = planned(&rotated);
        assert_ne!(backend(&a).digest, backend(&b).digest);
        for role in ["postgres", "frontend"] {
            let digest = |p: &[Planned]| p.iter().find(|p| p.role == role).unwrap().digest.clone();
            assert_eq!(digest(&a), digest(&b), "{role}");
        }

        let mut other = base;
        other[3] = ("LLM_MODEL", "model-b");
        assert_ne!(backend(&a).digest, backend(&planned(&other)).digest);
        // Without any provider settings the backend gets none (built-in interpreter).
        let none = planned(&[jwt]);
        assert!(
            !backend(&none)
                .spec
                .env
                .keys()
                .any(|k| k.starts_with("LLM_"))
        );
    }

    #[test]
    fn each_container_gets_its_secrets_only_through_its_environment() {
        let csrf = "csrf-marker-0123456789abcdef0123456789abcdef";
        let env = [
            ("JWT_SECRET", "jwt-marker-0123456789abcdef0123456789abcdef"),
            ("CSRF_SECRET", csrf),
            ("LLM_API_KEY", "sk-marker"),
            (
                "LLM_BASE_URL",
                "https://user:url-marker@llm.example/v1?key=q-marker",
            ),
            ("LLM_MODEL", "m"),
            ("POSTGRES_PASSWORD", "pg-0123456789abcdef"),
        ];
        let plan = planned(&env);
        let secret_keys = |role: &str| {
            let p = plan.iter().find(|p| p.role == role).unwrap();
            p.spec.secret_env.keys().cloned().collect::<Vec<_>>()
        };
        assert_eq!(secret_keys("postgres"), ["POSTGRES_PASSWORD"]);
        assert_eq!(
            secret_keys("backend"),
            ["DATABASE_URL", "JWT_SECRET", "LLM_API_KEY", "LLM_BASE_URL"]
        );
        // The frontend's CSRF key, generated or supplied like the JWT key.
        assert_eq!(secret_keys("frontend"), ["CSRF_SECRET"]);
        let frontend = plan.iter().find(|p| p.role == "frontend").unwrap();
        assert_eq!(frontend.spec.secret_env["CSRF_SECRET"], csrf);
        for p in &plan {
            let shown = argv_material(&p.spec);
            for marker in ["marker", "csrf-marker", "q-marker"] {
                assert!(!shown.contains(marker), "{}: {shown}", p.role);
            }
            for v in p.spec.secret_env.values() {
                assert!(!shown.contains(v.as_str()), "{}: {shown}", p.role);
            }
        }
        // A rotated CSRF key replaces the frontend alone.
        let mut rotated = env;
        rotated[1] = (
            "CSRF_SECRET",
            "csrf-rotated-0123456789abcdef0123456789abcdef",
        );
        let other = planned(&rotated);
        for p in &plan {
            let q = other.iter().find(|q| q.role == p.role).unwrap();
            assert_eq!(p.digest == q.digest, p.role != "frontend", "{}", p.role);
        }
    }

    #[test]
    fn config_digest_changes_with_image_and_secrets_but_never_holds_them() {
        let spec = RunSpec {
            name: "n".into(),
            image: "img:1".into(),
            secret_env: BTreeMap::from([("JWT_SECRET".into(), "marker-value".into())]),
            ..RunSpec::default()
        };
        let a = config_digest(&spec, "sha256:1", "d1");
        assert_ne!(a, config_digest(&spec, "sha256:2", "d1"));
        assert_ne!(a, config_digest(&spec, "sha256:1", "d2"));
        // The secret value itself does not feed the digest (its keyed digest does).
        let mut other = spec.clone();
        other.secret_env.insert("JWT_SECRET".into(), "other".into());
        assert_eq!(a, config_digest(&other, "sha256:1", "d1"));
    }
}
