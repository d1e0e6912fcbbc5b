"""deploy/compose: the single-host stack (docs/deploy.md#single-host). The images cannot be
pulled here, so the file is checked as the tools read it: Debian's docker-compose
validates it against the Compose schema (`config`), podman-compose plans `up` from it
(`--dry-run`), and the resolved file must hold every role with a health check, the
one-shot migration before them, and no port published beyond 127.0.0.1."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess

import pytest

from tests.deploy.tools import COMPOSE_DIR, FIX, ROOT, run, settings_with, to_json

pytestmark = pytest.mark.integration

COMPOSE = COMPOSE_DIR / "compose.yaml"
ROLES = {"web", "webapp", "consume", "worker", "sandbox-worker"}
BACKING = {"postgres", "redis", "kafka", "minio"}


def _env():
    # The example env file stands in for the operator's pipelens.env.
    return dict(os.environ, PIPELENS_ENV_FILE="pipelens.env.example")


def _tool(name):
    path = shutil.which(name)
    assert path, f"{name} is missing: {FIX}"
    return path


def _config():
    """The file as docker-compose resolves it (anchors merged, variables substituted)."""
    out = run([_tool("docker-compose"), "-f", str(COMPOSE), "config"], cwd=ROOT, env=_env())
    (doc,) = to_json(out)
    return doc


def test_compose_file_passes_config_validation():
    run([_tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, env=_env())


def test_compose_config_refuses_a_broken_file(tmp_path):
    # The validation can fail: a misspelt health-check key is refused.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("retries: 20", "retrys: 20", 1))
    (tmp_path / "pipelens.env.example").write_text((COMPOSE_DIR / "pipelens.env.example").read_text())
    proc = subprocess.run(
        [_tool("docker-compose"), "-f", str(broken), "config", "-q"], capture_output=True, env=_env()
    )
    assert proc.returncode != 0 and b"retrys" in proc.stderr


def test_podman_compose_plans_every_service():
    out = run(
        [_tool("podman-compose"), "--dry-run", "-p", "pipelens", "-f", str(COMPOSE), "up", "-d"],
        cwd=ROOT,
        env=_env(),
    ).decode()
    for service in ROLES | BACKING | {"migrate"}:
        assert f"--name=pipelens_{service}_1" in out, service


def test_every_role_and_service_is_there_with_a_health_check():
    services = _config()["services"]
    assert set(services) == ROLES | BACKING | {"migrate"}
    for name in ROLES:
        svc = services[name]
        assert svc["command"] == [name]
        assert svc["image"] == "localhost/pipelens:latest"
        assert svc["healthcheck"]["test"][0] == "CMD-SHELL", name
        assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        for backing in ("redis", "kafka", "minio"):
            assert svc["depends_on"][backing] == {"condition": "service_healthy"}, name
    for name in BACKING:
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL", name
        assert services[name].get("volumes"), name  # data survives the container
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_the_webapp_origin_fetches_its_documents_from_the_portal_service():
    # It has no database or store access of its own (vizsite/internal.py); "web" is the
    # portal's service name on the compose network, 8000 its port there.
    services = _config()["services"]
    assert services["webapp"]["environment"]["WEBAPP_PORTAL_URL"] == "http://web:8000"


def test_nothing_is_published_beyond_loopback():
    published = {}
    for name, svc in _config()["services"].items():
        for port in svc.get("ports", []):
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            assert spec.startswith("127.0.0.1:"), (name, port)
            published.setdefault(name, []).append(spec)
    assert set(published) == {"web", "webapp", "minio"}


def _env_example() -> dict[str, str]:
    lines = (COMPOSE_DIR / "pipelens.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_env_example_sets_what_production_settings_require():
    # vizsite/settings/production.py refuses to start without these (read from its source:
    # importing it without them raises).
    source = (ROOT / "vizsite" / "settings" / "production.py").read_text()
    tree = ast.parse(source)
    (required,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_REQUIRED"
    ]
    env = _env_example()
    assert env["DJANGO_SETTINGS_MODULE"] == "vizsite.settings.production"
    assert "PIPELENS_DEVELOPMENT" not in env
    for name in required:
        assert env.get(name), name
    # One password, two places: the postgres container and DATABASE_URL.
    assert f":{env['POSTGRES_PASSWORD']}@postgres:5432/" in env["DATABASE_URL"]
    assert env["MINIO_SECRET_KEY"] == env["MINIO_ROOT_PASSWORD"]
    assert env["MINIO_NOTIFY_KAFKA_TOPIC_PIPELENS"] == env["MINIO_KAFKA_TOPIC"]


def test_every_env_example_variable_is_documented():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in _env_example():
        assert f"`{name}`" in documented, name


def test_production_settings_start_with_the_env_example():
    # The image's processes load vizsite.settings.production with this file alone.
    got = settings_with(_env_example())
    assert got["DEBUG"] is False
    assert got["ALLOWED_HOSTS"] == ["127.0.0.1"]
    assert got["SECURE_SSL_REDIRECT"] is False and got["TRUSTED_PROXY_COUNT"] == 0
    assert got["DATABASE_HOST"] == "postgres"
    assert got["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert got["OBJECT_STORES"] == {
        "default": {"endpoint": "minio:9000", "access_key": "pipelens", "secure": False, "kind": "minio"}
    }
    # MinIO's target PIPELENS is the ARN buckets are wired to, on the topic it publishes to.
    assert got["MINIO_NOTIFY_ARN"] == "arn:minio:sqs::PIPELENS:kafka"
    assert got["MINIO_KAFKA_TOPIC"] == _env_example()["MINIO_NOTIFY_KAFKA_TOPIC_PIPELENS"]
    assert got["RECIPES_ENABLED"] is True
