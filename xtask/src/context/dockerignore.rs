//! `.dockerignore` reading and matching, ported rule for rule from docker/cli's `ReadDockerignore`
//! (moby/patternmatcher `ignorefile.ReadAll`) and moby/patternmatcher's `PatternMatcher`.
//!
//! Docker turns every pattern into a Go regular expression (or a plain string comparison when the
//! pattern has no wildcard). We reproduce that translation token by token and match with a small
//! backtracking matcher, so `*`, `?`, `**`, classes and escapes behave exactly as Docker's. The few
//! constructs whose Docker behaviour is an accident of that translation (a `*` or `?` inside
//! `[...]`, POSIX `[:name:]` classes, `\d`-style regexp escapes) are rejected with an error naming
//! the pattern rather than silently guessed.

use std::fmt;

/// Why a pattern list is unusable; each variant names the offending pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A line that is only `!` (Docker: `illegal exclusion pattern: "!"`).
    #[error("illegal exclusion pattern \"!\": an exception needs a path after the `!`")]
    LoneBang,
    /// A pattern Docker itself rejects (`filepath.ErrBadPattern` or a regexp compile error).
    #[error("malformed pattern {pattern:?}: {reason}; docker build rejects it too")]
    Malformed {
        /// The cleaned pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern whose meaning in Docker depends on Go regexp quirks we do not reproduce.
    #[error(
        "pattern {pattern:?} uses {construct}, which Docker passes to Go's regexp engine with \
         surprising results; rewrite it with plain `*`, `?`, `**` or a simple [a-z] class"
    )]
    Unsupported {
        /// The cleaned pattern.
        pattern: String,
        /// The construct, e.g. `the escape \d`.
        construct: String,
    },
    /// A line longer than Go's `bufio.Scanner` accepts (64 KiB).
    #[error("line {line} is longer than 64 KiB; docker build fails on it too")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
}

/// One pattern line kept from an ignore file, with its 1-based line number for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternLine {
    /// 1-based line number in the ignore file.
    pub line: usize,
    /// The pattern as docker/cli's `ReadAll` returns it (cleaned, leading `/` stripped, `!` kept).
    pub pattern: String,
}

/// Go's `bufio.MaxScanTokenSize`: longer lines make docker/cli's reader fail.
const MAX_LINE: usize = 64 * 1024;

/// Parse ignore-file content exactly like docker/cli (`ignorefile.ReadAll`).
///
/// Rules: a UTF-8 BOM on the first line is dropped; lines starting with `#` (before trimming)
/// are comments; whitespace is trimmed; blank lines are skipped; a leading `!` marks an
/// exception (whitespace after it is trimmed too); the rest goes through `filepath.Clean` and
/// loses one leading `/`.
pub fn read_patterns(content: &[u8]) -> Result<Vec<PatternLine>, PatternError> {
    let mut out = Vec::new();
    // bufio.ScanLines: split on '\n', drop one trailing '\r', keep a final unterminated line.
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (idx, raw) in lines.into_iter().enumerate() {
        let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return Err(PatternError::LineTooLong { line: idx + 1 });
        }
        if idx == 0 {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        let text = String::from_utf8_lossy(raw);
        if text.starts_with('#') {
            continue;
        }
        let mut pattern = text.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut pattern = pattern.to_string();
        if !pattern.is_empty() {
            pattern = go_clean(&pattern);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
        }
        if invert {
            pattern.insert(0, '!');
        }
        out.push(PatternLine {
            line: idx + 1,
            pattern,
        });
    }
    Ok(out)
}

/// Go's `path/filepath.Clean` for '/'-separated paths.
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir` for a clean relative path: everything before the last `/`, or `.`.
fn go_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// One token of the regular expression Docker builds from a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character.
    Lit(char),
    /// `?` → `[^/]`.
    AnyNoSlash,
    /// `*` → `[^/]*`.
    StarNoSlash,
    /// `**` followed by more pattern → `(.*/)?`.
    DirPrefix,
    /// `**` at the end (after other wildcards) → `.*` (`.` excludes `\n`, as in Go).
    DotStar,
    /// `[...]` → a character class.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A bare `^`, which Docker leaves unescaped: an anchor that only matches at the start.
    Begin,
}

/// How a compiled pattern is compared with a path (patternmatcher's `matchType`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `prefix**`: the path must start with `prefix`.
    Prefix(String),
    /// `**suffix`: the path must end with `suffix` (or equal it minus its leading `/`).
    Suffix(String),
    /// Everything else: an anchored regular expression.
    Regex(Vec<Tok>),
}

/// One compiled pattern (patternmatcher's `Pattern`).
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    dir_count: usize,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern text without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether `path` ('/'-separated, relative, clean) matches this pattern on its own.
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Regex(toks) => {
                let chars: Vec<char> = path.chars().collect();
                regex_full_match(toks, &chars)
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.cleaned)
    }
}

/// Regexp metacharacters Docker escapes because `filepath.Match` gives them no meaning.
fn should_escape(c: char) -> bool {
    ".+()|{}$".contains(c)
}

/// Translate a cleaned pattern the way patternmatcher's `compile` does.
fn compile(pattern: &str) -> Result<Kind, PatternError> {
    #[derive(PartialEq, Eq, Clone, Copy)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let malformed = |reason: &str| PatternError::Malformed {
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    };
    let unsupported = |construct: String| PatternError::Unsupported {
        pattern: pattern.to_string(),
        construct,
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut detected = Detected::Exact;
    let mut k = 0;
    let mut iteration = 0;
    while k < chars.len() {
        let ch = chars[k];
        k += 1;
        if ch == '*' {
            if chars.get(k) == Some(&'*') {
                k += 1;
                // `**/` behaves as `**`.
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::DotStar);
                        detected = Detected::Regex;
                    }
                } else {
                    toks.push(Tok::DirPrefix);
                    detected = Detected::Regex;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            } else {
                toks.push(Tok::StarNoSlash);
                detected = Detected::Regex;
            }
        } else if ch == '?' {
            toks.push(Tok::AnyNoSlash);
            detected = Detected::Regex;
        } else if should_escape(ch) {
            toks.push(Tok::Lit(ch));
        } else if ch == '\\' {
            let Some(&next) = chars.get(k) else {
                return Err(malformed("trailing backslash"));
            };
            k += 1;
            if !next.is_ascii() || next.is_ascii_alphanumeric() {
                return Err(unsupported(format!("the escape \\{next}")));
            }
            toks.push(Tok::Lit(next));
            detected = Detected::Regex;
        } else if ch == '[' {
            let (tok, end) = parse_class(&chars, k, pattern)?;
            toks.push(tok);
            k = end;
            detected = Detected::Regex;
        } else if ch == ']' {
            toks.push(Tok::Lit(']'));
            detected = Detected::Regex;
        } else if ch == '^' {
            toks.push(Tok::Begin);
        } else {
            toks.push(Tok::Lit(ch));
        }
        iteration += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Regex => Kind::Regex(toks),
    })
}

/// Parse a `[...]` class starting just after the `[`, with `filepath.Match`'s validity rules
/// (which Docker checks first) and Go regexp's meaning. Returns the token and the index after `]`.
fn parse_class(chars: &[char], mut k: usize, pattern: &str) -> Result<(Tok, usize), PatternError> {
    let malformed = |reason: String| PatternError::Malformed {
        pattern: pattern.to_string(),
        reason,
    };
    let negated = chars.get(k) == Some(&'^');
    if negated {
        k += 1;
    }
    let mut ranges = Vec::new();
    let class_char = |k: &mut usize| -> Result<char, PatternError> {
        let Some(&c) = chars.get(*k) else {
            return Err(malformed("unclosed [".to_string()));
        };
        match c {
            '-' | ']' => Err(malformed(format!("unexpected {c:?} in a [...] class"))),
            '*' | '?' => Err(PatternError::Unsupported {
                pattern: pattern.to_string(),
                construct: format!("{c:?} inside a [...] class"),
            }),
            '[' if chars.get(*k + 1) == Some(&':') => Err(PatternError::Unsupported {
                pattern: pattern.to_string(),
                construct: "a POSIX [:name:] class".to_string(),
            }),
            '\\' => {
                let Some(&next) = chars.get(*k + 1) else {
                    return Err(malformed("unclosed [".to_string()));
                };
                if !next.is_ascii() || next.is_ascii_alphanumeric() {
                    return Err(PatternError::Unsupported {
                        pattern: pattern.to_string(),
                        construct: format!("the escape \\{next} inside a [...] class"),
                    });
                }
                *k += 2;
                Ok(next)
            }
            other => {
                *k += 1;
                Ok(other)
            }
        }
    };
    loop {
        match chars.get(k) {
            None => return Err(malformed("unclosed [".to_string())),
            Some(']') if !ranges.is_empty() => return Ok((Tok::Class { negated, ranges }, k + 1)),
            Some(_) => {}
        }
        let lo = class_char(&mut k)?;
        let mut hi = lo;
        if chars.get(k) == Some(&'-') {
            k += 1;
            hi = class_char(&mut k)?;
            if hi < lo {
                return Err(malformed(format!(
                    "invalid character class range {lo}-{hi}"
                )));
            }
        }
        ranges.push((lo, hi));
    }
}

/// Anchored match of the token list against the whole text (Go's `^...$` with default flags).
fn regex_full_match(toks: &[Tok], text: &[char]) -> bool {
    let width = text.len() + 1;
    // Failed (token, position) pairs: keeps `*`-heavy patterns polynomial.
    let mut failed = vec![false; (toks.len() + 1) * width];
    fn go(toks: &[Tok], text: &[char], t: usize, p: usize, failed: &mut [bool]) -> bool {
        let width = text.len() + 1;
        if failed[t * width + p] {
            return false;
        }
        let ok = match toks.get(t) {
            None => p == text.len(),
            Some(Tok::Lit(c)) => text.get(p) == Some(c) && go(toks, text, t + 1, p + 1, failed),
            Some(Tok::AnyNoSlash) => {
                text.get(p).is_some_and(|c| *c != '/') && go(toks, text, t + 1, p + 1, failed)
            }
            Some(Tok::Class { negated, ranges }) => {
                text.get(p)
                    .is_some_and(|c| ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated)
                    && go(toks, text, t + 1, p + 1, failed)
            }
            Some(Tok::Begin) => p == 0 && go(toks, text, t + 1, p, failed),
            Some(Tok::StarNoSlash) => {
                let mut j = p;
                loop {
                    if go(toks, text, t + 1, j, failed) {
                        break true;
                    }
                    match text.get(j) {
                        Some(c) if *c != '/' => j += 1,
                        _ => break false,
                    }
                }
            }
            Some(Tok::DotStar) => {
                let mut j = p;
                loop {
                    if go(toks, text, t + 1, j, failed) {
                        break true;
                    }
                    match text.get(j) {
                        Some(c) if *c != '\n' => j += 1,
                        _ => break false,
                    }
                }
            }
            Some(Tok::DirPrefix) => {
                // `(.*/)?`: nothing, or any run without '\n' that ends with '/'.
                go(toks, text, t + 1, p, failed)
                    || (p..text.len())
                        .take_while(|j| text[*j] != '\n')
                        .any(|j| text[j] == '/' && go(toks, text, t + 1, j + 1, failed))
            }
        };
        if !ok {
            failed[t * width + p] = true;
        }
        ok
    }
    go(toks, text, 0, 0, &mut failed)
}

/// Per-pattern results for a directory, reused for its children
/// (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns where later ones win (patternmatcher's `PatternMatcher`).
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compile patterns as patternmatcher's `New` does (trim, `filepath.Clean`, `!`, validate).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut pm = PatternMatcher::default();
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let mut p = go_clean(trimmed);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError::LoneBang);
                }
                exclusion = true;
                pm.exclusions = true;
                p = rest.to_string();
            }
            let kind = compile(&p)?;
            pm.patterns.push(Pattern {
                dir_count: p.split('/').count(),
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(pm)
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// The compiled patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// `MatchesOrParentMatches`: excluded if the path or any of its parent directories matches
    /// the last applicable pattern.
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        let parent = go_dir(file);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            if !hit && parent != "." {
                hit = parent_prefixes(parent).any(|dir| pattern.matches(dir));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// The deprecated `Matches` still used by docker/cli's `TrimBuildFilesFromExcludes` and the
    /// 20.10 daemon: it only tries the parent prefix as deep as the pattern.
    pub fn matches_legacy(&self, file: &str) -> bool {
        let parent = go_dir(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            if !hit && parent != "." && pattern.dir_count <= parent_dirs.len() {
                hit = pattern.matches(&parent_dirs[..pattern.dir_count].join("/"));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// `MatchesUsingParentResults`: like [`Self::matches_or_parent_matches`] but reusing the
    /// parent directory's per-pattern results, as Docker's tar walker does.
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let inherited = &parent.parent_matched;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = inherited.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(file);
                if !hit && inherited.is_empty() {
                    let dir = go_dir(file);
                    if dir != "." {
                        hit = parent_prefixes(dir).any(|d| pattern.matches(d));
                    }
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn parent_prefixes(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(|(i, _)| &dir[..i])
        .chain(std::iter::once(dir))
}

/// Package-level `patternmatcher.Matches` (deprecated variant): clean the path, never match `.`.
pub fn matches_legacy<S: AsRef<str>>(file: &str, patterns: &[S]) -> Result<bool, PatternError> {
    let pm = PatternMatcher::new(patterns)?;
    let file = go_clean(file);
    Ok(file != "." && pm.matches_legacy(&file))
}

/// Package-level `patternmatcher.MatchesOrParentMatches`: clean the path, never match `.`.
pub fn matches_or_parent_matches<S: AsRef<str>>(
    file: &str,
    patterns: &[S],
) -> Result<bool, PatternError> {
    let pm = PatternMatcher::new(patterns)?;
    let file = go_clean(file);
    Ok(file != "." && pm.matches_or_parent_matches(&file))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pm(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    /// patternmatcher's `MatchesUsingParentResults` check: walk the parents first, like a walker.
    fn walk_match(pm: &PatternMatcher, text: &str) -> bool {
        let parent = go_dir(text);
        let mut info = MatchInfo::default();
        if parent != "." {
            for dir in parent_prefixes(parent) {
                info = pm.matches_using_parent_results(dir, &info).1;
            }
        }
        pm.matches_using_parent_results(text, &info).0
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum M {
        Fail,
        Exact,
        Inexact,
    }
    use M::*;

    /// patternmatcher_test.go `TestMatches` (Unix cases).
    const MATCHES: &[(&str, &str, M)] = &[
        ("**", "file", Exact),
        ("**", "file/", Exact),
        ("**/", "file", Exact),
        ("**/", "file/", Exact),
        ("**", "/", Exact),
        ("**/", "/", Exact),
        ("**", "dir/file", Exact),
        ("**/", "dir/file", Exact),
        ("**", "dir/file/", Exact),
        ("**/", "dir/file/", Exact),
        ("**/**", "dir/file", Exact),
        ("**/**", "dir/file/", Exact),
        ("dir/**", "dir/file", Exact),
        ("dir/**", "dir/file/", Exact),
        ("dir/**", "dir/dir2/file", Exact),
        ("dir/**", "dir/dir2/file/", Exact),
        ("**/dir", "dir", Exact),
        ("**/dir", "dir/file", Inexact),
        ("**/dir2/*", "dir/dir2/file", Exact),
        ("**/dir2/*", "dir/dir2/file/", Inexact),
        ("**/dir2/**", "dir/dir2/dir3/file", Exact),
        ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
        ("**file", "file", Exact),
        ("**file", "dir/file", Exact),
        ("**/file", "dir/file", Exact),
        ("**file", "dir/dir/file", Exact),
        ("**/file", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file", Exact),
        ("**/file*", "dir/dir/file.txt", Exact),
        ("**/file*txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt", "dir/dir/file.txt", Exact),
        ("**/file*.txt*", "dir/dir/file.txt", Exact),
        ("**/**/*.txt", "dir/dir/file.txt", Exact),
        ("**/**/*.txt2", "dir/dir/file.txt", Fail),
        ("**/*.txt", "file.txt", Exact),
        ("**/**/*.txt", "file.txt", Exact),
        ("a**/*.txt", "a/file.txt", Exact),
        ("a**/*.txt", "a/dir/file.txt", Exact),
        ("a**/*.txt", "a/dir/dir/file.txt", Exact),
        ("a/*.txt", "a/dir/file.txt", Fail),
        ("a/*.txt", "a/file.txt", Exact),
        ("a/*.txt**", "a/file.txt", Exact),
        ("a[b-d]e", "ae", Fail),
        ("a[b-d]e", "ace", Exact),
        ("a[b-d]e", "aae", Fail),
        ("a[^b-d]e", "aze", Exact),
        (".*", ".foo", Exact),
        (".*", "foo", Fail),
        ("abc.def", "abcdef", Fail),
        ("abc.def", "abc.def", Exact),
        ("abc.def", "abcZdef", Fail),
        ("abc?def", "abcZdef", Exact),
        ("abc?def", "abcdef", Fail),
        ("**/foo/bar", "foo/bar", Exact),
        ("**/foo/bar", "dir/foo/bar", Exact),
        ("**/foo/bar", "dir/dir2/foo/bar", Exact),
        ("abc/**", "abc", Fail),
        ("abc/**", "abc/def", Exact),
        ("abc/**", "abc/def/ghi", Exact),
        ("**/.foo", ".foo", Exact),
        ("**/.foo", "bar.foo", Fail),
        ("a(b)c/def", "a(b)c/def", Exact),
        ("a(b)c/def", "a(b)c/xyz", Fail),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
        ),
        ("a\\\\", "a\\", Exact),
        ("a\\*b", "a*b", Exact),
    ];

    /// patternmatcher_test.go multi-pattern cases.
    const MULTI: &[(&[&str], &str, M)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", Fail),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            Exact,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Fail,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Fail,
        ),
    ];

    #[test]
    fn patternmatcher_single_pattern_table() {
        for (pattern, text, want) in MATCHES {
            let pm = pm(&[pattern]);
            let exact = pm.patterns[0].matches(text);
            assert_eq!(
                exact,
                *want == Exact,
                "exact: pattern={pattern:?} text={text:?}"
            );
            let any = *want != Fail;
            assert_eq!(
                pm.matches_or_parent_matches(text),
                any,
                "or-parent: pattern={pattern:?} text={text:?}"
            );
            assert_eq!(
                walk_match(&pm, text),
                any,
                "walk: pattern={pattern:?} text={text:?}"
            );
            assert_eq!(
                pm.matches_using_parent_results(text, &MatchInfo::default())
                    .0,
                any,
                "no-context: pattern={pattern:?} text={text:?}"
            );
        }
    }

    #[test]
    fn patternmatcher_multi_pattern_table() {
        for (patterns, text, want) in MULTI {
            let pm = pm(patterns);
            let any = *want != Fail;
            assert_eq!(
                pm.matches_or_parent_matches(text),
                any,
                "{patterns:?} {text:?}"
            );
            assert_eq!(walk_match(&pm, text), any, "walk {patterns:?} {text:?}");
        }
    }

    /// Go's filepath.Match table as patternmatcher_test.go runs it through `Matches`.
    #[test]
    fn filepath_match_table() {
        let ok: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, text, want) in ok {
            assert_eq!(
                matches_legacy(text, &[pattern]).unwrap(),
                *want,
                "pattern={pattern:?} text={text:?}"
            );
        }
        let bad = [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ];
        for pattern in bad {
            assert!(
                matches!(
                    PatternMatcher::new(&[pattern]),
                    Err(PatternError::Malformed { .. })
                ),
                "{pattern:?} must be rejected"
            );
        }
    }

    #[test]
    fn compile_kinds_match_patternmatcher() {
        let kind = |p: &str| compile(&go_clean(p)).unwrap();
        assert!(matches!(kind("*"), Kind::Regex(_)));
        assert_eq!(kind("**"), Kind::Suffix(String::new()));
        assert!(matches!(kind("**/**"), Kind::Regex(_)));
        assert_eq!(kind("dir/**"), Kind::Prefix("dir/".into()));
        assert_eq!(kind("**/dir"), Kind::Suffix("/dir".into()));
        assert_eq!(kind("**file"), Kind::Suffix("file".into()));
        assert_eq!(kind("**/foo/bar"), Kind::Suffix("/foo/bar".into()));
        assert_eq!(kind("abc.def"), Kind::Exact);
        assert_eq!(kind("a(b)c/def"), Kind::Exact);
        assert_eq!(kind("a.|)$(}+{bc"), Kind::Exact);
        assert!(matches!(kind("abc?def"), Kind::Regex(_)));
        // `**file` is a plain suffix test in patternmatcher, so it also matches `barfile`.
        assert!(pm(&["**file"]).matches_or_parent_matches("barfile"));
    }

    #[test]
    fn reversed_range_fails_like_go_regexp() {
        // patternmatcher regression test: passes filepath.Match but not regexp compilation.
        assert!(matches!(
            PatternMatcher::new(&["[Local-Only]/"]),
            Err(PatternError::Malformed { .. })
        ));
    }

    #[test]
    fn regexp_quirks_are_rejected_not_guessed() {
        for p in ["a\\d", "[*]", "[?x]", "[[:alpha:]]", "[\\w]", "x\\é"] {
            assert!(
                matches!(
                    PatternMatcher::new(&[p]),
                    Err(PatternError::Unsupported { .. })
                ),
                "{p:?}"
            );
        }
    }

    #[test]
    fn caret_is_literal_in_exact_patterns_and_an_anchor_in_regexps() {
        assert!(pm(&["^foo"]).matches_or_parent_matches("^foo"));
        // With a wildcard the pattern becomes `^^foo[^/]*$`: the caret anchors, so `foo1` matches.
        assert!(pm(&["^foo*"]).matches_or_parent_matches("foo1"));
        assert!(!pm(&["a^b*"]).matches_or_parent_matches("a^b"));
    }

    #[test]
    fn class_matches_slash_like_go_regexp() {
        assert!(pm(&["a[/]b"]).matches_or_parent_matches("a/b"));
        assert!(pm(&["a[^x]b"]).matches_or_parent_matches("a/b"));
        assert!(!pm(&["a?b"]).matches_or_parent_matches("a/b"));
    }

    #[test]
    fn dot_star_stops_at_newline_like_go() {
        assert!(!pm(&["a/**/b*"]).matches_or_parent_matches("a/x\ny/bz"));
        assert!(pm(&["a*"]).matches_or_parent_matches("a\nb"));
    }

    #[test]
    fn exceptions_and_order() {
        assert!(matches_legacy("fileutils.go", &["*"]).unwrap());
        assert!(matches_legacy("fileutils.go", &["*.go"]).unwrap());
        assert!(matches_legacy("fileutils.go", &["!fileutils.go", "*.go"]).unwrap());
        assert!(!matches_legacy("docs/README.md", &["docs", "!docs/README.md"]).unwrap());
        assert!(!matches_legacy("docs/README.md", &["docs/", "!docs/README.md"]).unwrap());
        assert!(!matches_legacy("docs/README.md", &["docs/*", "!docs/README.md"]).unwrap());
        assert!(!matches_legacy("fileutils.go", &["*.go", "!fileutils.go"]).unwrap());
        assert!(!matches_legacy(".", &["*.go"]).unwrap());
        assert!(!matches_legacy("/any/path/there", &[] as &[&str]).unwrap());
        assert_eq!(
            PatternMatcher::new(&["!"]).unwrap_err(),
            PatternError::LoneBang
        );
        assert!(
            PatternMatcher::new(&["docs", "  !docs/README.md"])
                .unwrap()
                .exclusions()
        );
        assert!(
            PatternMatcher::new(&["docs", "!docs/README.md  "])
                .unwrap()
                .exclusions()
        );
        assert_eq!(
            PatternMatcher::new(&["docs", "config", ""])
                .unwrap()
                .patterns()
                .len(),
            2
        );
    }

    #[test]
    fn legacy_matches_only_checks_parent_at_pattern_depth() {
        // `**/c` has two components: the legacy matcher only tries `a/b`, the new one `a/b/c`.
        assert!(!matches_legacy("a/b/c/d", &["**/c"]).unwrap());
        assert!(matches_or_parent_matches("a/b/c/d", &["**/c"]).unwrap());
        assert!(matches_legacy("a/b/c", &["a"]).unwrap());
    }

    #[test]
    fn read_patterns_like_docker_cli() {
        // ignorefile_test.go TestReadAll.
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_patterns(content.as_bytes())
            .unwrap()
            .into_iter()
            .map(|p| p.pattern)
            .collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn read_patterns_bom_crlf_comments_and_clean() {
        let content = b"\xEF\xBB\xBFbom.txt\r\n  # not a comment\r\n#comment\n  spaced.txt  \n./a/../b//c/\n/\n!  /x/./y\n";
        let got = read_patterns(content).unwrap();
        let pats: Vec<&str> = got.iter().map(|p| p.pattern.as_str()).collect();
        assert_eq!(
            pats,
            [
                "bom.txt",
                "# not a comment",
                "spaced.txt",
                "b/c",
                "/",
                "!x/y"
            ]
        );
        assert_eq!(
            got.iter().map(|p| p.line).collect::<Vec<_>>(),
            [1, 2, 4, 5, 6, 7]
        );
    }

    #[test]
    fn go_clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("//a//b/", "/a/b"),
            ("./", "."),
            ("/", "/"),
            ("!../x", "!../x"),
        ] {
            assert_eq!(go_clean(input), want, "{input:?}");
        }
    }
}
