"""The bubblewrap command line of one sandboxed recipe run (docs/recipes.md#sandbox).

The child sees: /usr read-only (Debian's Python and shared libraries), the
sandbox virtualenv read-only at /venv, its input directory read-only at
/input (the artifact's bytes, the recipe source, the harness), a private
size-bounded tmpfs at /tmp (its only writable place), a fresh /proc of its
own PID namespace and a minimal /dev. Nothing else: not the project tree,
not .local/, not any home directory, not /etc, not /run (service sockets).
Every namespace is new (network: loopback only; PID; IPC; UTS; user), the
environment is empty but for HOME, PATH and MPLBACKEND, and the child dies
with its parent.

Directories are bound by file descriptor (``--ro-bind-fd``): bwrap runs as
an unprivileged user that may not be able to walk the path to them (a
checkout in a mode-700 home), and an fd names exactly the directory the
runner opened.
"""

from __future__ import annotations

import os
import shutil

VENV_IN_SANDBOX = "/venv"
INPUT_IN_SANDBOX = "/input"
TMP_IN_SANDBOX = "/tmp"
HARNESS_NAME = "harness.py"
RESULT_FD = 3  # the harness writes its JSON result to this inherited pipe


def bwrap_path() -> str | None:
    """bwrap from PATH, or Debian's /usr/bin/bwrap (a worker's PATH may be a virtualenv's)."""
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap",) if os.access(p, os.X_OK)), None)


def bwrap_command(*, bwrap: str, venv_fd: int, input_fd: int, tmp_bytes: int, result_limit: int) -> list[str]:
    """argv of bwrap running the harness; ``venv_fd`` and ``input_fd`` are open directories
    the caller passes to the child (``pass_fds``), as is the result pipe (fd ``RESULT_FD``)."""
    return [
        bwrap,
        "--unshare-all",  # user, ipc, pid, net (loopback only), uts, cgroup
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into a terminal
        "--clearenv",
        "--setenv", "HOME", TMP_IN_SANDBOX,
        "--setenv", "PATH", f"{VENV_IN_SANDBOX}/bin:/usr/bin",
        "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin",
        "--ro-bind-fd", str(venv_fd), VENV_IN_SANDBOX,
        "--ro-bind-fd", str(input_fd), INPUT_IN_SANDBOX,
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(tmp_bytes),
        "--tmpfs", TMP_IN_SANDBOX,
        "--chdir", TMP_IN_SANDBOX,
        "--remount-ro", "/",
        f"{VENV_IN_SANDBOX}/bin/python",
        "-I",  # isolated: no PYTHON* variables, no user site, no cwd on sys.path
        "-B",
        f"{INPUT_IN_SANDBOX}/{HARNESS_NAME}",
        str(RESULT_FD),
        str(result_limit),
    ]  # fmt: skip


def weak_command(*, python: str, input_dir: str, result_limit: int) -> list[str]:
    """The weaker mode (SANDBOX_ALLOW_WEAK, only where namespaces are unavailable): the
    harness under the same rlimits, user and empty environment, but sharing the host's
    file system, network and PID namespace."""
    return [python, "-I", "-B", f"{input_dir}/{HARNESS_NAME}", str(RESULT_FD), str(result_limit), input_dir]
