//! A minimal `.env` reader: `KEY=value`, optional `export `, quotes, `#` comments.
//! Errors name the file and line but never echo the line, which may hold a secret.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::SecretValue;

/// Reads `path`; a missing file is an empty map.
pub fn read(path: &Path) -> Result<BTreeMap<String, SecretValue>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => bail!("could not read {}: {e}", path.display()),
    }
}

/// Parses `.env` text.
pub fn parse(text: &str, path: &Path) -> Result<BTreeMap<String, SecretValue>> {
    let mut out = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let bad = |why: &str| {
            anyhow::anyhow!(
                "{}:{}: {why} (expected KEY=value; the line is not shown as it may hold a secret)",
                path.display(),
                index + 1
            )
        };
        let (key, value) = line.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let key = key.trim();
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad("invalid variable name"));
        }
        let value = unquote(value.trim()).ok_or_else(|| bad("unterminated quote"))?;
        out.insert(key.to_owned(), SecretValue::new(value));
    }
    Ok(out)
}

fn unquote(v: &str) -> Option<String> {
    if let Some(rest) = v.strip_prefix('\'') {
        return rest.strip_suffix('\'').map(str::to_owned);
    }
    if let Some(rest) = v.strip_prefix('"') {
        let inner = rest.strip_suffix('"')?;
        let mut s = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next()? {
                    'n' => s.push('\n'),
                    other => s.push(other),
                }
            } else {
                s.push(c);
            }
        }
        return Some(s);
    }
    // Unquoted: a ` #` starts a comment.
    let v = v.split(" #").next().unwrap_or_default().trim_end();
    Some(v.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let m = parse(
            "# comment\n\nA=1\nexport B = two \nC='x y # z'\nD=\"q\\\"uote\\n\"\nE=val # trailing\nF=\n",
            Path::new(".env"),
        )
        .unwrap();
        assert_eq!(m["A"].expose(), "1");
        assert_eq!(m["B"].expose(), "two");
        assert_eq!(m["C"].expose(), "x y # z");
        assert_eq!(m["D"].expose(), "q\"uote\n");
        assert_eq!(m["E"].expose(), "val");
        assert_eq!(m["F"].expose(), "");
    }

    #[test]
    fn errors_name_line_but_not_content() {
        let err = parse("A=1\nsupersecretvalue\n", Path::new("/r/.env"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/r/.env:2"), "{err}");
        assert!(!err.contains("supersecretvalue"), "{err}");
        let err = parse("K=\"open-secret\n", Path::new(".env"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("open-secret"), "{err}");
    }
}
