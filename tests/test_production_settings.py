"""Production settings refuse to start without their secrets and pass ``check --deploy``."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SECRETS = {
    "DJANGO_SECRET_KEY": "x" * 60 + "-a-long-random-production-secret-key-for-the-check",
    "DATABASE_URL": "postgres://pipelens:pipelens@127.0.0.1:54329/pipelens",
    "REDIS_URL": "redis://127.0.0.1:63799/0",
    "MINIO_ACCESS_KEY": "access",
    "MINIO_SECRET_KEY": "secret",
    "DJANGO_ALLOWED_HOSTS": "pipelens.example.org",
    "WEBAPP_ORIGIN": "https://pipelens-webapps.example.org",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("DJANGO_")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "DJANGO_SETTINGS_MODULE": "vizsite.settings.production", **env},
                          timeout=120)


def test_production_refuses_to_start_without_its_secrets():
    result = manage("check", env={k: v for k, v in SECRETS.items() if k != "DJANGO_SECRET_KEY"})
    assert result.returncode != 0
    assert "ImproperlyConfigured: Missing required environment variables: DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
