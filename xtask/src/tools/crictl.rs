//! `crictl` inside a node container of a kind or k3d cluster, reached with `docker exec` on the
//! local daemon: which image a node's containerd holds under a tag.
//!
//! `crictl inspecti -o json REF` (cri-tools `cmd/crictl/image.go`, v1.20 to HEAD; kind's own
//! `nodeutils.ImageID` asks the same) prints `{"status": {"id": "sha256:…", "repoTags": […]},
//! "info": …}` for one image, and fails with `no such image "REF" present` when the tag is
//! absent. kind's and k3d's nodes ship crictl. The ID is the image config's digest, as
//! `docker image inspect` gives it for an image of the classic image store (with Docker's
//! containerd store the two differ and every load looks needed: kubernetes-sigs/kind#4236).

use anyhow::{Context as _, Result};
use xshell::{Shell, cmd};

use super::capture;

/// What a node holds under a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeImage {
    /// This image ID.
    Id(String),
    /// Nothing, or crictl could not say (its words).
    Absent(String),
}

/// `docker exec NODE crictl inspecti -o json REF`.
pub fn image(sh: &Shell, node: &str, reference: &str) -> Result<NodeImage> {
    let out = capture(
        cmd!(sh, "docker exec {node} crictl inspecti -o json {reference}"),
        "docker exec crictl inspecti",
    )?;
    if !out.success() {
        return Ok(NodeImage::Absent(out.tail(1)));
    }
    parse_inspecti(&out.stdout).map(NodeImage::Id)
}

/// The image ID in `crictl inspecti -o json` output.
pub fn parse_inspecti(stdout: &str) -> Result<String> {
    let doc: serde_json::Value = serde_json::from_str(stdout.trim())
        .context("`crictl inspecti -o json` printed unexpected output")?;
    doc.pointer("/status/id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .context("`crictl inspecti -o json` printed no status.id")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_status_id() {
        let out = r#"{
  "status": {
    "id": "sha256:3c5d1f",
    "repoTags": ["docker.io/library/todo-backend:0123456789ab"],
    "repoDigests": [],
    "size": "1234"
  },
  "info": {}
}"#;
        assert_eq!(parse_inspecti(out).unwrap(), "sha256:3c5d1f");
        assert!(parse_inspecti("{}").is_err());
    }
}
