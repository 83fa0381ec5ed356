//! Rendering of events: progress bars on a terminal, plain timestamped lines, or JSON lines.

use std::io::IsTerminal;

/// Colors only on a terminal and when `NO_COLOR` is unset or empty.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
