"""TEST DOUBLE support shared by the minikube/kubectl/helm doubles. Not the real tools."""
import fcntl
import json
import os
import sys

STATE_DIR = os.environ.get("XTASK_DOUBLE_STATE")


def die(msg, code=1):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(code)


if not STATE_DIR:
    die("TEST DOUBLE: XTASK_DOUBLE_STATE is not set", 97)

STATE_FILE = os.path.join(STATE_DIR, "state.json")
LOCK_FILE = os.path.join(STATE_DIR, "state.lock")


def default_state():
    return {
        "minikube": {
            "version": "v1.33.1",
            "profiles": {
                "minikube": {
                    "Host": "Running", "Kubelet": "Running", "APIServer": "Running",
                    "Kubeconfig": "Configured", "driver": "docker", "runtime": "docker",
                    "cpus": 2, "memory": 4096, "ip": "192.168.49.2",
                }
            },
            "images": [],
        },
        "kube": {"current_context": "minikube", "contexts": {"minikube": {"reachable": True}}},
        "helm_version": None,
        "namespaces": {"default": {"labels": {}}, "kube-system": {"labels": {}}},
        "secrets": {},
        "releases": {},
        "pods": {},
        "events": [],
        "knobs": {"fail": {}, "wait_seconds": 2.0, "docker_host": "unix:///var/run/docker.sock"},
    }


class Locked:
    """Serializes doubles running in parallel (the pipeline runs tasks concurrently)."""

    def __enter__(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.fd = open(LOCK_FILE, "w")
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """Lets the other doubles in early, before a call that keeps running (port-forward)."""
        if not self.fd.closed:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.fd.close()


def load():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except FileNotFoundError:
        return default_state()


def save(state):
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, STATE_FILE)


def read_stdin():
    if sys.stdin is None or sys.stdin.isatty():
        return b""
    try:
        return sys.stdin.buffer.read()
    except (OSError, ValueError):
        return b""


def record(tool, argv, stdin):
    entry = {
        "tool": tool,
        "argv": argv,
        "stdin": len(stdin) > 0,
        "stdin_len": len(stdin),
        "docker_env": {k: v for k, v in os.environ.items()
                       if k.startswith("DOCKER_") or k == "MINIKUBE_ACTIVE_DOCKERD"},
    }
    with open(os.path.join(STATE_DIR, "calls.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def docker_image_exists(ref):
    """Asks the REAL docker daemon (the one docker-env points at)."""
    import subprocess
    env = dict(os.environ)
    env["DOCKER_HOST"] = load_knob("docker_host") or "unix:///var/run/docker.sock"
    r = subprocess.run(["docker", "image", "inspect", ref], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
    return r.returncode == 0


def full_ref(ref):
    """How crictl names an image: `x:t` is `docker.io/library/x:t`."""
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    first = ref.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


def node_has_image(state, ctx, ref):
    """Whether the node of kube context `ctx` can start `ref` without a pull: a Minikube profile
    that does not run Docker has the images loaded into its store (`minikube image load`),
    any other node uses the REAL docker daemon."""
    profile = state["minikube"]["profiles"].get(ctx or "")
    if profile is not None and profile.get("runtime", "docker") != "docker":
        return full_ref(ref) in state["minikube"].get("node_images", {}) or pullable(ref)
    return docker_image_exists(ref)


def pullable(ref):
    """Whether a node could pull `ref` from its registry (`postgres:15-bookworm`): the REAL
    local daemon has it and the pipeline did not build it (no `app.kubernetes.io/part-of`
    label: the test machines hold base images loaded from tarballs, without repo digests)."""
    import subprocess
    r = subprocess.run(["docker", "image", "inspect", "--format",
                        '{{index .Config.Labels "app.kubernetes.io/part-of"}}', ref],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() in ("", "<no value>")


def version_tuple(text):
    """(1, 35, 0) of "v1.35.0" (pre-release/build suffixes ignored)."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(x) for x in core.split(".")[:3])


def load_knob(name):
    return load().get("knobs", {}).get(name)
