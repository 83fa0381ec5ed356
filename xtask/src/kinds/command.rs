//! `kind = "command"`: run a program with arguments in the project root.
//!
//! ```toml
//! [tasks.gen]
//! kind = "command"
//! run = ["sh", "-c", "echo hi > out.txt"]   # argv, no shell unless you ask for one
//! creates = "out.txt"                        # optional: output file that must still exist
//! always = false                             # optional: run every time (checks, smoke tests)
//! ```
//! The child gets `XTASK_TASK` and `XTASK_KEY` in its environment.

use std::path::PathBuf;

use anyhow::Context as _;
use xshell::cmd;

use super::{BoxTask, CheckCx, Diagnostic, LoadCx, Outputs, RunCx, Settings, Task, TaskKind};
use crate::target::Target;

/// The `command` kind.
#[derive(Debug)]
pub struct CommandKind;

#[derive(Debug)]
struct CommandTask {
    argv: Vec<String>,
    creates: Option<String>,
    always: bool,
}

impl TaskKind<Target> for CommandKind {
    fn name(&self) -> &'static str {
        "command"
    }

    fn parse(&self, settings: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let argv: Vec<String> = settings.require("run", r#"["program", "arg"]"#)?;
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(settings.error(
                "run",
                format!("`run` of task `{}` is empty", settings.task()),
                r#"give the program and its arguments, e.g. `run = ["make", "all"]`"#,
            ));
        }
        let creates: Option<String> = settings.get("creates")?;
        let always = settings.get("always")?.unwrap_or(false);
        Ok(Box::new(CommandTask {
            argv,
            creates,
            always,
        }))
    }
}

impl Task<Target> for CommandTask {
    fn always_run(&self) -> bool {
        self.always
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> anyhow::Result<bool> {
        Ok(self
            .creates
            .as_ref()
            .is_none_or(|c| cx.session.root.join(c).exists()))
    }

    fn run(&self, cx: &RunCx<'_>) -> anyhow::Result<Outputs> {
        let (program, args) = self.argv.split_first().context("empty `run`")?;
        let program = PathBuf::from(program);
        let cmd = cmd!(cx.sh, "{program} {args...}")
            .env("XTASK_TASK", cx.task)
            .env("XTASK_KEY", cx.key);
        cx.run(cmd).with_context(|| format!("task `{}`", cx.task))?;
        let mut outputs = Outputs::new();
        if let Some(c) = &self.creates {
            anyhow::ensure!(
                cx.session.root.join(c).exists(),
                "task `{}` succeeded but did not create `{c}`; fix its `run` or `creates`",
                cx.task
            );
            outputs.insert("creates".into(), c.clone());
        }
        Ok(outputs)
    }
}
