//! `kind = "k8s-secret"`: create or update the app's Secret from resolved values.
//!
//! ```toml
//! [tasks.secrets]
//! kind = "k8s-secret"
//! targets = ["minikube", "kube"]
//! secret = "todo-app-secrets"         # optional, the name the chart reads
//! database = "auto"                   # optional: "auto" (external iff DATABASE_URL is given) | "external"
//! database-host = "todo-app-postgres" # the in-cluster service (<release>-postgres)
//! database-port = 5432
//! database-user = "todo"
//! database-name = "todo"
//! ```
//! Values come from the environment, the gitignored `.env`, a terminal prompt, or stable
//! generated values (see [`crate::secrets`]): `DATABASE_URL`, `JWT_SECRET`, `CSRF_SECRET` (the
//! frontend's, one for every replica), `POSTGRES_PASSWORD`, and when supplied `LLM_API_KEY` and
//! `LLM_BASE_URL` (a URL may carry credentials, so it is a Secret key, not a chart value). The key holds only the keyed digest of the values
//! and the kube identity, so a rotated value re-runs this task and everything after it. The
//! manifest goes to `kubectl apply -f -` on stdin. Runs on Kubernetes targets only.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use anyhow::{Context as _, Result};
use xshell::{Shell, cmd};

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::engine::Session;
use crate::secrets::{self, DbMode, InternalDb, SecretSet, SecretValue};
use crate::target::Target;
use crate::tools::kubectl::NamespaceState;

/// The `k8s-secret` kind.
#[derive(Debug)]
pub struct K8sSecretKind;

/// One secret task's settings.
#[derive(Debug, Clone)]
pub struct K8sSecret {
    /// Secret name.
    pub name: String,
    /// External or auto.
    pub mode: DbMode,
    /// The in-cluster database the derived DATABASE_URL points at.
    pub db: InternalDb,
}

impl TaskKind<Target> for K8sSecretKind {
    fn name(&self) -> &'static str {
        "k8s-secret"
    }

    fn targets(&self) -> Option<&'static [&'static str]> {
        Some(&[crate::target::minikube::NAME, crate::target::kube::NAME])
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let name = s
            .get::<String>("secret")?
            .unwrap_or_else(|| secrets::SECRET_NAME.to_owned());
        let mode = match s.get::<String>("database")?.as_deref() {
            None | Some("auto") => DbMode::Auto,
            Some("external") => DbMode::External,
            Some(other) => {
                return Err(s.error(
                    "database",
                    format!("unknown database mode `{other}`"),
                    "use \"auto\" (external when DATABASE_URL is given) or \"external\"",
                ));
            }
        };
        let db = InternalDb {
            host: s.require("database-host", "\"todo-app-postgres\"")?,
            port: s.get("database-port")?.unwrap_or(5432),
            user: s.get("database-user")?.unwrap_or_else(|| "todo".to_owned()),
            database: s.get("database-name")?.unwrap_or_else(|| "todo".to_owned()),
        };
        Ok(Box::new(K8sSecret { name, mode, db }))
    }
}

impl K8sSecret {
    /// Resolves the values for `target` (generated ones stored under its state dir) and their
    /// keyed digest. Reads the deployed Secret only if a generated value is missing locally.
    pub fn resolve(
        &self,
        sh: &Shell,
        session: &Session,
        target: &Target,
    ) -> Result<(SecretSet, String)> {
        let (dotenv, store) = secrets::default_paths(&session.root, &session.state_dir(target));
        let env = |k: &str| sh.var(k).ok();
        let kube = target.kube()?;
        let existing = || -> Result<BTreeMap<String, SecretValue>> {
            Ok(kube
                .get_secret(sh, &self.name)?
                .map(|s| secrets::decode_secret_data(&s))
                .unwrap_or_default())
        };
        let set = secrets::resolve(&secrets::Inputs {
            env: &env,
            dotenv,
            interactive: std::io::stdin().is_terminal(),
            prompt: &secrets::terminal_prompt,
            generated_store: store,
            existing: &existing,
            internal_db: self.db.clone(),
            mode: self.mode,
        })?;
        let key = secrets::digest::load_or_create_key(&super::digest_key_path(session))?;
        let digest = set.digest(&key);
        Ok((set, digest))
    }
}

impl Task<Target> for K8sSecret {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let kube = cx.target.kube()?;
        let (_, digest) = self.resolve(cx.sh, cx.session, cx.target)?;
        m.insert("kube-context".into(), kube.context);
        m.insert("namespace".into(), kube.namespace);
        m.insert("secret".into(), self.name.clone());
        m.insert("secret-digest".into(), digest);
        Ok(m)
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let kube = cx.target.kube()?;
        let recorded = cx.outputs.get("digest").cloned().unwrap_or_default();
        let deployed = kube.secret_annotation(cx.sh, &self.name, secrets::DIGEST_ANNOTATION)?;
        Ok(deployed.as_deref() == Some(recorded.as_str()) && !recorded.is_empty())
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let mut outputs = Outputs::new();
        let kube = cx.target.kube()?;
        let (set, digest) = self.resolve(cx.sh, cx.session, cx.target)?;
        for line in set.report() {
            cx.log(line);
        }
        let ns_state = kube.ensure_namespace(cx.sh)?;
        let manifest = set.manifest(&self.name, &kube.namespace, &digest);
        let (ctx, ns) = (&kube.context, &kube.namespace);
        cx.run_with_stdin(
            cmd!(
                cx.sh,
                "kubectl --context {ctx} --namespace {ns} apply --server-side --field-manager=xtask --force-conflicts -f -"
            ),
            manifest.bytes(),
        )
        .with_context(|| format!("applying Secret `{}`", self.name))?;
        outputs.insert("secret".into(), self.name.clone());
        outputs.insert("digest".into(), digest);
        outputs.insert("external-db".into(), set.external_db.to_string());
        if set.external_db
            && let Some(url) = set.values.get(secrets::DATABASE_URL)
        {
            outputs.insert(
                "external-db-url".into(),
                secrets::public_database_url(&url.value)?,
            );
        }
        outputs.insert(
            "namespace-owned".into(),
            (ns_state == NamespaceState::Ours).to_string(),
        );
        Ok(outputs)
    }
}
