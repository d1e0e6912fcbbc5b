"""KFP v1 ``.tgz`` outputs, read in memory with every member checked (docs/security.md).

Argo archives each output as a gzip tar holding one file. Nothing is ever
written to disk: links, devices and paths that climb out (``..``, absolute)
are refused, as are more than ARCHIVE_MAX_MEMBERS members and any member
whose declared size exceeds ARCHIVE_MAX_MEMBER_BYTES — checked before its
data is read, so a header declaring 10 GB costs nothing.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib

from django.conf import settings

from runs.rendering.base import BytesSource, RenderError, human_bytes


def unpack(data: bytes) -> list[BytesSource]:
    """The regular files of a KFP output archive, in archive order."""
    max_members = settings.ARCHIVE_MAX_MEMBERS
    max_member = settings.ARCHIVE_MAX_MEMBER_BYTES
    files: list[BytesSource] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            count = 0
            while (member := tar.next()) is not None:
                count += 1
                if count > max_members:
                    raise RenderError(f"The archive has more than {max_members} members; "
                                      f"a KFP output holds one file.")
                name = member.name
                if name.startswith("/") or ".." in name.split("/"):
                    raise RenderError(f"The archive member {name!r} has an unsafe path.")
                if member.issym() or member.islnk():
                    raise RenderError(f"The archive member {name!r} is a link; links are not followed.")
                if member.isdev() or member.isfifo():
                    raise RenderError(f"The archive member {name!r} is a device or pipe.")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise RenderError(f"The archive member {name!r} is not a regular file.")
                if member.size > max_member:
                    raise RenderError(f"The archive member {name!r} declares {human_bytes(member.size)}, "
                                      f"more than the {human_bytes(max_member)} limit.")
                total += member.size
                if total > max_member:
                    raise RenderError(f"The archive's files add up to more than {human_bytes(max_member)}.")
                handle = tar.extractfile(member)
                content = handle.read(member.size + 1) if handle else b""
                if len(content) != member.size:
                    raise RenderError(f"The archive member {name!r} is truncated.")
                files.append(BytesSource(posixpath.normpath(name).lstrip("./") or name, content))
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise RenderError(f"Not a readable tar archive: {exc}") from exc
    if not files:
        raise RenderError("The archive holds no file.")
    return files
