"""Hostile recipes against the real sandbox (bubblewrap, rlimits, wall clock): no mocks.

Each recipe attacks without catching anything, so it ends with a reason (an
exception naming what was refused, or a limit); the runner never raises and
the next run works. Needs bwrap and .local/sandbox-venv (`make sandbox`).
"""

import os
import time

import psutil
import pytest
from django.conf import settings

from runs.sandbox.runner import Limits, probe, run_recipe

LIMITS = Limits(wall_s=6, cpu_s=3)
CANARY = "canary-" + os.urandom(6).hex()
SERVICE_PORTS = {
    "PostgreSQL": 54329,
    "Redis": 63799,
    "MinIO": 19000,
    "Kafka": 19092,
    "portal": 8000,
    "web-app origin": 8001,
}


@pytest.fixture(autouse=True)
def _secrets_in_the_environment(monkeypatch):
    """The runner's own process holds secrets; none may reach a recipe."""
    for name in ("DJANGO_SECRET_KEY", "MINIO_SECRET_KEY", "DATABASE_URL", "PIPELENS_CANARY"):
        monkeypatch.setenv(name, os.environ.get(name, "") + CANARY)
    problem = probe(settings.SANDBOX_VENV)
    assert problem is None, f"the sandbox must work on this machine (make sandbox): {problem}"


def run(source: str, data: bytes = b"a,b\n1,2\n", limits: Limits = LIMITS):
    result = run_recipe(
        source=source, data=data, filename="in.csv", meta={}, venv=settings.SANDBOX_VENV, limits=limits
    )
    everything = " ".join(
        [str(result.output), result.stdout, result.stderr, result.message, str(result.extra)]
    )
    assert CANARY not in everything
    assert "pipelens-secret" not in everything  # MinIO's local secret
    return result


def assert_still_serving():
    ok = run("def render(path, meta):\n    return '<p>' + open(path).read() + '</p>'\n")
    assert ok.reason == "ok" and ok.output == {"type": "html", "html": "<p>a,b\n1,2\n</p>"}


def test_a_plain_recipe_runs():
    assert_still_serving()


@pytest.mark.parametrize(
    "name",
    ["DJANGO_SECRET_KEY", "MINIO_SECRET_KEY", "MINIO_ACCESS_KEY", "DATABASE_URL", "PIPELENS_CANARY"],
)
def test_the_environment_holds_no_secrets(name):
    r = run(f"import os\ndef render(path, meta):\n    return os.environ[{name!r}]\n")
    assert r.reason == "exception" and f"KeyError: '{name}'" in r.extra["traceback"]


def test_proc_1_environ_holds_no_secrets():
    source = (
        "def render(path, meta):\n"
        "    env = dict(x.split('=', 1) for x in open('/proc/1/environ').read().split('\\0') if '=' in x)\n"
        "    return env['DJANGO_SECRET_KEY']\n"
    )
    r = run(source)
    assert r.reason == "exception" and "KeyError: 'DJANGO_SECRET_KEY'" in r.extra["traceback"]


@pytest.mark.parametrize(
    "path",
    [
        str(settings.BASE_DIR / "vizsite" / "settings" / "base.py"),
        str(settings.BASE_DIR / ".local" / "minio"),
        str(settings.BASE_DIR / "deploy" / "local" / "common.sh"),
        os.path.expanduser("~/.bashrc"),
        "/etc/passwd",
        "/run/postgresql",
    ],
)
def test_files_outside_the_sandbox_do_not_exist_there(path):
    r = run(f"def render(path, meta):\n    return open({path!r}).read()\n")
    assert r.reason == "exception"
    assert "FileNotFoundError" in r.extra["traceback"] or "IsADirectoryError" in r.extra["traceback"]


@pytest.mark.parametrize("service,port", sorted(SERVICE_PORTS.items()))
def test_local_services_are_unreachable(service, port):
    r = run(
        "import socket\ndef render(path, meta):\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    return 'connected'\n"
    )
    assert r.reason == "exception" and "ConnectionRefusedError" in r.extra["traceback"], service


def test_outside_addresses_cannot_be_resolved():
    r = run(
        "import socket\ndef render(path, meta):\n    return str(socket.getaddrinfo('example.com', 443))\n"
    )
    assert r.reason == "exception" and "gaierror" in r.extra["traceback"]


def test_outside_addresses_cannot_be_reached():
    r = run(
        "import socket\ndef render(path, meta):\n"
        "    socket.create_connection(('1.1.1.1', 443), timeout=2)\n    return 'connected'\n"
    )
    assert r.reason == "exception"
    assert "Network is unreachable" in r.extra["traceback"] or "OSError" in r.extra["traceback"]


@pytest.mark.parametrize("target", ["/x", "/usr/x", "/input/x", "/venv/x", "/input/data/in.csv"])
def test_nothing_outside_its_temporary_directory_is_writable(target):
    r = run(f"def render(path, meta):\n    open({target!r}, 'w').write('x')\n    return 'wrote'\n")
    assert r.reason == "exception"
    assert "Read-only file system" in r.extra["traceback"] or "PermissionError" in r.extra["traceback"]


def test_its_temporary_directory_is_writable_up_to_a_bound():
    ok = run(
        "def render(path, meta):\n    open('/tmp/x', 'w').write('hello')\n    return open('/tmp/x').read()\n"
    )
    assert ok.reason == "ok" and ok.output["html"] == "hello"
    r = run(
        "def render(path, meta):\n    open('/tmp/big', 'wb').write(b'x' * (200 * 2**20))\n    return 'x'\n"
    )
    assert r.reason in ("exception", "file_size", "memory")


def test_a_fork_bomb_is_refused():
    r = run("import os\ndef render(path, meta):\n    while True:\n        os.fork()\n")
    assert r.reason == "processes", (r.reason, r.message)
    assert_still_serving()


def test_allocating_8_gib_fails_with_the_memory_reason():
    r = run("def render(path, meta):\n    x = bytearray(8 * 2**30)\n    return 'x'\n")
    assert r.reason == "memory", (r.reason, r.message)
    assert "MiB" in r.message


def test_an_endless_loop_is_stopped_by_the_cpu_limit():
    t = time.monotonic()
    r = run("def render(path, meta):\n    while True:\n        pass\n")
    assert r.reason in ("cpu", "timeout"), (r.reason, r.message)
    assert time.monotonic() - t < LIMITS.wall_s + 3
    assert_still_serving()


def test_sleeping_forever_is_stopped_by_the_wall_clock():
    t = time.monotonic()
    r = run("import time\ndef render(path, meta):\n    time.sleep(3600)\n", limits=Limits(wall_s=2, cpu_s=3))
    assert r.reason == "timeout" and "wall clock" in r.message
    assert time.monotonic() - t < 5


def test_printing_1_gb_is_stopped_and_the_log_truncated():
    r = run(
        "def render(path, meta):\n    line = 'x' * 1023\n    for _ in range(2**20):\n        print(line)\n"
    )
    assert r.reason == "output_flood", (r.reason, r.message)
    assert len(r.stdout) < LIMITS.log_bytes + 200 and "more bytes not kept" in r.stdout


def test_returning_1_gb_of_html_is_refused():
    r = run("def render(path, meta):\n    return 'x' * 2**30\n")
    assert r.reason in ("memory", "bad_output", "result_too_large"), (r.reason, r.message)
    r = run("def render(path, meta):\n    return 'x' * (100 * 2**20)\n")
    assert r.reason == "bad_output" and "larger than the limit" in r.message
    assert_still_serving()


def test_a_child_left_behind_is_killed_and_named():
    marker = "987.654321"
    r = run(
        "import os\ndef render(path, meta):\n"
        f"    if os.fork() == 0:\n        os.execv('/usr/bin/sleep', ['sleep', {marker!r}])\n"
        "    return 'done'\n"
    )
    assert r.reason == "left_processes", (r.reason, r.message)

    def leftovers():
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if marker in " ".join(p.info["cmdline"] or []):
                    found.append(p.pid)
            except psutil.Error:
                pass
        return found

    deadline = time.monotonic() + 5
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == []


def test_a_bad_output_is_named():
    r = run("def render(path, meta):\n    return 42\n")
    assert r.reason == "bad_output" and "returned int" in r.message
    r = run("x = 1\n")
    assert r.reason == "bad_output" and "no function render" in r.message


def test_an_exception_comes_with_its_traceback_and_output():
    r = run("def render(path, meta):\n    print('hello out')\n    raise RuntimeError('boom')\n")
    assert r.reason == "exception"
    assert "RuntimeError: boom" in r.extra["traceback"] and 'File "recipe.py", line 3' in r.extra["traceback"]
    assert "hello out" in r.stdout
