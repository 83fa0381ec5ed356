#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use super::*;

fn db() -> InternalDb {
    InternalDb {
        host: "todo-app-postgresql".into(),
        port: 5432,
        user: "todo".into(),
        database: "todo".into(),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    existing: BTreeMap<String, SecretValue>,
    interactive: bool,
    mode: DbMode,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
            existing: BTreeMap::new(),
            interactive: false,
            mode: DbMode::Auto,
        }
    }

    fn dotenv(&self, text: &str) {
        std::fs::write(self.dir.path().join(".env"), text).unwrap();
    }

    fn resolve_with(&self, prompt: &dyn Fn(&str) -> Result<String>) -> Result<SecretSet> {
        let env = |k: &str| self.env.get(k).cloned();
        let existing = || Ok(self.existing.clone());
        resolve(&Inputs {
            env: &env,
            dotenv: self.dir.path().join(".env"),
            interactive: self.interactive,
            prompt,
            generated_store: self.dir.path().join("state/generated-secrets.env"),
            existing: &existing,
            internal_db: db(),
            mode: self.mode,
        })
    }

    fn resolve(&self) -> Result<SecretSet> {
        self.resolve_with(&|_| panic!("must not prompt"))
    }
}

#[test]
fn generated_values_are_stable_across_runs() {
    let f = Fixture::new();
    let first = f.resolve().unwrap();
    assert!(!first.external_db);
    assert!(matches!(
        first.values[JWT_SECRET].source,
        Source::Generated(_)
    ));
    assert!(matches!(
        first.values[POSTGRES_PASSWORD].source,
        Source::Generated(_)
    ));
    assert!(first.values[JWT_SECRET].value.len() >= MIN_JWT_BYTES);
    // The frontend's CSRF key is generated and stored exactly like the JWT key.
    assert!(matches!(
        first.values[CSRF_SECRET].source,
        Source::Generated(_)
    ));
    assert!(first.values[CSRF_SECRET].value.len() >= MIN_CSRF_BYTES);
    assert_ne!(
        first.values[CSRF_SECRET].value,
        first.values[JWT_SECRET].value
    );
    let second = f.resolve().unwrap();
    assert!(matches!(
        second.values[CSRF_SECRET].source,
        Source::Stored(_)
    ));
    assert_eq!(
        first.values[CSRF_SECRET].value,
        second.values[CSRF_SECRET].value
    );
    assert!(matches!(
        second.values[JWT_SECRET].source,
        Source::Stored(_)
    ));
    assert_eq!(
        first.values[JWT_SECRET].value,
        second.values[JWT_SECRET].value
    );
    assert_eq!(
        first.values[DATABASE_URL].value,
        second.values[DATABASE_URL].value
    );
    let key = [7u8; 32];
    assert_eq!(first.digest(&key), second.digest(&key));
    assert!(!first.values.contains_key(LLM_API_KEY));
}

#[test]
fn precedence_env_then_dotenv_then_generated() {
    let mut f = Fixture::new();
    f.dotenv(
        "JWT_SECRET=from-dotenv-0123456789abcdef0123456789abcdef\nLLM_API_KEY=sk-dotenv\n\
         LLM_BASE_URL=https://llm.example/v1\nLLM_MODEL=m\n",
    );
    let s = f.resolve().unwrap();
    assert!(matches!(s.values[JWT_SECRET].source, Source::DotEnv(_)));
    assert_eq!(s.values[LLM_API_KEY].value.expose(), "sk-dotenv");
    f.env.insert(
        JWT_SECRET.into(),
        "from-env-0123456789abcdef0123456789abcdef".into(),
    );
    let s = f.resolve().unwrap();
    assert_eq!(s.values[JWT_SECRET].source, Source::Env);
    assert!(s.values[JWT_SECRET].value.expose().starts_with("from-env"));
}

#[test]
fn cluster_value_is_reused_when_the_store_is_gone() {
    let mut f = Fixture::new();
    f.existing.insert(
        POSTGRES_PASSWORD.into(),
        SecretValue::new("pw-already-in-the-db"),
    );
    let s = f.resolve().unwrap();
    assert_eq!(s.values[POSTGRES_PASSWORD].source, Source::Cluster);
    assert!(
        s.values[DATABASE_URL]
            .value
            .expose()
            .contains("pw-already-in-the-db")
    );
    // ...and is stored so the next run does not depend on the cluster.
    f.existing.clear();
    let s = f.resolve().unwrap();
    assert!(matches!(
        s.values[POSTGRES_PASSWORD].source,
        Source::Stored(_)
    ));
    assert!(
        s.values[DATABASE_URL]
            .value
            .expose()
            .contains("pw-already-in-the-db")
    );
}

#[test]
fn short_jwt_or_csrf_secret_is_rejected_without_showing_it() {
    for key in [JWT_SECRET, CSRF_SECRET] {
        let mut f = Fixture::new();
        f.env.insert(key.into(), "tooshort-secret".into());
        let err = format!("{:#}", f.resolve().unwrap_err());
        assert!(
            err.starts_with(&format!("{key} from environment variable is 15 bytes"))
                && err.contains("at least 32"),
            "{err}"
        );
        assert!(!err.contains("tooshort-secret"), "{err}");
    }
}

#[test]
fn csrf_secret_comes_from_env_dotenv_or_the_cluster_like_the_jwt_secret() {
    let mut f = Fixture::new();
    f.dotenv("CSRF_SECRET=from-dotenv-0123456789abcdef0123456789abcdef\n");
    let s = f.resolve().unwrap();
    assert!(matches!(s.values[CSRF_SECRET].source, Source::DotEnv(_)));
    f.env.insert(
        CSRF_SECRET.into(),
        "from-env-0123456789abcdef0123456789abcdef".into(),
    );
    assert_eq!(f.resolve().unwrap().values[CSRF_SECRET].source, Source::Env);
    // Lost local store: the deployed Secret's value is kept, so open forms stay valid.
    let mut f = Fixture::new();
    f.existing.insert(
        CSRF_SECRET.into(),
        SecretValue::new("csrf-already-deployed-0123456789abcdef"),
    );
    let s = f.resolve().unwrap();
    assert_eq!(s.values[CSRF_SECRET].source, Source::Cluster);
    assert_eq!(
        s.values[CSRF_SECRET].value.expose(),
        "csrf-already-deployed-0123456789abcdef"
    );
}

#[test]
fn in_cluster_url_percent_encodes_the_password() {
    let mut f = Fixture::new();
    f.env
        .insert(POSTGRES_PASSWORD.into(), "p@ss:w/rd?#%".into());
    let s = f.resolve().unwrap();
    let url = url::Url::parse(s.values[DATABASE_URL].value.expose()).unwrap();
    assert_eq!(url.host_str(), Some("todo-app-postgresql"));
    assert_eq!(url.port(), Some(5432));
    assert_eq!(url.path(), "/todo");
    let decoded = percent_encoding::percent_decode_str(url.password().unwrap())
        .decode_utf8()
        .unwrap();
    assert_eq!(decoded, "p@ss:w/rd?#%");
}

#[test]
fn external_url_is_validated_and_never_echoed() {
    let mut f = Fixture::new();
    f.env
        .insert(DATABASE_URL.into(), "mysql://u:topsecretpw@h/db".into());
    let err = format!("{:#}", f.resolve().unwrap_err());
    assert!(
        err.contains("DATABASE_URL") && err.contains("postgres://"),
        "{err}"
    );
    assert!(!err.contains("topsecretpw"), "{err}");
    for bad in [
        "not a url topsecretpw",
        "postgres:///db",
        "postgresql://u:topsecretpw@host",
    ] {
        f.env.insert(DATABASE_URL.into(), bad.into());
        let err = format!("{:#}", f.resolve().unwrap_err());
        assert!(!err.contains("topsecretpw"), "{err}");
    }
    f.env.insert(
        DATABASE_URL.into(),
        "postgresql://u:pw@db.example.com:5432/todo".into(),
    );
    let s = f.resolve().unwrap();
    assert!(s.external_db);
    assert!(!s.values.contains_key(POSTGRES_PASSWORD));
    assert_eq!(s.values[DATABASE_URL].source, Source::Env);
}

#[test]
fn external_mode_prompts_only_on_a_terminal() {
    let mut f = Fixture::new();
    f.mode = DbMode::External;
    let err = format!("{:#}", f.resolve().unwrap_err());
    assert!(err.contains("DATABASE_URL is required"), "{err}");
    f.interactive = true;
    let asked = Cell::new(0);
    let s = f
        .resolve_with(&|label| {
            assert!(label.contains("DATABASE_URL"));
            asked.set(asked.get() + 1);
            Ok("postgres://u:typed@db:5432/todo".into())
        })
        .unwrap();
    assert_eq!(asked.get(), 1);
    assert_eq!(s.values[DATABASE_URL].source, Source::Prompt);
}

#[test]
fn report_debug_and_manifest_debug_show_no_values() {
    let mut f = Fixture::new();
    f.env.insert(LLM_API_KEY.into(), "sk-marker-ABCDEF".into());
    with_llm_provider(&mut f);
    f.env.insert(
        llm::LLM_BASE_URL.into(),
        "https://user:url-marker-pw@llm.example/v1".into(),
    );
    let s = f.resolve().unwrap();
    let manifest = s.manifest(super::SECRET_NAME, "todo-app", "d1g3st");
    let shown = format!("{:?}\n{:?}\n{}", s, manifest, s.report().join("\n"));
    for (_, v) in s.pairs() {
        assert!(!shown.contains(v.expose()), "value leaked into {shown}");
    }
    assert!(!shown.contains("url-marker-pw"), "{shown}");
    for key in [LLM_API_KEY, LLM_BASE_URL] {
        assert!(
            shown.contains(&format!("{key}: environment variable")),
            "{shown}"
        );
    }
    assert!(shown.contains("CSRF_SECRET: generated now"), "{shown}");
    // The manifest itself carries the data base64-encoded, plus the digest annotation.
    let doc: serde_json::Value = serde_json::from_slice(manifest.bytes()).unwrap();
    assert_eq!(doc["metadata"]["name"], SECRET_NAME);
    assert_eq!(doc["metadata"]["annotations"][DIGEST_ANNOTATION], "d1g3st");
    let decoded = decode_secret_data(&doc);
    assert_eq!(decoded[LLM_API_KEY].expose(), "sk-marker-ABCDEF");
    assert_eq!(
        decoded[LLM_BASE_URL].expose(),
        "https://user:url-marker-pw@llm.example/v1"
    );
    assert_eq!(decoded[CSRF_SECRET], s.values[CSRF_SECRET].value);
    assert_eq!(decoded.len(), s.values.len());
}

#[test]
fn rotating_a_value_changes_the_digest() {
    let mut f = Fixture::new();
    let key = [9u8; 32];
    let a = f.resolve().unwrap().digest(&key);
    f.env.insert(LLM_API_KEY.into(), "sk-new".into());
    with_llm_provider(&mut f);
    let b = f.resolve().unwrap().digest(&key);
    assert_ne!(a, b);
}

/// The provider settings the backend needs with a key (the base URL goes into the Secret).
fn with_llm_provider(f: &mut Fixture) {
    f.env
        .insert(llm::LLM_BASE_URL.into(), "https://llm.example/v1".into());
    f.env.insert(llm::LLM_MODEL.into(), "gpt-test".into());
}

#[test]
fn a_key_without_provider_settings_fails_naming_the_missing_variable() {
    let mut f = Fixture::new();
    f.dotenv("LLM_API_KEY=sk-marker-XYZ\n");
    let e = format!("{:#}", f.resolve().unwrap_err());
    assert!(e.starts_with("LLM_BASE_URL is missing"), "{e}");
    assert!(e.contains("LLM_API_KEY (from "), "{e}");
    assert!(!e.contains("sk-marker-XYZ"), "{e}");
    // Nothing was generated and stored for a resolution that failed.
    assert!(!f.dir.path().join("state/generated-secrets.env").exists());

    f.env
        .insert(llm::LLM_BASE_URL.into(), "https://llm.example/v1".into());
    let e = format!("{:#}", f.resolve().unwrap_err());
    assert!(e.starts_with("LLM_MODEL is missing"), "{e}");

    f.env.insert(llm::LLM_MODEL.into(), "gpt-test".into());
    let s = f.resolve().unwrap();
    assert_eq!(s.llm.vars[llm::LLM_MODEL], "gpt-test");
    // The base URL is a secret key (it may carry credentials); the model is a plain setting.
    assert_eq!(
        s.values[llm::LLM_BASE_URL].value.expose(),
        "https://llm.example/v1"
    );
    assert_eq!(s.values[llm::LLM_BASE_URL].source, Source::Env);
    assert!(!s.values.contains_key(llm::LLM_MODEL));
    assert!(s.llm.env().all(|(k, _)| k != llm::LLM_BASE_URL));
}

#[test]
fn rotating_the_base_url_changes_the_digest() {
    let mut f = Fixture::new();
    with_llm_provider(&mut f);
    let key = [9u8; 32];
    let a = f.resolve().unwrap().digest(&key);
    f.env.insert(
        llm::LLM_BASE_URL.into(),
        "https://user:new-pw@llm.example/v1".into(),
    );
    assert_ne!(a, f.resolve().unwrap().digest(&key));
}

#[test]
fn public_url_drops_credentials() {
    let v = SecretValue::new("postgresql://u:s3cr3t@db.example.com/todo?sslmode=require");
    assert_eq!(
        public_database_url(&v).unwrap(),
        "postgresql://db.example.com:5432/todo"
    );
}
