//! `cargo xtask plan [TASK…]`: every selected task with `run`, `fresh` or `pending` (decided
//! once the early-cutoff tasks it waits for have run) and the reason.

use std::io::Write as _;

use xshell::Shell;

use crate::engine::{self, Decision};
use crate::pipeline::Pipeline;
use crate::render::Paint;

/// Options of `cargo xtask plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tasks to plan, with their dependencies (default: all).
    pub tasks: Vec<String>,
    /// Plan as if `--force` were given to `run`.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask plan`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let session = &p.session;
    let target = p.target(sh)?;
    let graph = p.graph_for(target)?;
    let selection = graph.select(&args.tasks)?;
    let plan = engine::plan_locked(sh, session, &graph, target, &selection, args.force)?.plan;
    let mut out = std::io::stdout().lock();
    if p.opts.json {
        for t in &plan.tasks {
            let line = serde_json::json!({
                "event": "plan",
                "task": t.name,
                "key": t.key,
                "decision": t.decision.word(),
                "reason": t.decision.reason(),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let paint = Paint(crate::render::color_enabled(&std::io::stdout()));
    let width = plan.tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
    // The decision column fits `fresh`, and `pending` when a task is.
    let column = plan
        .tasks
        .iter()
        .map(|t| t.decision.word().len())
        .fold("fresh".len(), usize::max);
    for t in &plan.tasks {
        let word = format!("{:<column$}", t.decision.word());
        let (word, reason) = match &t.decision {
            Decision::Fresh => (
                paint.dim(&word),
                paint.dim(t.key.as_deref().map_or("", |k| &k[..12])),
            ),
            Decision::Cached { from, .. } => (paint.dim(&word), from.clone()),
            _ => (paint.bold(&word), t.decision.reason()),
        };
        writeln!(out, "{word}  {:<width$}  {reason}", t.name)?;
    }
    Ok(())
}
