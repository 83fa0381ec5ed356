//! Command-line definitions: global options shared by every command, one subcommand per module.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::commands;
use crate::image_registry::{Address, Registry};
use crate::target::{self, Choice};

/// `cargo xtask`: the project's pipeline as a content-hashed task graph.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (placed before or after the subcommand).
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Where to deploy: a Minikube cluster, plain Docker containers, the kube context named
    /// with `--context`, or `auto` (Minikube when installed, else Docker).
    #[arg(long, global = true, env = "XTASK_TARGET", value_enum, default_value_t = Choice::Auto)]
    pub target: Choice,
    /// Minikube profile (Minikube target).
    #[arg(long, global = true, default_value = "minikube")]
    pub profile: String,
    /// Kubernetes namespace (Minikube and kube targets); on the Docker target, the prefix of the
    /// container, network and volume names (`<namespace>-docker-...`).
    #[arg(long, global = true, default_value = "todo-app")]
    pub namespace: String,
    /// Local port the frontend is published on (Docker target).
    #[arg(long, global = true, default_value_t = 3000)]
    pub port: u16,
    /// The kube context to deploy to (kube target; required there: the current context is
    /// never used).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Deploy to `--context NAME` although it does not look like a local cluster (kube target;
    /// repeat the context's name). `allow-contexts` in `xtask/targets.toml` allows it for the
    /// project.
    #[arg(long, global = true, value_name = "NAME")]
    pub allow_context: Option<String>,
    /// Run at most N tasks at once (default: the number of cores).
    #[arg(short = 'j', long, global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON event per line instead of progress output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Fail at once instead of waiting when another run holds the target's lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Pull every image's base images before keying it (like `docker build --pull`), so a
    /// re-published base, such as a security fix, is built on.
    #[arg(long, global = true)]
    pub pull: bool,
    /// The Cargo profile the binaries are built with: `release` (what `deploy` ships) or
    /// `dev` (fast incremental builds for the inner loop). Part of the keys: switching never
    /// reuses the other profile's binaries or images. Default: `dev` for `cargo xtask dev`,
    /// else the pipeline's (`release`).
    #[arg(
        long,
        global = true,
        env = "XTASK_BUILD_PROFILE",
        value_enum,
        value_name = "PROFILE"
    )]
    pub build_profile: Option<crate::builder::Profile>,
    /// The builder container that compiles the binaries on the target's Docker daemon (also
    /// the prefix of its volumes). Deployments naming the same builder share its compile
    /// cache, one compile at a time; another name starts from an empty one.
    #[arg(long, global = true, env = "XTASK_BUILDER", value_name = "NAME",
          default_value = crate::builder::DEFAULT_NAME, value_parser = crate::builder::parse_name)]
    pub builder: String,
    /// Push images to this registry (HOST[:PORT]/PATH, e.g. `ghcr.io/acme` or
    /// `127.0.0.1:5000/test`), deploy them by digest, and use it as the build cache: an image
    /// already there is not built. Credentials: XTASK_REGISTRY_USERNAME and
    /// XTASK_REGISTRY_PASSWORD, else Docker's (`docker login`).
    #[arg(long, global = true, env = "XTASK_REGISTRY", value_name = "HOST[:PORT]/PATH",
          value_parser = Address::parse)]
    pub registry: Option<Address>,
    /// Do not ask the registry whether an image exists before building it (no Registry HTTP
    /// API call at all): build and push over its tag.
    #[arg(long, global = true, env = "XTASK_NO_REGISTRY_CACHE")]
    pub no_registry_cache: bool,
    /// Talk plain HTTP to a `--registry` that is not on this machine (Docker must list it in
    /// its `insecure-registries` too); this machine's registries always get plain HTTP.
    #[arg(long, global = true, env = "XTASK_REGISTRY_INSECURE")]
    pub registry_insecure: bool,
    /// Project root (default: the workspace `cargo` runs this xtask in). Used by tests.
    #[arg(long, global = true, hide = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl GlobalOpts {
    /// What they say about the target.
    pub fn target_options(&self) -> target::Options {
        target::Options {
            target: self.target,
            profile: self.profile.clone(),
            namespace: self.namespace.clone(),
            port: self.port,
            context: self.context.clone(),
            allow_context: self.allow_context.clone(),
            builder: self.builder.clone(),
            registry: self.registry.clone().map(|address| {
                Arc::new(Registry::new(
                    address,
                    !self.no_registry_cache,
                    self.registry_insecure,
                ))
            }),
        }
    }
}

/// The subcommands; each one is a module in `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every task with `run` or `fresh` and the reason.
    Plan(Lazy<commands::plan::Args>),
    /// Print the task graph as DOT or Mermaid.
    Graph(Lazy<commands::graph::Args>),
    /// Run tasks with their dependencies.
    Run(Lazy<commands::run::Args>),
    /// Forget recorded results of the target.
    Clean(Lazy<commands::clean::Args>),
    /// The project's one test command: fmt check, clippy, tests.
    Test(Lazy<commands::test::Args>),
    /// Benchmark hashing and no-op planning against sha256sum and git status.
    Bench(Lazy<commands::bench::Args>),
    /// Verify the environment and print a table of tools and fixes.
    Doctor(Lazy<commands::doctor::Args>),
    /// Build every image the pipeline declares.
    Build(Lazy<commands::build::Args>),
    /// Create or update the app's secrets.
    Secrets(Lazy<commands::secrets::Args>),
    /// Doctor, build, secrets, deploy, smoke test.
    Deploy(Lazy<commands::deploy::Args>),
    /// Smoke test the live deployment.
    Smoke(Lazy<commands::smoke::Args>),
    /// Tear the deployment down, keeping the database unless `--volumes`.
    Down(Lazy<commands::down::Args>),
    /// Show what is deployed against what the tree would build now.
    Status(Lazy<commands::status::Args>),
    /// Print the app's logs, each line prefixed with its service; `--follow` keeps going.
    Logs(Lazy<commands::logs::Args>),
    /// Deploy, then redeploy what each save changes, with the app's logs, until Ctrl-C.
    Dev(Lazy<commands::dev::Args>),
}

impl Command {
    /// The build profile it uses when `--build-profile` is not given, if not the pipeline's:
    /// the inner loop compiles with the fast incremental one.
    pub fn default_build_profile(&self) -> Option<crate::builder::Profile> {
        matches!(self, Command::Dev(_)).then_some(crate::builder::Profile::Dev)
    }
}

/// A subcommand's options, declared to clap only when that subcommand is the one invoked
/// (`Command::defer`): `cargo xtask plan` does not build every other command's arguments
/// first, which was most of clap's share of a no-op plan's start-up.
#[derive(Debug, Clone)]
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(keep_about::<T, false>)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(keep_about::<T, true>)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

/// `T`'s arguments, added late, keeping the help the subcommand's variant gave it: the `Args`
/// struct's own doc comment would otherwise replace it, as it now comes second.
fn keep_about<T: Args, const UPDATE: bool>(cmd: clap::Command) -> clap::Command {
    let (about, long_about) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
    let mut cmd = if UPDATE {
        T::augment_args_for_update(cmd)
    } else {
        T::augment_args(cmd)
    };
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_cli_is_well_formed_with_every_subcommand_built() {
        // Builds every deferred subcommand and runs clap's own consistency checks.
        Cli::command().debug_assert();
    }

    #[test]
    fn a_deferred_subcommand_keeps_its_variant_s_help_and_parses() {
        let mut cmd = Cli::command();
        cmd.build();
        let plan = cmd.find_subcommand_mut("plan").expect("plan");
        plan.build();
        assert_eq!(
            plan.get_about().map(ToString::to_string).as_deref(),
            Some("Print every task with `run` or `fresh` and the reason")
        );
        let cli = Cli::try_parse_from(["xtask", "plan", "--force", "backend-image", "-j", "3"])
            .expect("parses");
        let Command::Plan(args) = cli.command else {
            panic!("not plan: {:?}", cli.command);
        };
        assert!(args.force);
        assert_eq!(args.tasks, ["backend-image"]);
        // A global option after the subcommand still reaches the global options.
        assert_eq!(cli.global.jobs, Some(3));
    }
}
