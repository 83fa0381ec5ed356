//! The `kind` CLI: a cluster's node containers and loading images into them.
//!
//! Checked in kind's source (`pkg/cmd/kind/get/nodes/nodes.go`,
//! `pkg/cmd/kind/load/docker-image/docker-image.go`, v0.20 to HEAD): `get nodes --name C` prints
//! one container name a line (every node, the HA load balancer `C-external-load-balancer`
//! included; none: a note on stderr, exit 0); `load docker-image IMAGE --name C` saves the image
//! from the local daemon and imports it into the nodes whose containerd lacks that ID.

use anyhow::Result;
use xshell::{Shell, cmd};

use super::checked;

/// The suffix of kind's load-balancer container, which runs no pods.
const LOAD_BALANCER_SUFFIX: &str = "-external-load-balancer";

/// The node containers of kind cluster `cluster` that run pods.
pub fn nodes(sh: &Shell, cluster: &str) -> Result<Vec<String>> {
    let out = checked(
        cmd!(sh, "kind get nodes --name {cluster}"),
        "kind get nodes",
    )?;
    Ok(parse_nodes(&out.stdout))
}

/// The names in `kind get nodes` output, without the load balancer.
pub fn parse_nodes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with(LOAD_BALANCER_SUFFIX))
        .map(str::to_owned)
        .collect()
}

/// The argv after `kind` that loads `image` into every node of `cluster`.
pub fn load_args(image: &str, cluster: &str) -> Vec<String> {
    ["load", "docker-image", image, "--name", cluster]
        .map(str::to_owned)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_balancer_runs_no_pods() {
        assert_eq!(
            parse_nodes(
                "dev-control-plane\ndev-control-plane2\ndev-external-load-balancer\ndev-worker\n"
            ),
            ["dev-control-plane", "dev-control-plane2", "dev-worker"]
        );
        assert!(parse_nodes("").is_empty());
    }
}
