//! `cargo xtask down`: tear the target's deployment down and forget its recorded state, keeping
//! the database. Docker: our containers and network (found by label); Minikube: the Helm
//! release, our Secret, and the namespace if we created it and it holds no data. The database's
//! storage (the Docker volume; the release's PersistentVolumeClaims, which `helm uninstall`
//! leaves behind) is kept and named, so the next `deploy` finds every user and task, unless
//! `--volumes` says to delete it. The builder, shared by every deployment on the daemon, stays
//! (only this deployment's binaries in it go); `--compile-cache` removes it and its volumes.
//! `--images` also removes our images.
//! Idempotent: on nothing, or twice in a row, it succeeds.

use xshell::Shell;

use crate::engine::Target as _;
use crate::engine::state::{self, Lock};
use crate::pipeline::Pipeline;
use crate::target::Data;

/// Options of `cargo xtask down`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove the images the pipeline built from the target's daemon.
    #[arg(long)]
    pub images: bool,
    /// Also remove the builder (`--builder`) and its volumes (cargo registry, compiled target
    /// directory, sources), once no compile uses it: the next build of every deployment that
    /// shares it compiles from scratch.
    #[arg(long)]
    pub compile_cache: bool,
    /// Also delete the database's storage (Docker volume, Kubernetes PersistentVolumeClaims):
    /// every user and task is lost.
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

/// Run `cargo xtask down`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let target = p.target(sh)?;
    let dir = p.session.state_dir(target);
    let _lock = Lock::acquire(&dir, &target.id(), p.session.no_wait)?;
    let graph = p.graph_for(target)?;
    let data = if args.volumes {
        Data::Delete
    } else {
        Data::Keep
    };
    let mut done = Vec::new();
    if args.compile_cache {
        // First: the teardown then finds no builder to say it keeps.
        done.push(target.deployment().remove_builder(sh)?);
    }
    done.extend(
        target
            .deployment()
            .teardown(sh, &p.declared(&graph), data)?,
    );
    if args.images {
        done.extend(
            target
                .deployment()
                .remove_images(sh, &p.image_repositories(&graph))?,
        );
    }
    state::forget(&dir)?;
    done.push(format!(
        "recorded state of target `{}` forgotten",
        target.id()
    ));
    for line in done {
        if p.opts.json {
            println!("{}", serde_json::json!({"event": "down", "done": line}));
        } else {
            println!("{line}");
        }
    }
    Ok(())
}
