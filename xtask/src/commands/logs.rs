//! `cargo xtask logs [SERVICE] [--follow]`: the app's own output on the target, every line
//! prefixed with its service; following, until Ctrl-C, across restarts and the containers or
//! pods a deploy replaces. The target layer knows how (`target::logs`); `dev` streams the same.

use xshell::Shell;

use crate::pipeline::Pipeline;
use crate::render::{self, CommandEvent, Renderer};
use crate::target::logs::{LogLine, Request, Service};

/// Options of `cargo xtask logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service whose lines to show (default: every service).
    #[arg(value_enum, value_name = "SERVICE")]
    pub service: Option<Service>,
    /// Keep printing new lines, also of the containers or pods that replace these, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of what runs now (what starts later is shown in full).
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
}

/// What Ctrl-C while following says.
const INTERRUPTED: &str = "interrupted: stopping the logs";

/// Run `cargo xtask logs`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let request = Request {
        services: args
            .service
            .map_or_else(|| Service::ALL.to_vec(), |s| vec![s]),
        follow: args.follow,
        tail: args.tail,
    };
    p.handle_ctrlc(INTERRUPTED);
    let renderer = render::for_run(p.opts.json);
    stream(sh, p, &request, renderer.as_ref())
}

/// Streams the target's logs as `request` asks to `renderer`, as `app_log` events, until they
/// end or (following) until Ctrl-C sets the session's cancel flag.
pub fn stream(
    sh: &Shell,
    p: &Pipeline,
    request: &Request,
    renderer: &dyn Renderer,
) -> anyhow::Result<()> {
    let target = p.target(sh)?;
    let graph = p.graph_for(target)?;
    target.deployment().logs(
        sh,
        &p.declared(&graph),
        request,
        &p.session.cancel,
        &|l: LogLine| {
            renderer.command(CommandEvent::AppLog {
                service: l.service.name(),
                stream: l.stream,
                line: l.line,
            });
        },
    )
}
