//! The chat assistant's provider settings: `LLM_BASE_URL`, `LLM_MODEL` and
//! `LLM_TIMEOUT_SECONDS`, resolved from the same sources as the secrets (environment, then
//! `.env`) and validated with the backend's all-or-nothing rule before anything is built, so a
//! key without a provider fails here with the missing variable named instead of as a backend
//! that refuses to start.
//!
//! `LLM_BASE_URL` is handled as a secret, since a URL may carry credentials (user-info, a key in
//! the query): it is a key of the app's Secret and a secret container variable, never a chart
//! value, an argument or part of a message. Only its port reaches the chart (for the backend's
//! egress NetworkPolicy). `LLM_MODEL` and `LLM_TIMEOUT_SECONDS` are plain settings.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::{LLM_API_KEY, Resolved, SecretValue, Source};

/// `LLM_BASE_URL`: an OpenAI-compatible API's base URL.
pub const LLM_BASE_URL: &str = "LLM_BASE_URL";
/// `LLM_MODEL`: the model name; required with the base URL.
pub const LLM_MODEL: &str = "LLM_MODEL";
/// `LLM_TIMEOUT_SECONDS`: optional, 1 to 600.
pub const LLM_TIMEOUT_SECONDS: &str = "LLM_TIMEOUT_SECONDS";

/// The resolved settings; empty when the assistant uses its built-in interpreter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmSettings {
    /// `LLM_BASE_URL` and where it came from: a secret (`Debug` redacts it).
    pub base_url: Option<Resolved>,
    /// The plain settings, only the ones supplied (`LLM_MODEL` whenever the base URL is set,
    /// `LLM_TIMEOUT_SECONDS`).
    pub vars: BTreeMap<&'static str, String>,
}

impl LlmSettings {
    /// The backend's plain environment variables (`LLM_MODEL`, `LLM_TIMEOUT_SECONDS`), as
    /// supplied. Not `LLM_BASE_URL`, which travels as a secret.
    pub fn env(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The TCP port of `LLM_BASE_URL` (explicit, else 443 for https and 80 for http), for the
    /// backend's egress NetworkPolicy. Not secret.
    pub fn egress_port(&self) -> Option<u16> {
        let url = url::Url::parse(self.base_url.as_ref()?.value.expose()).ok()?;
        url.port_or_known_default()
    }

    /// Chart values for `helm --set-string` (k8s/todo-app/values.yaml): `backend.llm.model`.
    pub fn helm_string_values(&self) -> Vec<(String, String)> {
        self.vars
            .get(LLM_MODEL)
            .map(|m| ("backend.llm.model".to_owned(), m.clone()))
            .into_iter()
            .collect()
    }

    /// Integer chart values for the typed `helm --set` (the schema wants integers):
    /// `backend.llm.timeoutSeconds` and `backend.llm.egressPort`.
    pub fn helm_typed_values(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(t) = self.vars.get(LLM_TIMEOUT_SECONDS) {
            out.push(("backend.llm.timeoutSeconds".to_owned(), t.clone()));
        }
        if let Some(port) = self.egress_port() {
            out.push(("backend.llm.egressPort".to_owned(), port.to_string()));
        }
        out
    }
}

/// Reads the settings from the environment, then the `.env` at `dotenv` (same order as the
/// secrets), and validates them; `LLM_API_KEY` is looked up the same way for the rule.
pub fn resolve_from(env: &dyn Fn(&str) -> Option<String>, dotenv: &Path) -> Result<LlmSettings> {
    let file = super::dotenv::read(dotenv)?;
    let supplied = |key: &str| -> Option<(String, Source)> {
        if let Some(v) = env(key).filter(|v| !v.trim().is_empty()) {
            return Some((v, Source::Env));
        }
        file.get(key)
            .filter(|v| !v.expose().trim().is_empty())
            .map(|v| (v.expose().to_owned(), Source::DotEnv(dotenv.to_path_buf())))
    };
    let api_key = supplied(LLM_API_KEY).map(|(_, s)| s);
    resolve(&supplied, api_key)
}

/// Validates with the backend's rules (backend/src/config.rs): `LLM_BASE_URL` is required when
/// `LLM_API_KEY` or `LLM_MODEL` is set, `LLM_MODEL` when `LLM_BASE_URL` is. Errors name the
/// variable, where the others came from and the fix; never a value of the URL (it may hold
/// credentials).
pub fn resolve(
    supplied: &dyn Fn(&str) -> Option<(String, Source)>,
    api_key: Option<Source>,
) -> Result<LlmSettings> {
    let base = supplied(LLM_BASE_URL);
    let model = supplied(LLM_MODEL);
    let Some((base, base_source)) = base else {
        let set: Vec<(&str, Source)> = [(LLM_API_KEY, api_key), (LLM_MODEL, model.map(|(_, s)| s))]
            .into_iter()
            .filter_map(|(k, s)| Some((k, s?)))
            .collect();
        if !set.is_empty() {
            let described: Vec<String> =
                set.iter().map(|(k, s)| format!("{k} (from {s})")).collect();
            let names: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
            bail!(
                "{LLM_BASE_URL} is missing but {} is set: the backend needs {LLM_BASE_URL} and \
                 {LLM_MODEL} together with the key. Fix: set {LLM_BASE_URL} (e.g. \
                 https://api.openai.com/v1) and {LLM_MODEL} in the environment or .env, or unset \
                 {} to use the built-in interpreter",
                described.join(" and "),
                names.join(" and ")
            );
        }
        return Ok(LlmSettings::default());
    };
    let base = base.trim().to_owned();
    let parsed = url::Url::parse(&base).map_err(|_| {
        anyhow::anyhow!(
            "{LLM_BASE_URL} from {base_source} is not a valid URL. Fix: set it to an http:// or \
             https:// URL, e.g. https://api.openai.com/v1"
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!(
            "{LLM_BASE_URL} from {base_source} must be an http:// or https:// URL with a host, \
             e.g. https://api.openai.com/v1"
        );
    }
    let Some((model, _)) = model else {
        bail!(
            "{LLM_MODEL} is missing but {LLM_BASE_URL} is set (from {base_source}): the backend \
             needs both. Fix: set {LLM_MODEL} (e.g. gpt-4o-mini) in the environment or .env, or \
             unset {LLM_BASE_URL} to use the built-in interpreter"
        );
    };
    let mut vars = BTreeMap::from([(LLM_MODEL, model.trim().to_owned())]);
    if let Some((raw, source)) = supplied(LLM_TIMEOUT_SECONDS) {
        match raw.trim().parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => {
                vars.insert(LLM_TIMEOUT_SECONDS, s.to_string());
            }
            _ => bail!(
                "{LLM_TIMEOUT_SECONDS} from {source} must be a whole number of seconds from 1 to \
                 600, got {raw:?}"
            ),
        }
    }
    Ok(LlmSettings {
        base_url: Some(Resolved {
            value: SecretValue::new(base),
            source: base_source,
        }),
        vars,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<LlmSettings> {
        let dir = tempfile::tempdir().unwrap();
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve_from(&|k| env.get(k).cloned(), &dir.path().join(".env"))
    }

    #[test]
    fn nothing_set_is_the_built_in_interpreter() {
        assert_eq!(from(&[]).unwrap(), LlmSettings::default());
        // A lone timeout configures nothing (the backend ignores it without a provider).
        assert_eq!(
            from(&[(LLM_TIMEOUT_SECONDS, "10")]).unwrap(),
            LlmSettings::default()
        );
    }

    #[test]
    fn a_key_without_base_url_names_the_missing_variable_not_the_key() {
        let e = format!("{:#}", from(&[(LLM_API_KEY, "sk-marker-123")]).unwrap_err());
        assert!(e.starts_with("LLM_BASE_URL is missing"), "{e}");
        assert!(e.contains("LLM_API_KEY (from environment variable)"), "{e}");
        assert!(!e.contains("sk-marker-123"), "{e}");
    }

    #[test]
    fn a_model_without_base_url_is_rejected() {
        let e = format!("{:#}", from(&[(LLM_MODEL, "m")]).unwrap_err());
        assert!(e.starts_with("LLM_BASE_URL is missing"), "{e}");
    }

    #[test]
    fn a_base_url_without_model_names_llm_model() {
        let e = format!(
            "{:#}",
            from(&[
                (LLM_API_KEY, "k"),
                (LLM_BASE_URL, "https://user:pw-marker@llm.example/v1")
            ])
            .unwrap_err()
        );
        assert!(e.starts_with("LLM_MODEL is missing"), "{e}");
        assert!(!e.contains("pw-marker"), "{e}");
    }

    #[test]
    fn invalid_url_and_timeout_are_rejected_without_echoing_the_url() {
        let e = format!(
            "{:#}",
            from(&[(LLM_BASE_URL, "ftp://secret-host/x"), (LLM_MODEL, "m")]).unwrap_err()
        );
        assert!(
            e.contains("http:// or https://") && !e.contains("secret-host"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            from(&[
                (LLM_BASE_URL, "https://llm.example/v1"),
                (LLM_MODEL, "m"),
                (LLM_TIMEOUT_SECONDS, "0")
            ])
            .unwrap_err()
        );
        assert!(e.starts_with("LLM_TIMEOUT_SECONDS"), "{e}");
    }

    #[test]
    fn complete_settings_come_from_env_then_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(
            &dotenv,
            "LLM_BASE_URL=https://file.example/v1\nLLM_MODEL=file-model\nLLM_TIMEOUT_SECONDS=45\n",
        )
        .unwrap();
        let env = |k: &str| (k == LLM_MODEL).then(|| "env-model".to_owned());
        let s = resolve_from(&env, &dotenv).unwrap();
        let base = s.base_url.as_ref().unwrap();
        assert_eq!(base.value.expose(), "https://file.example/v1");
        assert_eq!(base.source, Source::DotEnv(dotenv.clone()));
        assert_eq!(s.vars[LLM_MODEL], "env-model");
        assert_eq!(s.vars[LLM_TIMEOUT_SECONDS], "45");
        assert!(
            !s.vars.contains_key(LLM_BASE_URL),
            "the URL is no plain setting"
        );
        assert_eq!(
            s.helm_string_values(),
            [("backend.llm.model".to_owned(), "env-model".to_owned())]
        );
        assert_eq!(
            s.helm_typed_values(),
            [
                ("backend.llm.timeoutSeconds".to_owned(), "45".to_owned()),
                ("backend.llm.egressPort".to_owned(), "443".to_owned()),
            ]
        );
    }

    #[test]
    fn the_base_url_is_a_secret_only_its_port_is_a_chart_value() {
        let s = from(&[
            (
                LLM_BASE_URL,
                "http://user:pw-marker@llm.example:11434/v1?key=k-marker",
            ),
            (LLM_MODEL, "m"),
        ])
        .unwrap();
        assert_eq!(s.egress_port(), Some(11434));
        let shown = format!(
            "{s:?} {:?} {:?} {:?}",
            s.env().collect::<Vec<_>>(),
            s.helm_string_values(),
            s.helm_typed_values()
        );
        assert!(
            !shown.contains("pw-marker") && !shown.contains("k-marker"),
            "{shown}"
        );
        assert_eq!(
            s.helm_typed_values(),
            [("backend.llm.egressPort".to_owned(), "11434".to_owned())]
        );
        let plain_http = from(&[(LLM_BASE_URL, "http://llm.example/v1"), (LLM_MODEL, "m")]);
        assert_eq!(plain_http.unwrap().egress_port(), Some(80));
    }
}
