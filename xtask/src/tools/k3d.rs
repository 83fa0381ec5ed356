//! The `k3d` CLI: a cluster's node containers and importing images into them.
//!
//! Checked in k3d's source (v5, `cmd/node/nodeList.go`, `cmd/util/listings.go`,
//! `pkg/types/types.go`, `cmd/image/imageImport.go`): `node list -o json` prints every node of
//! every cluster as a JSON array of `{"name", "role", "runtimeLabels": {"k3d.cluster": C, ...}}`
//! (roles `server`, `agent`, `loadbalancer`, `registry`); `image import IMAGE --cluster C` saves
//! the image from the local daemon and imports it into the cluster's nodes, exit 1 on failure.

use anyhow::{Context as _, Result};
use serde::Deserialize;
use xshell::{Shell, cmd};

use super::checked;

#[derive(Deserialize)]
struct RawNode {
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default, rename = "runtimeLabels")]
    runtime_labels: std::collections::BTreeMap<String, String>,
}

/// The node containers of k3d cluster `cluster` that run pods (servers and agents).
pub fn nodes(sh: &Shell, cluster: &str) -> Result<Vec<String>> {
    let out = checked(cmd!(sh, "k3d node list -o json"), "k3d node list")?;
    parse_nodes(&out.stdout, cluster)
}

/// The servers and agents of `cluster` in `k3d node list -o json` output.
pub fn parse_nodes(stdout: &str, cluster: &str) -> Result<Vec<String>> {
    let nodes: Vec<RawNode> = serde_json::from_str(stdout.trim())
        .context("`k3d node list -o json` printed unexpected output")?;
    Ok(nodes
        .into_iter()
        .filter(|n| n.runtime_labels.get("k3d.cluster").map(String::as_str) == Some(cluster))
        .filter(|n| matches!(n.role.as_str(), "server" | "agent"))
        // Docker's container names may carry their leading `/`.
        .map(|n| n.name.trim_start_matches('/').to_owned())
        .collect())
}

/// The argv after `k3d` that imports `image` into every node of `cluster`.
pub fn import_args(image: &str, cluster: &str) -> Vec<String> {
    ["image", "import", image, "--cluster", cluster]
        .map(str::to_owned)
        .to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_agents_of_the_cluster_only() {
        let json = r#"[
          {"name":"k3d-dev-agent-0","role":"agent","runtimeLabels":{"k3d.cluster":"dev"}},
          {"name":"/k3d-dev-server-0","role":"server","runtimeLabels":{"k3d.cluster":"dev"}},
          {"name":"k3d-dev-serverlb","role":"loadbalancer","runtimeLabels":{"k3d.cluster":"dev"}},
          {"name":"k3d-other-server-0","role":"server","runtimeLabels":{"k3d.cluster":"other"}}]"#;
        assert_eq!(
            parse_nodes(json, "dev").unwrap(),
            ["k3d-dev-agent-0", "k3d-dev-server-0"]
        );
        assert!(parse_nodes("no json", "dev").is_err());
    }
}
