"""TensorBoard: the log directory a KFP ``tensorboard`` output names, and how to open it."""

from __future__ import annotations

from runs.kinds import Viewer
from runs.rendering.base import Output

VIEWER = Viewer.TENSORBOARD


def output(source: str, *, title: str = "") -> Output:
    logdir = str(source).strip()
    return Output(viewer=VIEWER, title=title or "TensorBoard", payload={
        "logdir": logdir,
        "command": f"tensorboard --logdir {logdir}",
    })
