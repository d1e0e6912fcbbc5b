"""Every WebSocket message type, declared once (docs/portal.md#messages).

Server → browser:
- ``hello``: sent on connect with the run's current ``seq`` (run sockets) so
  that the page notices changes made between its render and the connect;
- ``hello`` on the compare socket (``CompareHello``): ``seqs``, every compared run's seq;
- ``run.changed``: one per run per committed batch: the run's summary, its
  new ``seq`` and the current state of the artifacts that changed (or, for a
  batch larger than ``BROADCAST_MAX_ARTIFACTS``, ``partial: true`` and no
  artifacts: the page refetches the run's state);
- ``runs.changed``: the same run summary for the runs list;
- ``probe.arrived``: a bucket probe's event was stored (docs/operations.md#probe), sent to
  the probe's own group; its hand-over to the channel layer is the probe's last hop;
- ``pong``: answer to a ``ping``;
- ``error``: a frame the server could not use (the socket stays open).

Browser → server: only ``{"type": "ping"}``.

Channel layers deliver at most once, so ``seq`` is the contract: a browser
that sees a gap refetches ``/api/runs/<id>/state?since=<seq>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson


def _fields(message) -> dict[str, Any]:
    # A shallow dict: dataclasses.asdict deep-copies every nested artifact
    # state, which cost more than the whole database batch it describes.
    return {f.name: getattr(message, f.name) for f in fields(message)}


class MessageError(ValueError):
    """A frame from a browser that is not a message we accept."""


@dataclass(frozen=True, slots=True)
class Hello:
    type: ClassVar[str] = "hello"
    seq: int | None = None  # the run's seq; None on the runs-list socket

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class CompareHello:
    """Sent on connect by the compare socket: every compared run's current ``seq``
    (keys are run ids as strings, as JSON has them)."""

    type: ClassVar[str] = "hello"
    seqs: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class ProbeArrived:
    type: ClassVar[str] = "probe.arrived"
    probe_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class RunChanged:
    type: ClassVar[str] = "run.changed"
    run_id: int
    seq: int
    run: dict[str, Any]
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    # True when the batch changed more artifacts than one push carries
    # (BROADCAST_MAX_ARTIFACTS): ``artifacts`` is empty and the page refetches.
    partial: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class RunsChanged:
    type: ClassVar[str] = "runs.changed"
    run: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class Pong:
    type: ClassVar[str] = "pong"

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **_fields(self)}


@dataclass(frozen=True, slots=True)
class Ping:
    type: ClassVar[str] = "ping"


CLIENT_MESSAGES = {Ping.type: Ping}
MAX_CLIENT_FRAME = 1024  # a ping is ~16 bytes; anything bigger is not ours


def parse_client_frame(text: str | None) -> Ping:
    """Parse a browser frame; raises MessageError with a readable reason."""
    if text is None:
        raise MessageError("binary frames are not accepted; send JSON text")
    if len(text) > MAX_CLIENT_FRAME:
        raise MessageError(f"frame too large ({len(text)} > {MAX_CLIENT_FRAME} characters)")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MessageError("frame is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MessageError('frame must be a JSON object with a "type"')
    kind = CLIENT_MESSAGES.get(data["type"])
    if kind is None:
        raise MessageError(
            f"unknown message type {data['type'][:40]!r}; expected one of {sorted(CLIENT_MESSAGES)}"
        )
    return kind()
