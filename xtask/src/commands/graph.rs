//! `cargo xtask graph`: the task graph as Graphviz DOT or Mermaid. With `--target auto` (the
//! default) every task, each marked with its targets when it does not run on all; with a
//! named target, only that target's tasks.

use xshell::Shell;

use crate::pipeline::Pipeline;

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
pub fn run(_sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    // By name: drawing needs no running cluster.
    let graph = match p.opts.target.name() {
        None => p.graph()?,
        Some(target) => p.prune(p.graph()?, target)?,
    };
    print!(
        "{}",
        match args.format {
            Format::Dot => graph.dot(),
            Format::Mermaid => graph.mermaid(),
        }
    );
    Ok(())
}
