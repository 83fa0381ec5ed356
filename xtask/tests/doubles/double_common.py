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


def version_tuple(text):
    """(1, 35, 0) of "v1.35.0" (pre-release/build suffixes ignored)."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(x) for x in core.split(".")[:3])


def load_knob(name):
    return load().get("knobs", {}).get(name)
