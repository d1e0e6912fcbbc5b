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


def _clean_environment() -> dict[str, str]:
    """The environment without any setting or secret the suite itself runs with."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in SECRETS and not k.startswith(("DJANGO_", "MINIO_", "PIPELENS_"))
    }


def manage(
    *args: str, env: dict[str, str], settings_module: str | None = "vizsite.settings.production"
) -> subprocess.CompletedProcess:
    module = {"DJANGO_SETTINGS_MODULE": settings_module} if settings_module else {}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**_clean_environment(), **module, **env},
        timeout=120,
    )


def test_production_refuses_to_start_without_its_secrets():
    result = manage("check", env={k: v for k, v in SECRETS.items() if k != "DJANGO_SECRET_KEY"})
    assert result.returncode != 0
    assert "ImproperlyConfigured: Missing required environment variables: DJANGO_SECRET_KEY" in result.stderr


CREDENTIALS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")


def test_only_the_webapp_and_sandbox_worker_roles_start_without_credentials():
    without = {k: v for k, v in SECRETS.items() if k not in CREDENTIALS}
    for role in ("webapp", "sandbox-worker"):
        assert manage("check", env={**without, "PIPELENS_ROLE": role}).returncode == 0, role
    for role in ("web", "consume", "worker", "migrate", ""):
        result = manage("check", env={**without, "PIPELENS_ROLE": role})
        assert result.returncode != 0, role
        assert "Missing required environment variables: DJANGO_SECRET_KEY, DATABASE_URL" in result.stderr


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_the_development_flag():
    result = manage("check", env={**SECRETS, "PIPELENS_DEVELOPMENT": "1"})
    assert result.returncode != 0 and "unset it in production" in result.stderr


def test_without_a_settings_module_nothing_runs_with_the_development_key_or_debug():
    """A process started without DJANGO_SETTINGS_MODULE falls back to base settings,
    which fail closed: no published key, no tracebacks (issue 8, finding 4)."""
    from vizsite.settings.base import DEVELOPMENT_SECRET_KEY

    bare = manage("check", env={}, settings_module=None)
    assert bare.returncode != 0 and "DJANGO_SECRET_KEY is not set" in bare.stderr
    published = manage("check", env={"DJANGO_SECRET_KEY": DEVELOPMENT_SECRET_KEY}, settings_module=None)
    assert published.returncode != 0 and "published development key" in published.stderr
    debug = manage("check", env={**SECRETS, "DJANGO_DEBUG": "true"}, settings_module=None)
    assert debug.returncode != 0 and "needs PIPELENS_DEVELOPMENT=1" in debug.stderr
    # With a real secret and no flag it runs, and DEBUG is off.
    ok = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        env=SECRETS,
        settings_module=None,
    )
    assert ok.returncode == 0 and ok.stdout.strip().splitlines()[-1] == "False", ok.stderr


def test_the_asgi_server_refuses_to_start_without_settings():
    """daphne imports vizsite.asgi; without a settings module or secrets it must not serve."""
    result = subprocess.run(
        [sys.executable, "-c", "import vizsite.asgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_clean_environment(),
        timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr
