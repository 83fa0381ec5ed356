//! `cargo xtask build`: build every image the target's pipeline declares (tasks of kind
//! `docker-image`), into the target's daemon, in parallel; an image whose tag is present is
//! not rebuilt.

use xshell::Shell;

use crate::engine::RunOptions;
use crate::pipeline::Pipeline;

/// Options of `cargo xtask build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rebuild even when the image's tag is already in the daemon.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask build`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let graph = p.graph_for(p.target(sh)?)?;
    let images = graph.tasks_of_kind("docker-image");
    if images.is_empty() {
        anyhow::bail!(
            "{} declares no task of kind `docker-image` for this target; add one (see xtask/src/kinds/docker_image.rs)",
            p.session.pipeline_file().display()
        );
    }
    let report = p.run(sh, &images, &RunOptions { force: args.force })?;
    if !p.opts.json {
        for name in &images {
            if let Some(tag) = report.outputs.get(name).and_then(|o| o.get("image")) {
                println!("{name}: {tag}");
            }
        }
    }
    Ok(())
}
