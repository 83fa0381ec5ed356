"""TEST DOUBLE support for the kind and k3d doubles (not the real tools): their cluster nodes are
REAL containers on the local Docker daemon, as kind's and k3d's are, named as those tools name
them and labelled `xtask-double-node=<cluster>`. Each holds a stand-in `crictl` (a shell script,
`CRICTL` below) that answers `crictl inspecti -o json REF` from the images "imported" into the
node: one JSON file per reference under /var/lib/xtask-double-images. The pipeline asks the node
with a real `docker exec NODE crictl ...`; the doubles' loads write those files."""
import json
import subprocess
import sys

NODE_IMAGE = "debian:bookworm-slim"
IMAGES_DIR = "/var/lib/xtask-double-images"

# `crictl inspecti -o json REF` (cri-tools cmd/crictl/image.go): the image's status as indented
# JSON, or `no such image "REF" present` (logrus fatal on stderr), exit 1. References normalize
# as containerd's do: `x:t` is `docker.io/library/x:t`.
CRICTL = r"""#!/bin/sh
# TEST DOUBLE of crictl inside a kind/k3d node (installed by the kind and k3d doubles).
if [ "$1" != inspecti ]; then echo "TEST DOUBLE crictl: unsupported call: $*" >&2; exit 99; fi
if [ "$2" != -o ] || [ "$3" != json ] || [ $# -ne 4 ]; then
  echo "TEST DOUBLE crictl: the pipeline asks for \`crictl inspecti -o json REF\`" >&2; exit 98
fi
ref=$4
case "$ref" in */*) ;; *) ref="library/$ref" ;; esac
first=${ref%%/*}
case "$first" in *.*|*:*|localhost) ;; *) ref="docker.io/$ref" ;; esac
file="/var/lib/xtask-double-images/$(printf '%s' "$ref" | tr '/:@' '___')"
if [ -f "$file" ]; then cat "$file"; exit 0; fi
echo "time=\"2026-01-01T00:00:00Z\" level=fatal msg=\"no such image \\\"$4\\\" present\"" >&2
exit 1
"""


def docker(*args, stdin=None, check=True):
    r = subprocess.run(["docker", *args], input=stdin, capture_output=True)
    if check and r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace"))
        sys.exit(1)
    return r


def normalize(ref):
    """containerd's normalized name of a docker reference."""
    if "/" not in ref:
        ref = "library/" + ref
    first = ref.split("/", 1)[0]
    if not ("." in first or ":" in first or first == "localhost"):
        ref = "docker.io/" + ref
    return ref


def local_image_id(ref):
    """The REAL local daemon's ID of `ref`, or None."""
    r = docker("image", "inspect", "-f", "{{.Id}}", ref, check=False)
    return r.stdout.decode().strip() if r.returncode == 0 else None


def create_node(cluster, name):
    """A running node container with the stand-in crictl."""
    docker("run", "-d", "--name", name, "--label", f"xtask-double-node={cluster}",
           NODE_IMAGE, "sleep", "infinity")
    docker("exec", "-i", name, "sh", "-c",
           f"mkdir -p {IMAGES_DIR} && cat > /usr/local/bin/crictl && chmod +x /usr/local/bin/crictl",
           stdin=CRICTL.encode())


def delete_nodes(cluster):
    r = docker("ps", "-aq", "--filter", f"label=xtask-double-node={cluster}")
    ids = r.stdout.decode().split()
    if ids:
        docker("rm", "-f", *ids)
    return ids


def node_image_id(node, ref):
    """The ID the node holds under `ref` (through the stand-in crictl), or None."""
    r = docker("exec", node, "crictl", "inspecti", "-o", "json", ref, check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["status"]["id"]


def put_image(node, ref, image_id):
    """What importing the image into the node's containerd leaves: the reference -> the ID."""
    name = normalize(ref)
    status = {"status": {"id": image_id, "repoTags": [name], "repoDigests": [], "size": "0",
                         "uid": None, "username": "", "spec": None, "pinned": False},
              "info": {}}
    key = name.replace("/", "_").replace(":", "_").replace("@", "_")
    docker("exec", "-i", node, "sh", "-c", f"cat > {IMAGES_DIR}/{key}",
           stdin=json.dumps(status, indent=2).encode())
