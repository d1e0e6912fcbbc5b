"""Run one recipe in the sandbox with limits; collect its bounded output (docs/recipes.md).

``run_recipe`` writes the artifact's bytes, the recipe source, ``meta.json``
and the harness into a fresh temporary directory, starts bwrap (bwrap.py)
as the unprivileged ``SANDBOX_UID`` with rlimits on CPU time, address
space, file size, open files and processes, and waits at most the wall-clock
timeout, after which the whole process group is killed (and with it bwrap's
PID namespace: every process the recipe started). stdout and stderr are
kept up to ``log_bytes`` each; past ``flood_bytes`` the run is stopped. The
result pipe is read up to ``result_bytes``; past it the run is stopped.

Every way a run ends is a ``SandboxResult`` with a ``reason`` code and a
sentence for the recipe's author; nothing raises except ``SandboxUnavailable``
(the machine cannot give namespaces and the weaker mode is not allowed).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runs.sandbox.bwrap import HARNESS_NAME, RESULT_FD, bwrap_command, bwrap_path, weak_command

HARNESS = Path(__file__).with_name("harness.py")


class SandboxUnavailable(Exception):
    """No namespaces here (or no bwrap / sandbox venv), and SANDBOX_ALLOW_WEAK is off."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 30.0
    cpu_s: int = 20
    memory_bytes: int = 1024 * 2**20
    file_bytes: int = 64 * 2**20
    tmp_bytes: int = 64 * 2**20
    open_files: int = 64
    processes: int = 32
    log_bytes: int = 32 * 1024
    flood_bytes: int = 4 * 2**20
    result_bytes: int = 8 * 2**20


@dataclass
class SandboxResult:
    """``reason``: ok, timeout, cpu, memory, exception, bad_output, output_flood,
    result_too_large, crashed."""

    reason: str
    message: str = ""
    output: dict | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration_ms: float = 0.0
    mode: str = "bwrap"
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


_probe_cache: dict[tuple, str | None] = {}


def probe(venv: str) -> str | None:
    """None when bwrap with every namespace works here; else why not (cached per process)."""
    key = (venv, bwrap_path())
    if key not in _probe_cache:
        _probe_cache[key] = _probe(venv)
    return _probe_cache[key]


def _probe(venv: str) -> str | None:
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (deploy/local/sandbox.sh installs it)."
    if not Path(venv, "bin", "python").exists():
        return f"The sandbox virtualenv {venv} is missing (make sandbox builds it)."
    result = _run(
        source="def render(path, meta):\n    return '<p>ok</p>'\n",
        data=b"",
        filename="probe",
        meta={},
        venv=venv,
        limits=Limits(wall_s=20),
        weak=False,
    )
    if result.reason != "ok":
        return f"bubblewrap cannot create namespaces here: {result.stderr.strip()[-300:] or result.message}"
    return None


def run_recipe(
    *,
    source: str,
    data: bytes,
    filename: str,
    meta: dict,
    venv: str,
    limits: Limits,
    allow_weak: bool = False,
    uid: int = 65534,
) -> SandboxResult:
    """Run ``source``'s ``render(path, meta)`` on ``data`` in a fresh sandbox."""
    problem = probe(venv)
    if problem is not None:
        if not allow_weak or not Path(venv, "bin", "python").exists():
            raise SandboxUnavailable(problem)
        return _run(
            source=source,
            data=data,
            filename=filename,
            meta=meta,
            venv=venv,
            limits=limits,
            weak=True,
            uid=uid,
        )
    return _run(
        source=source, data=data, filename=filename, meta=meta, venv=venv, limits=limits, weak=False, uid=uid
    )


def _safe_name(filename: str) -> str:
    name = os.path.basename(filename.replace("\\", "/")) or "artifact"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:200] or "artifact"


def _run(
    *,
    source: str,
    data: bytes,
    filename: str,
    meta: dict,
    venv: str,
    limits: Limits,
    weak: bool,
    uid: int = 65534,
) -> SandboxResult:
    start = time.monotonic()
    baseline = _processes_of(uid)
    # outer: mode 711 (no listing), ``workdir`` inside it has a random name: the sandbox user
    # can reach it by path (bwrap resolves binds by path as that user), other host users
    # cannot find it.
    outer = tempfile.mkdtemp(prefix="pipelens-sandbox-")
    os.chmod(outer, 0o711)
    workdir = os.path.join(outer, secrets.token_hex(16))
    os.mkdir(workdir)
    opened: list[int] = []
    try:
        name = _safe_name(filename)
        os.mkdir(os.path.join(workdir, "data"))
        Path(workdir, "data", name).write_bytes(data)
        Path(workdir, "recipe.py").write_text(source, encoding="utf-8")
        Path(workdir, "meta.json").write_text(json.dumps({**meta, "file": name}), encoding="utf-8")
        shutil.copyfile(HARNESS, os.path.join(workdir, HARNESS_NAME))
        for root, dirs, files in os.walk(workdir):  # readable by the sandbox user, writable by nobody
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o444)
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o555)
        read_end, write_end = os.pipe()
        opened += [read_end, write_end]
        if weak:
            argv = weak_command(
                python=f"{venv}/bin/python", input_dir=workdir, result_limit=limits.result_bytes
            )
            fds = {RESULT_FD: write_end}
            cwd = workdir
        else:
            venv_fd = os.open(venv, os.O_RDONLY | os.O_DIRECTORY)
            input_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
            opened += [venv_fd, input_fd]
            # Fixed descriptor numbers in the child: 3 result, 4 venv, 5 input.
            fds = {RESULT_FD: write_end, 4: venv_fd, 5: input_fd}
            argv = bwrap_command(
                bwrap=bwrap_path(),
                venv_fd=4,
                input_fd=5,
                tmp_bytes=limits.tmp_bytes,
                result_limit=limits.result_bytes,
            )
            cwd = "/"
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            # bwrap's own environment too: /proc/1/environ inside is bwrap's.
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            close_fds=True,
            pass_fds=tuple(fds),  # the numbers _child_setup puts them at
            start_new_session=True,
            preexec_fn=lambda: _child_setup(fds, limits, uid),
        )
        os.close(write_end)
        opened.remove(write_end)
        result = _collect(proc, read_end, limits)
        _wait_reaped(uid, baseline)
    finally:
        for fd in opened:
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(outer, ignore_errors=True)
    result.duration_ms = round((time.monotonic() - start) * 1000, 1)
    result.mode = "weak" if weak else "bwrap"
    return result


def _child_setup(fds: dict[int, int], limits: Limits, uid: int) -> None:
    """In the forked child before exec: descriptors at fixed numbers, limits, unprivileged user."""
    # Move sources out of the way first, then dup into place (sources may collide with targets).
    temp = {target: os.dup(src) for target, src in fds.items()}
    for target, src in temp.items():
        os.dup2(src, target, inheritable=True)
        os.close(src)
    os.closerange(max(fds) + 1, 65536)
    for name, value in (
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(name)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: SIGXCPU at the soft limit, SIGKILL a second later. Lowering only: no
        # CAP_SYS_RESOURCE needed.
        soft = value
        if name == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or value + 1 <= hard):
            value += 1
        resource.setrlimit(name, (soft, value))
    if os.getuid() == 0:
        # Root ignores RLIMIT_NPROC and could undo the rest: run as the sandbox user.
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def _collect(proc: subprocess.Popen, result_fd: int, limits: Limits) -> SandboxResult:
    deadline = time.monotonic() + limits.wall_s
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr", result_fd: "result"}
    kept = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray()}
    total = {"stdout": 0, "stderr": 0, "result": 0}
    stopped: tuple[str, str] | None = None
    open_fds = set(streams)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            stopped = (
                "timeout",
                f"The recipe ran longer than {limits.wall_s:g} s (wall clock) and was stopped.",
            )
            break
        ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.5))
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            which = streams[fd]
            total[which] += len(chunk)
            cap = limits.result_bytes if which == "result" else limits.log_bytes
            room = cap + 1 - len(kept[which])
            if room > 0:
                kept[which] += chunk[:room]
            if which == "result" and total[which] > limits.result_bytes:
                stopped = (
                    "result_too_large",
                    f"The output is larger than {limits.result_bytes:,} bytes; the run was stopped.",
                )
            elif which != "result" and total["stdout"] + total["stderr"] > limits.flood_bytes:
                stopped = (
                    "output_flood",
                    f"The recipe printed more than {limits.flood_bytes:,} bytes and was stopped.",
                )
        if stopped:
            break
        if proc.poll() is not None and not ready:
            # The main child is gone; what is still open belongs to processes it left behind,
            # which died with the PID namespace. Drain what is buffered, then stop.
            open_fds = {fd for fd in open_fds if select.select([fd], [], [], 0)[0]}
    _kill_group(proc)
    code = proc.wait()
    out = _text(kept["stdout"], total["stdout"], limits.log_bytes)
    err = _text(kept["stderr"], total["stderr"], limits.log_bytes)
    result = SandboxResult(reason="crashed", stdout=out, stderr=err, exit_code=code)
    if stopped:
        result.reason, result.message = stopped
        return result
    return _interpret(result, bytes(kept["result"]), code, limits)


def _processes_of(uid: int) -> int:
    """How many processes ``uid`` has now (from /proc)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass  # exited meanwhile
    return count


def _wait_reaped(uid: int, baseline: int, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the run's processes are gone. RLIMIT_NPROC counts every process
    of the sandbox user, and after a fork bomb some of its processes outlive bwrap for a
    second or two (measured here: 2 for ~2 s, up to the whole limit on a loaded machine, where
    the next run then could not start at all): the next run must not start inside that count."""
    deadline = time.monotonic() + timeout_s
    while _processes_of(uid) > baseline and time.monotonic() < deadline:
        time.sleep(0.02)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _text(data: bytearray, total: int, cap: int) -> str:
    text = bytes(data[:cap]).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if total > cap:
        text += f"\n… [{total - cap:,} more bytes not kept]"
    return text


def _interpret(result: SandboxResult, raw: bytes, code: int, limits: Limits) -> SandboxResult:
    if not raw:
        signum = -code if code < 0 else (code - 128 if code > 128 else 0)
        if signum == signal.SIGXCPU:
            result.reason = "cpu"
            result.message = f"The recipe used more than {limits.cpu_s} s of CPU time and was stopped."
        elif signum in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) or "MemoryError" in result.stderr:
            result.reason = "memory"
            result.message = (
                f"The recipe needed more memory than {limits.memory_bytes // 2**20} MiB "
                f"(or crashed: signal {signum})."
            )
        elif signum == signal.SIGXFSZ:
            result.reason = "file_size"
            result.message = f"The recipe wrote a file larger than {limits.file_bytes:,} bytes."
        else:
            result.reason = "crashed"
            result.message = f"The recipe's process ended without a result (exit status {code})."
        return result
    try:
        body = json.loads(raw)
    except ValueError:
        result.reason, result.message = "bad_output", "The sandbox returned output that is not valid JSON."
        return result
    status = body.get("status") if isinstance(body, dict) else None
    if status == "ok" and isinstance(body.get("output"), dict):
        result.reason, result.output = "ok", body["output"]
    elif status == "exception":
        result.reason = "exception"
        result.message = "The recipe raised an exception."
        result.extra["traceback"] = str(body.get("traceback", ""))[-8000:]
    elif status == "memory":
        result.reason = "memory"
        result.message = f"The recipe needed more memory than {limits.memory_bytes // 2**20} MiB."
    elif status == "left_processes":
        result.reason, result.message = "left_processes", str(body.get("reason", ""))[:2000]
    elif status == "processes":
        result.reason = "processes"
        result.message = (
            f"The recipe tried to run more than {limits.processes} processes and was refused "
            f"({str(body.get('reason', ''))[:200]})."
        )
        result.extra["traceback"] = str(body.get("traceback", ""))[-8000:]
    elif status == "bad_output":
        result.reason, result.message = "bad_output", str(body.get("reason", ""))[:2000]
    else:
        result.reason, result.message = "bad_output", "The sandbox returned a result of an unknown shape."
    return result
