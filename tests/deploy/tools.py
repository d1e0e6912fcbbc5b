"""The tools tests/deploy runs: the pinned kustomize, the schema module's yaml2json, the
compose CLIs (docs/deploy.md#validation). `make test` installs them first
(deploy/install-deploy-tools.sh); a missing one fails the test, naming the fix."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMA_MODULE = K8S / "schema-test"
COMPOSE_DIR = ROOT / "deploy" / "compose"
BUILDS = ("base", "backing", "overlays/kubeflow", "overlays/seaweedfs")
OVERLAYS = ("overlays/kubeflow", "overlays/seaweedfs")
FIX = "run `bash deploy/install-deploy-tools.sh` (make test does)"


def go_env() -> dict[str, str]:
    """The environment of `go`: modules from the proxy, go.sum as committed."""
    env = dict(os.environ, GOFLAGS="-mod=mod")
    if not shutil.which("go") and Path("/usr/local/go/bin/go").exists():
        env["PATH"] = f"/usr/local/go/bin:{env['PATH']}"
    return env


def run(args: list[str], *, cwd: Path = ROOT, stdin: bytes | None = None, env=None) -> bytes:
    """Runs a tool; its stderr is in the assertion message when it fails."""
    proc = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()[-4000:]}"
    return proc.stdout


@functools.cache
def kustomize() -> str:
    """The pinned kustomize (deploy/k8s/kustomize.sh builds it once into .local/bin)."""
    return run(["bash", str(K8S / "kustomize.sh")]).decode().strip()


@functools.cache
def yaml2json() -> str:
    """The schema module's yaml2json, built once per session into a private directory
    (.local is shared by checkouts whose sources may differ; the project has no YAML library)."""
    out = Path(tempfile.mkdtemp(prefix="pipelens-yaml2json-")) / "yaml2json"
    run(["go", "build", "-o", str(out), "./cmd/yaml2json"], cwd=SCHEMA_MODULE, env=go_env())
    return str(out)


def to_json(stream: bytes) -> list[dict]:
    return json.loads(run([yaml2json()], stdin=stream))


@functools.cache
def build(path: str) -> tuple[dict, ...]:
    """The objects `kustomize build deploy/k8s/<path>` prints."""
    return tuple(to_json(run([kustomize(), "build", str(K8S / path)])))


# What a process of the image would see: the settings module loaded in a clean
# environment holding only the given variables (no PIPELENS_DEVELOPMENT), reporting
# the settings the deployment files mean to set.
_SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "TRUSTED_PROXY_COUNT": s.TRUSTED_PROXY_COUNT,
    "WEBAPP_ORIGIN": s.WEBAPP_ORIGIN,
    "DATABASE_HOST": s.DATABASES["default"]["HOST"],
    "OBJECT_STORES": {
        a: {k: v for k, v in store.items() if k != "secret_key"} for a, store in s.OBJECT_STORES.items()
    },
    "KAFKA_BOOTSTRAP_SERVERS": s.KAFKA_BOOTSTRAP_SERVERS,
    "SEAWEEDFS_KAFKA_TOPIC": s.SEAWEEDFS_KAFKA_TOPIC,
    "MINIO_KAFKA_TOPIC": s.MINIO_KAFKA_TOPIC,
    "MINIO_NOTIFY_ARN": s.MINIO_NOTIFY_ARN,
    "RECIPES_ENABLED": s.RECIPES_ENABLED,
}))
"""


def settings_with(env: dict[str, str]) -> dict:
    """The settings a process started with exactly ``env`` gets (ImproperlyConfigured fails)."""
    clean = {"PATH": os.environ["PATH"], **env}
    # The pod's emptyDir (the compose file's tmpfs) for the metrics files: prometheus-client
    # opens it at import, so it must exist.
    clean["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pipelens-metrics-")
    out = run([str(ROOT / ".venv" / "bin" / "python"), "-c", _SETTINGS_PROBE], env=clean)
    return json.loads(out.decode().strip().splitlines()[-1])
