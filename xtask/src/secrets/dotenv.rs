//! A minimal `.env` reader: `KEY=value`, optional `export `, quotes, `#` comments (whole-line
//! and inline, after a value, as docker compose and python-dotenv accept them).
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
        let value = unquote(value.trim()).map_err(bad)?;
        out.insert(key.to_owned(), SecretValue::new(value));
    }
    Ok(out)
}

/// The value of `v`: quoted (`'…'` literal, `"…"` with `\\` escapes) or bare; after a closing
/// quote, or after whitespace in a bare value, `#` starts a comment, as dotenv tools accept.
fn unquote(v: &str) -> Result<String, &'static str> {
    const UNTERMINATED: &str = "unterminated quote";
    let (value, rest) = if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or(UNTERMINATED)?;
        (rest[..end].to_owned(), &rest[end + 1..])
    } else if let Some(rest) = v.strip_prefix('"') {
        let mut value = String::with_capacity(rest.len());
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or(UNTERMINATED)? {
                (_, '\\') => match chars.next().ok_or(UNTERMINATED)?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        (value, &rest[end + 1..])
    } else {
        let comment = v
            .char_indices()
            .find(|&(i, c)| c == '#' && v[..i].ends_with(char::is_whitespace))
            .map_or(v.len(), |(i, _)| i);
        return Ok(v[..comment].trim_end().to_owned());
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err("text after the closing quote (a comment starts with `#`)")
    }
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
    fn inline_comments_follow_quoted_and_bare_values() {
        let m = parse(
            "A=\"v\" # comment\nB='w'   #c\nC=x\t# tab\nD=\"a # b\"\nE=p#q\n",
            Path::new(".env"),
        )
        .unwrap();
        assert_eq!(m["A"].expose(), "v");
        assert_eq!(m["B"].expose(), "w");
        assert_eq!(m["C"].expose(), "x");
        assert_eq!(m["D"].expose(), "a # b");
        // No whitespace before `#`: part of the value, as in dotenv.
        assert_eq!(m["E"].expose(), "p#q");
        let err = parse("K=\"v\" trailing-secret\n", Path::new(".env"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(".env:1: text after the closing quote"),
            "{err}"
        );
        assert!(!err.contains("trailing-secret"), "{err}");
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
