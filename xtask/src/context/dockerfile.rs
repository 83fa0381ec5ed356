//! The images a Dockerfile builds on: every stage's `FROM` and every `COPY --from=` that names an
//! image rather than an earlier stage. An image's key includes their IDs, so a re-pulled base
//! (a security fix in `debian:bookworm-slim`) rebuilds the image although no source changed.
//!
//! Only what decides those names is read, as the classic builder reads it: instructions are
//! case-insensitive, `\` continues a line, `#` starts a comment line, and `FROM` may use the
//! global `ARG`s declared before the first `FROM` (`$NAME`, `${NAME}`, `${NAME:-default}`),
//! with `--build-arg` values overriding their defaults.

use std::collections::BTreeMap;

/// The external images `dockerfile` (its text) starts stages from or copies from, in order of
/// first use, without duplicates. `build_args` are the `--build-arg` values. An error names
/// the line and what cannot be resolved.
pub fn base_images(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut global_args: BTreeMap<String, String> = BTreeMap::new();
    // One entry per stage, its `AS` name (lowercase) if it has one: `FROM name` and
    // `COPY --from=name|index` refer to a stage, not an image.
    let mut stages: Vec<Option<String>> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let add = |image: String, images: &mut Vec<String>| {
        if !image.eq_ignore_ascii_case("scratch") && !images.contains(&image) {
            images.push(image);
        }
    };
    let is_stage = |stages: &[Option<String>], name: &str| {
        let name = name.to_ascii_lowercase();
        stages.iter().any(|s| s.as_deref() == Some(&name))
    };
    for (line_no, line) in logical_lines(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        let words: Vec<&str> = words.collect();
        match instruction.to_ascii_uppercase().as_str() {
            "ARG" if stages.is_empty() => {
                for word in words {
                    let (name, default) = word.split_once('=').unwrap_or((word, ""));
                    let value = build_args
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| unquote(default));
                    global_args.insert(name.to_owned(), value);
                }
            }
            "FROM" => {
                let mut rest = words.iter().filter(|w| !w.starts_with("--"));
                let Some(reference) = rest.next() else {
                    return Err(format!("line {line_no}: FROM names no image"));
                };
                let image = expand(reference, &global_args)
                    .map_err(|e| format!("line {line_no}: FROM {reference}: {e}"))?;
                if !is_stage(&stages, &image) {
                    add(image, &mut images);
                }
                let name = match (rest.next(), rest.next()) {
                    (Some(as_word), Some(name)) if as_word.eq_ignore_ascii_case("as") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => None,
                };
                stages.push(name);
            }
            "COPY" | "ADD" => {
                for word in &words {
                    let Some(from) = word.strip_prefix("--from=") else {
                        continue;
                    };
                    let from = unquote(from);
                    let index = from.parse::<usize>().is_ok_and(|i| i < stages.len());
                    if !index && !is_stage(&stages, &from) {
                        add(from, &mut images);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(images)
}

/// Instructions with their first line's number: continuations joined, comment and blank lines
/// dropped (also between continued lines, as the builder does).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continued) = match trimmed.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push(' ');
        entry.1.push_str(body);
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` replaced from `args`; an unknown name is an error
/// (the builder would use an empty string and fail on the reference).
fn expand(word: &str, args: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (expr, tail) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').ok_or("an unclosed `${`")?;
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        match (args.get(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "`${name}` is not a global ARG with a value; declare `ARG {name}=...` before \
                     the first FROM or pass it in the task's build-args"
                ));
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bases(text: &str, args: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let args = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        base_images(text, &args)
    }

    #[test]
    fn stages_and_copies_name_their_images_once() {
        let text = "# syntax\nFROM rust:1.95-slim-bookworm AS build\nRUN cargo build\n\
                    from --platform=linux/amd64 debian:bookworm-slim\n\
                    COPY --from=build /a /a\nCOPY --from=0 /b /b\n\
                    COPY --from=busybox:1.36 /bin/busybox /bin/\nFROM scratch\n\
                    FROM debian:bookworm-slim AS again\n";
        assert_eq!(
            bases(text, &[]).unwrap(),
            [
                "rust:1.95-slim-bookworm",
                "debian:bookworm-slim",
                "busybox:1.36"
            ]
        );
    }

    #[test]
    fn a_stage_built_on_an_earlier_stage_adds_no_image() {
        let text = "FROM debian:bookworm-slim AS base\nFROM base AS test\nCOPY --from=test /x /x\n";
        assert_eq!(bases(text, &[]).unwrap(), ["debian:bookworm-slim"]);
    }

    #[test]
    fn global_args_and_build_args_resolve_from() {
        let text = "ARG RUST=1.95 \\\n  DEBIAN=bookworm\nFROM rust:${RUST}-slim-$DEBIAN\n\
                    FROM debian:${DEBIAN_TAG:-bookworm-slim}\n";
        assert_eq!(
            bases(text, &[]).unwrap(),
            ["rust:1.95-slim-bookworm", "debian:bookworm-slim"]
        );
        assert_eq!(
            bases(text, &[("RUST", "1.96")]).unwrap()[0],
            "rust:1.96-slim-bookworm"
        );
        let e = bases("FROM rust:$NOPE\n", &[]).unwrap_err();
        assert!(
            e.starts_with("line 1: FROM rust:$NOPE: `$NOPE` is not a global ARG"),
            "{e}"
        );
    }

    #[test]
    fn the_project_s_dockerfiles_start_from_the_seeded_images() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for dockerfile in ["backend/Dockerfile", "frontend/Dockerfile"] {
            let text = std::fs::read_to_string(root.join(dockerfile)).unwrap_or_default();
            assert_eq!(
                bases(&text, &[]).unwrap(),
                ["debian:bookworm-slim"],
                "{dockerfile} (runtime only: the binary comes from the builder)"
            );
        }
    }
}
