//! Input patterns: `*`, `?`, `[…]` within a component and `**` across components, compiled
//! once so matching a path during a walk allocates nothing.

/// The leading components of `pattern` that contain no wildcard (`a/b/*.rs` → `a/b`).
pub fn literal_prefix(pattern: &str) -> String {
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        if has_wildcard(part) {
            break;
        }
        parts.push(part);
    }
    parts.join("/").trim_end_matches('/').to_string()
}

fn has_wildcard(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// Whether `path` (relative, `/`-separated) matches `pattern`: `*` and `?` within a component,
/// `[abc]`/`[a-z]`/`[!a]` classes, `**` as a whole component for any number of components.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    Glob::new(pattern).matches(path)
}

/// A pattern split into components once.
#[derive(Debug, Clone)]
pub struct Glob<'a> {
    segs: Vec<&'a str>,
}

impl<'a> Glob<'a> {
    /// Compile `pattern` (a trailing `/` is ignored).
    pub fn new(pattern: &'a str) -> Glob<'a> {
        Glob {
            segs: pattern.trim_end_matches('/').split('/').collect(),
        }
    }

    /// Whether the whole of `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match_segments(&self.segs, Some(path))
    }

    /// Whether some path strictly under directory `dir` could match: false lets a walk skip
    /// `dir` without reading it. Exact for patterns without `**`, conservative with it.
    pub fn may_match_under(&self, dir: &str) -> bool {
        let mut rest = Some(dir);
        for seg in &self.segs {
            let Some(path) = rest else {
                // `dir` is a proper prefix of the pattern's components.
                return true;
            };
            if *seg == "**" {
                return true;
            }
            let (first, tail) = split_first(path);
            if !match_component(seg.as_bytes(), first.as_bytes()) {
                return false;
            }
            rest = tail;
        }
        // Every pattern component is used up by `dir` itself: nothing below can match.
        false
    }
}

fn split_first(path: &str) -> (&str, Option<&str>) {
    match path.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    }
}

/// `path` is the remaining components (`None` when none are left).
fn match_segments(pat: &[&str], path: Option<&str>) -> bool {
    match pat.split_first() {
        None => path.is_none(),
        Some((&"**", rest)) => {
            let mut p = path;
            loop {
                if match_segments(rest, p) {
                    return true;
                }
                match p {
                    Some(s) => p = split_first(s).1,
                    None => return false,
                }
            }
        }
        Some((seg, rest)) => path.is_some_and(|s| {
            let (first, tail) = split_first(s);
            match_component(seg.as_bytes(), first.as_bytes()) && match_segments(rest, tail)
        }),
    }
}

fn match_component(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| match_component(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && match_component(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else {
                return s.first() == Some(&b'[') && match_component(rest, &s[1..]);
            };
            let Some((&c, srest)) = s.split_first() else {
                return false;
            };
            let (negate, class) = match rest[..end].split_first() {
                Some((b'!' | b'^', class)) => (true, class),
                _ => (false, &rest[..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_component(&rest[end + 1..], srest)
        }
        Some((&c, rest)) => s.first() == Some(&c) && match_component(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("a/**", "a/b/c"));
        assert!(glob_match("**/*.rs", "src/main.rs"));
        assert!(glob_match("**/*.rs", "main.rs"));
        assert!(!glob_match("*.rs", "src/main.rs"));
        assert!(glob_match("src/*.rs", "src/main.rs"));
        assert!(glob_match("f?o", "foo"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("a/**/z", "a/z"));
        assert!(glob_match("a/**/z", "a/b/c/z"));
        assert!(!glob_match("a/**/z", "a/b/c/y"));
        assert!(glob_match("a/**", "a"));
        assert!(!glob_match("a/b", "a"));
        assert!(!glob_match("a", "a/b"));
        assert_eq!(literal_prefix("a/b/*.rs"), "a/b");
        assert_eq!(literal_prefix("**/x"), "");
    }

    #[test]
    fn directories_that_cannot_hold_a_match() {
        let g = Glob::new("src/*/x.rs");
        assert!(g.may_match_under("src"));
        assert!(g.may_match_under("src/a"));
        assert!(!g.may_match_under("src/a/b"), "too deep for the pattern");
        assert!(!g.may_match_under("docs"));
        assert!(Glob::new("src/**/x.rs").may_match_under("src/a/b/c"));
        assert!(!Glob::new("src/**").may_match_under("docs"));
        assert!(!Glob::new("*.rs").may_match_under("src"));
    }
}
