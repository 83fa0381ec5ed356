//! `cargo xtask graph`: the task graph as Graphviz DOT or Mermaid.

use xshell::Shell;

use crate::engine::{self, Session};

/// Output format of the graph.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Graphviz DOT (`cargo xtask graph | dot -Tsvg > graph.svg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
}

/// Options of `cargo xtask graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
}

/// Run `cargo xtask graph`.
pub fn run(_sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    let graph = engine::load(session)?;
    print!(
        "{}",
        match args.format {
            Format::Dot => graph.dot(),
            Format::Mermaid => graph.mermaid(),
        }
    );
    Ok(())
}
