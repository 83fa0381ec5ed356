//! Which selected tasks run and why.

use xshell::Shell;

use super::{Graph, Session};
use crate::target::Target;

/// Whether a task runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its recorded result is current.
    Fresh,
    /// It must run, for this reason.
    Run(String),
}

/// One selected task in the plan.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    /// Graph index.
    pub index: usize,
    /// Task name.
    pub name: String,
    /// Its key (64 hex).
    pub key: String,
    /// Run or fresh.
    pub decision: Decision,
}

/// The selected tasks in topological order with their decisions.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Tasks, dependencies first.
    pub tasks: Vec<PlannedTask>,
}

/// Compute keys and decisions for `selection` (graph indices in topological order).
pub fn plan_tasks(
    _sh: &Shell,
    _session: &Session,
    _graph: &Graph,
    _target: &Target,
    _selection: &[usize],
    _force: bool,
) -> anyhow::Result<Plan> {
    anyhow::bail!("the planner is being written")
}
