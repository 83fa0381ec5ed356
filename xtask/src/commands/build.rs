//! `cargo xtask build`: build every image the pipeline declares (tasks of kind `docker-image`),
//! into the target's daemon, in parallel; an image whose tag is present is not rebuilt.

use xshell::Shell;

use crate::engine::{RunOptions, Session, run_tasks};

/// Options of `cargo xtask build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rebuild even when the image's tag is already in the daemon.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask build`.
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    let graph = crate::engine::load(session)?;
    let images = graph.tasks_of_kind("docker-image");
    if images.is_empty() {
        anyhow::bail!(
            "{} declares no task of kind `docker-image`; add one (see xtask/src/kinds/docker_image.rs)",
            session.pipeline_file().display()
        );
    }
    let report = run_tasks(sh, session, &images, &RunOptions { force: args.force })?;
    if !session.opts.json {
        for name in &images {
            if let Some(tag) = report.outputs.get(name).and_then(|o| o.get("image")) {
                println!("{name}: {tag}");
            }
        }
    }
    Ok(())
}
