"""Images: a thumbnail (Pillow, JPEG draft mode, EXIF orientation) in the portal bucket.

Only the formats in IMAGE_FORMATS are ever decoded (``Image.open(formats=...)``):
Pillow recognises dozens from the first bytes, whatever the file is called,
and some decoders are old and rarely audited (EPS hands the file to
Ghostscript). Pixel counts are checked from the header before decoding;
Pillow's decompression-bomb warning is an error here (MAX_IMAGE_PIXELS).
"""

from __future__ import annotations

import io
import struct
import warnings

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source

VIEWER = Viewer.IMAGE
# Formats served back to browsers as the full view; anything else is thumbnail-only.
SAFE_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}


def thumbnail(
    data: bytes, *, size: int, max_pixels: int, formats: list[str] | None = None
) -> tuple[bytes, dict]:
    """(JPEG or PNG thumbnail bytes, facts about the original); RenderError when refused."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    allowed = [
        f.strip().upper() for f in (settings.IMAGE_FORMATS if formats is None else formats) if f.strip()
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=allowed)
            width, height = im.size
            if width * height > max_pixels:
                raise RenderError(
                    f"The image is {width}×{height} = {width * height:,} pixels, more than "
                    f"the {max_pixels:,} pixel limit (decompression bomb protection)."
                )
            fmt = im.format or "?"
            exif_orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
            if fmt in ("JPEG", "MPO"):  # MPO: cameras' multi-picture JPEG
                # Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding (the largest
                # reduction still >= size): a 24-megapixel photo then costs its
                # entropy decoding (~100 ms for 7 MB) instead of a full decode.
                im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)
            im.thumbnail(
                (size, size),
                Image.Resampling.LANCZOS if fmt not in ("JPEG", "MPO") else Image.Resampling.BILINEAR,
            )
            has_alpha = im.mode in ("RGBA", "LA", "P") and (im.mode != "P" or "transparency" in im.info)
            out = io.BytesIO()
            if has_alpha:
                im.convert("RGBA").save(out, "PNG", optimize=False)
            else:
                im.convert("RGB").save(out, "JPEG", quality=85)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise RenderError(f"The image was refused as a decompression bomb: {exc}") from exc
        except UnidentifiedImageError as exc:
            found = _format_of(data)
            if found and found not in allowed:
                raise RenderError(
                    f"This is a {found} image; only {', '.join(allowed)} images are decoded (IMAGE_FORMATS)."
                ) from exc
            raise RenderError(
                f"Not an image in one of the formats that are decoded ({', '.join(allowed)}; IMAGE_FORMATS)."
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise RenderError(f"The image is damaged: {exc}") from exc
    return out.getvalue(), {
        "width": width,
        "height": height,
        "format": fmt,
        "exif_orientation": exif_orientation,
        "thumb_content_type": "image/png" if has_alpha else "image/jpeg",
        "thumb_width": im.width,
        "thumb_height": im.height,
        "full_view": fmt in SAFE_FORMATS,
        "content_type": SAFE_FORMATS.get(fmt, ""),
    }


def _format_of(data: bytes) -> str:
    """The format Pillow would identify (for the reason only; nothing is decoded)."""
    Image.init()
    head = data[:64]
    for fmt, (_factory, accept) in Image.OPEN.items():
        try:
            if accept and accept(head):
                return fmt
        except (IndexError, ValueError, TypeError, struct.error):  # an accept() that wants more bytes
            continue
    return ""


def render(source: Source, ctx: Context) -> list[Output]:
    data = source.read_all(settings.IMAGE_MAX_BYTES, "The image")
    thumb, facts = thumbnail(data, size=settings.THUMBNAIL_SIZE, max_pixels=settings.MAX_IMAGE_PIXELS)
    key = ctx.store(
        "thumb" + (".png" if facts["thumb_content_type"] == "image/png" else ".jpg"),
        thumb,
        facts["thumb_content_type"],
    )
    payload = {**facts, "source": source.location()}
    if not payload["source"]:
        # An image inside an archive: keep a copy addressable for the full view.
        payload["source"] = ctx.store_source(source) if ctx.store_source else {}
    return [Output(viewer=VIEWER, title=source.name, payload=payload, preview_key=key)]
