"""Every Channels group name, built here and nowhere else (docs/portal.md).

Channels allows ``^[a-zA-Z0-9._-]{1,99}$``; run ids are integers, so the
names stay well inside that.
"""

import re

_VALID = re.compile(r"^[a-zA-Z0-9._-]{1,99}$")

RUNS_LIST = "runs.list"


def run_group(run_id: int) -> str:
    """The group of the sockets watching one run page."""
    name = f"run.{int(run_id)}"
    assert _VALID.match(name), name
    return name


def runs_list_group() -> str:
    """The group of the sockets watching the runs list (filtered per user by the consumer)."""
    return RUNS_LIST


def user_group(user_id: int) -> str:
    """Every open socket of one user: told to check its access again when it may have changed."""
    name = f"user.{int(user_id)}"
    assert _VALID.match(name), name
    return name


def probe_group(probe_id: int) -> str:
    """A bucket probe's group (docs/operations.md#probe): the probe's "pushed" hop is the
    hand-over of its message to the channel layer; no socket needs to listen."""
    name = f"probe.{int(probe_id)}"
    assert _VALID.match(name), name
    return name
