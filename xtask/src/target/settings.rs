//! `xtask/targets.toml`: the project's settings of the deployment targets (as opposed to
//! `pipeline.toml`, which declares the tasks). Today one setting: the kube contexts that are not
//! local clusters but that this project deploys to all the same (Tilt's `allow_k8s_contexts`).
//!
//! ```toml
//! [kube]
//! allow-contexts = ["staging"]
//! ```
//! A missing file means no such context. Every problem is reported with a caret and nothing runs.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::error::{Diagnostic, Error};

/// The file, relative to the project root.
pub const FILE: &str = "xtask/targets.toml";

/// The settings of the targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `[kube] allow-contexts`: contexts the `kube` target deploys to although they do not look
    /// like local clusters.
    pub allow_contexts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    kube: Option<RawKube>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKube {
    #[serde(default)]
    allow_contexts: Vec<Spanned<String>>,
}

/// Reads the settings of the project at `root`.
pub fn load(root: &Path) -> anyhow::Result<Settings> {
    let path = root.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map_err(|diagnostics| {
            Error::Declaration {
                file: PathBuf::from(FILE),
                text,
                diagnostics,
            }
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))),
    }
}

/// Parses and validates the text of [`FILE`].
pub fn parse(text: &str) -> Result<Settings, Vec<Diagnostic>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', "; ");
        vec![Diagnostic::new(
            format!("cannot parse `{FILE}`: {message}"),
            e.span(),
            "the file holds one table, `[kube]`, with one setting, `allow-contexts = [\"NAME\", ...]`",
        )]
    })?;
    let mut diags = Vec::new();
    let mut allow: Vec<String> = Vec::new();
    for name in raw.kube.map(|k| k.allow_contexts).unwrap_or_default() {
        let span = name.span();
        let name = name.into_inner();
        if name.trim().is_empty() || name.trim() != name {
            diags.push(Diagnostic::new(
                format!("`{name}` is not a kube context name"),
                Some(span),
                "write the name exactly as `kubectl config get-contexts -o name` prints it",
            ));
        } else if allow.contains(&name) {
            diags.push(Diagnostic::new(
                format!("context `{name}` is listed twice"),
                Some(span),
                "remove one of them",
            ));
        } else {
            allow.push(name);
        }
    }
    if diags.is_empty() {
        Ok(Settings {
            allow_contexts: allow,
        })
    } else {
        Err(diags)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_read_and_checked() {
        assert_eq!(parse("").unwrap(), Settings::default());
        assert_eq!(
            parse("[kube]\nallow-contexts = [\"staging\", \"qa@eu\"]\n")
                .unwrap()
                .allow_contexts,
            ["staging", "qa@eu"]
        );
        let errs = parse("[kube]\nallow-contexts = [\"a\", \" b\", \"a\"]\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("` b` is not"), "{errs:?}");
        assert!(errs[1].message.contains("listed twice"), "{errs:?}");
        let errs = parse("[kube]\nallow-context = [\"a\"]\n").unwrap_err();
        assert!(
            errs[0].message.contains("unknown field `allow-context`") && errs[0].span.is_some(),
            "{errs:?}"
        );
        assert!(parse("[kube]\nallow-contexts = \"a\"\n").is_err());
    }
}
