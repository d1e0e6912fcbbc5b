"""The renderer contract: a source to read, outputs to produce (docs/viewers.md).

A renderer is a function ``render(source, ctx) -> list[Output]``. It reads
the object through ``source`` (bounded reads only), returns one or more
outputs, and may store preview objects through ``ctx``. It raises
``RenderError`` with a sentence a user can read when the input is refused;
``StorageUnavailable`` means "try again later" (the task retries).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol


class RenderError(Exception):
    """The input cannot be previewed; the message is shown to the user as is."""


class StorageUnavailable(Exception):
    """Object storage failed (network, 5xx): worth retrying later."""


@dataclass
class Output:
    """One rendition to store: what the viewer partial receives as ``payload``."""

    viewer: str
    title: str = ""
    payload: dict = field(default_factory=dict)
    preview_key: str = ""
    error: str = ""  # set: the rendition is failed with this reason

    @property
    def failed(self) -> bool:
        return bool(self.error)


def failed(viewer: str, title: str, reason: str) -> Output:
    return Output(viewer=viewer, title=title, error=reason)


class Source(Protocol):
    """Bounded, byte-level access to one object (MinIO, or a file held in memory)."""

    name: str  # path below the step, e.g. "metrics/mlpipeline-metrics.json"
    content_type: str
    size: int | None

    def read(self, limit: int, *, offset: int = 0) -> bytes:
        """Up to ``limit`` bytes from ``offset``."""

    def read_all(self, cap: int, what: str) -> bytes:
        """The whole object; RenderError naming ``what`` and the cap if it is larger."""

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """The whole object as a stream of chunks (bounded memory)."""

    def location(self) -> dict:
        """Where page requests re-read it: {"bucket", "key", "etag"}; {} if not addressable."""


class BytesSource:
    """A file held in memory: an archive member, an inline KFP source."""

    def __init__(self, name: str, data: bytes, content_type: str = ""):
        self.name = name
        self.data = data
        self.content_type = content_type
        self.size = len(data)

    def read(self, limit: int, *, offset: int = 0) -> bytes:
        return self.data[offset : offset + limit]

    def read_all(self, cap: int, what: str) -> bytes:
        if len(self.data) > cap:
            raise RenderError(too_large(what, len(self.data), cap))
        return self.data

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        buf = io.BytesIO(self.data)
        while chunk := buf.read(chunk_size):
            yield chunk

    def location(self) -> dict:
        return {}


@dataclass
class Context:
    """What a renderer may do besides reading its source.

    ``store`` puts a preview object in the portal's bucket and returns its
    key; ``fetch`` reads another object a KFP metadata file points at
    (allowed only where the run's viewers may look); ``publish`` stores
    outputs early (a table's first page before its index is built).
    """

    store: Callable[[str, bytes, str], str]
    fetch: Callable[[str], list[Source]] | None = None
    publish: Callable[[list[Output]], None] | None = None
    # Addressable copy of an in-memory source, for paging (tables in archives).
    store_source: Callable[[Source], dict] | None = None
    # A KFP metadata output names an object as its source: (output position, URI, options).
    refer: Callable[[int, str, dict], None] | None = None


def too_large(what: str, size: int, cap: int) -> str:
    return f"{what} is {human_bytes(size)}, more than the {human_bytes(cap)} limit"


def human_bytes(n: float | None) -> str:
    """A byte count for people: "1 byte", "512 bytes", "1.5 KB", "2.0 GB" (1,024-based, one
    decimal rounded half up, number and unit joined by a no-break space; None gives "").

    The portal's one size format in Python: templates use it as the ``human_bytes``
    filter (runs/templatetags/viewers.py), the run page's rows and render errors call
    it, and ``PipelensLive.formatSize`` (runs/static/runs/live.js) matches it.
    """
    if n is None:
        return ""
    if abs(n) < 1024:
        return "1\u00a0byte" if n == 1 else f"{n:.0f}\u00a0bytes"
    value, unit = Decimal(n), "bytes"  # exact; dividing by 1,024 keeps it exact
    for unit in ("KB", "MB", "GB", "TB"):  # noqa: B007 - the unit reached is the one shown
        value /= 1024
        if abs(value) < 1024:
            break
    return f"{value.quantize(Decimal('0.1'), ROUND_HALF_UP)}\u00a0{unit}"


def decode_text(data: bytes) -> tuple[str, bool]:
    """UTF-8 text (BOM stripped) and whether bytes had to be replaced."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="replace"), True


def looks_binary(sample: bytes) -> bool:
    """NUL bytes, or many control bytes, in the first bytes: not a text file."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample[:4096] if b < 9 or 13 < b < 32)
    return control > len(sample[:4096]) * 0.05


def _refuse_constant(what: str):
    def refuse(token: str):
        raise RenderError(f"{what} holds {token}, which is not a finite number.")

    return refuse


def _finite_float(what: str):
    def parse(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise RenderError(f"{what} holds {token[:40]}, which is not a finite number.")
        return value

    return parse


def load_json(text: str | bytes, what: str):
    """``text`` parsed as JSON; RenderError naming ``what`` when it is not valid JSON, is nested
    too deeply, or holds NaN, Infinity or a number too large for a float (PostgreSQL's JSON
    refuses those, and a payload holding one could never be stored).

    Callers read the text with ``read_all(settings.JSON_MAX_BYTES, ...)``: parsed
    objects take up to ~25 times the size of the text.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant(what), parse_float=_finite_float(what))
    except RecursionError as exc:
        raise RenderError(f"{what} is nested too deeply to read.") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int() of thousands of digits
        raise RenderError(f"{what} is not valid JSON: {str(exc)[:200]}") from exc


def finite(value, what: str) -> float:
    """``value`` as a finite float; RenderError naming ``what`` for NaN, infinities and non-numbers."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RenderError(f"{what} is not a number.") from exc
    if not math.isfinite(number):
        raise RenderError(f"{what} is {str(value)[:40]}, which is not a finite number.")
    return number
