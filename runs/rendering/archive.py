"""KFP v1 ``.tgz`` outputs, read in memory with every member checked (docs/security.md).

Argo archives each output as a gzip tar holding one file. Nothing is ever
written to disk: links, devices and paths that climb out (``..``, absolute)
are refused, as are more than ARCHIVE_MAX_MEMBERS members and any member
whose declared size exceeds ARCHIVE_MAX_MEMBER_BYTES — checked before its
data is read, so a header declaring 10 GB costs nothing.

Budgets (docs/security.md): only gzip is read (KFP writes gzip;
bzip2 and xz reach ratios of a million to one); every decompressed byte is
counted by ``BoundedGzipReader``, which refuses to produce more than
ARCHIVE_MAX_UNPACKED_BYTES; GNU long-name and pax headers — whose whole
payload ``tarfile`` reads into memory before any member check can run — are
refused above MAX_EXTENDED_HEADER_BYTES before that read, and so are sparse
members and long chains of extended headers.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib

from django.conf import settings

from runs.rendering.base import BytesSource, RenderError, human_bytes

# A path or a handful of pax records fits in a few hundred bytes; 64 KiB is generous.
MAX_EXTENDED_HEADER_BYTES = 64 * 1024
# Extended headers (long name, long link, pax, pax global) per archive: a few per member.
MAX_EXTENDED_HEADERS = 16
_READ_STEP = 1024 * 1024

_EXTENDED = {
    tarfile.GNUTYPE_LONGNAME: "long-name",
    tarfile.GNUTYPE_LONGLINK: "long-link",
    tarfile.XHDTYPE: "pax",
    tarfile.XGLTYPE: "pax",
    tarfile.SOLARIS_XHDTYPE: "pax",
}


def _compression(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:3] == b"BZh":
        return "bzip2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if data[257:262] == b"ustar":
        return "not compressed"
    return "unknown"


class BoundedGzipReader:
    """A read-only file of the gzip-decompressed ``data`` that never produces more than ``budget``
    bytes in total: the read that would cross it raises RenderError instead.

    ``read(n)`` decompresses at most 1 MiB at a time, so even a header asking
    for gigabytes holds at most ``budget`` bytes before it is refused.
    """

    def __init__(self, data: bytes, *, budget: int):
        self._gz = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
        self.budget = budget
        self.produced = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.budget - self.produced + 1
        parts = []
        while size > 0:
            chunk = self._gz.read(min(size, _READ_STEP))
            if not chunk:
                break
            self.produced += len(chunk)
            if self.produced > self.budget:
                raise RenderError(
                    f"The archive unpacks to more than {human_bytes(self.budget)}; it was refused there."
                )
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._gz.close()


class _CheckedTarInfo(tarfile.TarInfo):
    """Refuses large or numerous extended headers and sparse members *before* tarfile reads them."""

    def _proc_member(self, tar):
        label = _EXTENDED.get(self.type)
        if label:
            if self.size > MAX_EXTENDED_HEADER_BYTES:
                raise RenderError(
                    f"The archive has a {label} header of {human_bytes(self.size)}, more than "
                    f"the {human_bytes(MAX_EXTENDED_HEADER_BYTES)} a file name needs; "
                    f"it was refused before reading it."
                )
            seen = getattr(tar, "_pipelens_extended", 0) + 1
            tar._pipelens_extended = seen
            if seen > MAX_EXTENDED_HEADERS:
                raise RenderError(
                    f"The archive has more than {MAX_EXTENDED_HEADERS} extended headers "
                    f"(long names, pax records); a KFP output has one or two."
                )
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise RenderError("The archive holds a sparse file; sparse files are not read.")
        return super()._proc_member(tar)

    # pax "GNU.sparse" records: version 1.0 reads its map from the member's data, unbounded.
    def _refuse_sparse(self, *args, **kwargs):
        raise RenderError("The archive holds a sparse file; sparse files are not read.")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


def unpack(data: bytes) -> list[BytesSource]:
    """The regular files of a KFP output archive, in archive order."""
    kind = _compression(data)
    if kind != "gzip":
        raise RenderError(
            f"Only gzip-compressed tar archives are read (KFP writes .tgz with gzip); this one is {kind}."
        )
    max_members = settings.ARCHIVE_MAX_MEMBERS
    max_member = settings.ARCHIVE_MAX_MEMBER_BYTES
    reader = BoundedGzipReader(data, budget=settings.ARCHIVE_MAX_UNPACKED_BYTES)
    files: list[BytesSource] = []
    total = 0
    try:
        # "r|": a forward-only stream, so every byte goes through the budgeted reader.
        with tarfile.open(fileobj=reader, mode="r|", tarinfo=_CheckedTarInfo) as tar:
            count = 0
            while (member := tar.next()) is not None:
                count += 1
                if count > max_members:
                    raise RenderError(
                        f"The archive has more than {max_members} members; a KFP output holds one file."
                    )
                name = member.name
                if name.startswith("/") or ".." in name.split("/"):
                    raise RenderError(f"The archive member {name!r} has an unsafe path.")
                if member.issym() or member.islnk():
                    raise RenderError(f"The archive member {name!r} is a link; links are not followed.")
                if member.isdev() or member.isfifo():
                    raise RenderError(f"The archive member {name!r} is a device or pipe.")
                if member.isdir():
                    continue
                if not member.isfile() or member.issparse():
                    raise RenderError(f"The archive member {name!r} is not a regular file.")
                if member.size > max_member:
                    raise RenderError(
                        f"The archive member {name!r} declares {human_bytes(member.size)}, "
                        f"more than the {human_bytes(max_member)} limit."
                    )
                total += member.size
                if total > max_member:
                    raise RenderError(f"The archive's files add up to more than {human_bytes(max_member)}.")
                handle = tar.extractfile(member)
                content = handle.read(member.size + 1) if handle else b""
                if len(content) != member.size:
                    raise RenderError(f"The archive member {name!r} is truncated.")
                files.append(BytesSource(posixpath.normpath(name).lstrip("./") or name, content))
    except RenderError:
        raise
    except RecursionError as exc:
        raise RenderError("Not a readable tar archive: its headers are nested too deeply.") from exc
    except (tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise RenderError(f"Not a readable tar archive: {exc}") from exc
    finally:
        reader.close()
    if not files:
        raise RenderError("The archive holds no file.")
    return files
