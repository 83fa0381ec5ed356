//! Typed errors the user can act on, rendered in one place and mapped to exit codes.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

/// One problem in a declaration file, pointing at the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, with names in backticks.
    pub message: String,
    /// Byte range in the file the caret points at (None: the whole file).
    pub span: Option<Range<usize>>,
    /// How to fix it.
    pub fix: String,
}

impl Diagnostic {
    /// A diagnostic at `span` with a fix.
    pub fn new(
        message: impl Into<String>,
        span: Option<Range<usize>>,
        fix: impl Into<String>,
    ) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            fix: fix.into(),
        }
    }
}

/// Errors with a specific rendering or exit code; anything else travels as a plain `anyhow::Error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline declaration is invalid; nothing ran.
    #[error("invalid pipeline declaration `{}`", file.display())]
    Declaration {
        /// The file as shown to the user (relative to the project root).
        file: PathBuf,
        /// Its text, to quote the offending line.
        text: String,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// The command line asks for something that cannot be done.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// Another run holds the target's lock and `--no-wait` was given.
    #[error("another xtask run holds the lock of target `{target}` (`{}`)", lock.display())]
    Locked {
        /// The target's identity.
        target: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// Some tasks failed; the summary was already printed.
    #[error("{} task(s) failed: {}", failed.len(), failed.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "))]
    TasksFailed {
        /// Names of the failed tasks.
        failed: Vec<String>,
    },
    /// The user pressed Ctrl-C; children were terminated and state left valid.
    #[error("interrupted; completed tasks are recorded, the rest will run next time")]
    Interrupted,
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Declaration { .. } | Error::Usage { .. } => 2,
            Error::Locked { .. } => 3,
            Error::TasksFailed { .. } => 1,
            Error::Interrupted => 130,
        }
    }
}

/// The process exit code for `err`: its [`Error::exit_code`], else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Error>().map_or(1, Error::exit_code)
}

/// The text shown for `err` (the single place errors are formatted).
pub fn render(err: &anyhow::Error, color: bool) -> String {
    let label = if color {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    let mut out = String::new();
    match err.downcast_ref::<Error>() {
        Some(Error::Declaration {
            file,
            text,
            diagnostics,
        }) => {
            let name = file.display().to_string();
            for diag in diagnostics {
                out.push_str(&render_diagnostic(label, &name, text, diag));
            }
            let n = diagnostics.len();
            let _ = writeln!(
                out,
                "{label}: `{name}` has {n} problem{}; nothing was run",
                if n == 1 { "" } else { "s" }
            );
        }
        Some(Error::Usage { message, fix }) => {
            let _ = writeln!(out, "{label}: {message}\n  = fix: {fix}");
        }
        Some(Error::Locked { .. }) => {
            let _ = writeln!(
                out,
                "{label}: {err}\n  = fix: wait for it to finish, or drop `--no-wait` to wait"
            );
        }
        Some(Error::TasksFailed { .. } | Error::Interrupted) => {
            let _ = writeln!(out, "{label}: {err}");
        }
        None => {
            let _ = writeln!(out, "{label}: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(out, "  caused by: {cause}");
            }
        }
    }
    out
}

/// `file:line:col` with the offending line quoted and a caret under the span, then the fix.
pub fn render_diagnostic(label: &str, file: &str, text: &str, diag: &Diagnostic) -> String {
    let mut out = format!("{label}: {}\n", diag.message);
    if let Some(span) = &diag.span {
        let (line_no, col, line) = locate(text, span.start);
        let width = span.end.saturating_sub(span.start).max(1);
        // Only underline up to the end of the first line of the span.
        let width = width.min(line.len().saturating_sub(col - 1).max(1));
        let gutter = " ".repeat(line_no.to_string().len());
        let _ = writeln!(out, "{gutter}--> {file}:{line_no}:{col}");
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(out, "{line_no} | {line}");
        let pad: String = line
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{gutter} | {pad}{}", "^".repeat(width));
        let _ = writeln!(out, "{gutter} = fix: {}", diag.fix);
    } else {
        let _ = writeln!(out, "  --> {file}");
        let _ = writeln!(out, "  = fix: {}", diag.fix);
    }
    out
}

/// 1-based line, 1-based column (in characters) and the line's text at byte `offset`.
fn locate(text: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line_no = text[..line_start].matches('\n').count() + 1;
    let col = text[line_start..offset].chars().count() + 1;
    (
        line_no,
        col,
        text[line_start..line_end].trim_end_matches('\r'),
    )
}
