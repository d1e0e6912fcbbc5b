"""TensorBoard: the log directory a KFP ``tensorboard`` output names, and how to open it.

The command is offered for copying into a shell, so the directory is quoted
(``shlex.quote``): a pipeline-chosen name like ``logs; curl … | sh`` stays one
argument. Names with control characters (a newline ends a pasted command) are
refused.
"""

from __future__ import annotations

import shlex

from runs.kinds import Viewer
from runs.rendering.base import Output, RenderError

VIEWER = Viewer.TENSORBOARD
MAX_LOGDIR_CHARS = 2000


def output(source: str, *, title: str = "") -> Output:
    logdir = str(source).strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in logdir):
        raise RenderError("The TensorBoard log directory contains a control character; it is not shown.")
    if len(logdir) > MAX_LOGDIR_CHARS:
        raise RenderError(f"The TensorBoard log directory is longer than {MAX_LOGDIR_CHARS} characters.")
    return Output(
        viewer=VIEWER,
        title=title or "TensorBoard",
        payload={
            "logdir": logdir,
            "command": f"tensorboard --logdir {shlex.quote(logdir)}",
        },
    )
