"""Fixture files, generated: images, CSVs, KFP archives and metadata, hostile inputs.

The metadata outputs follow the examples of the Kubeflow Pipelines v1
"Visualize Results in the Pipelines UI" page, one per viewer type.
"""

import base64
import io
import json
import struct
import tarfile
import zlib

from PIL import Image


def jpeg(width=640, height=480, *, orientation: int | None = None, color=(200, 30, 30)) -> bytes:
    im = Image.new("RGB", (width, height), color)
    # A marker in the top-left corner, to check EXIF orientation is applied.
    im.paste((0, 0, 255), (0, 0, width // 4, height // 4))
    out = io.BytesIO()
    kwargs = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    im.save(out, "JPEG", quality=90, **kwargs)
    return out.getvalue()


def png(width=300, height=200, *, alpha=False) -> bytes:
    im = Image.new(
        "RGBA" if alpha else "RGB", (width, height), (20, 120, 40, 128) if alpha else (20, 120, 40)
    )
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header declares 10 gigapixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def tgz(members: dict[str, bytes]) -> bytes:
    """A gzip tar as Argo/KFP v1 writes outputs: one regular file per output."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1764396000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tgz_symlink() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("data.csv")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    return out.getvalue()


def tgz_declaring(size: int, name="data.csv") -> bytes:
    """A tar header declaring ``size`` bytes with no data behind it."""
    info = tarfile.TarInfo(name)
    info.size = size
    raw = info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024
    return _gzip(raw)


def _gzip(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw)


def tgz_many(n=12) -> bytes:
    return tgz({f"part-{i}.txt": b"x" for i in range(n)})


def csv_text(rows=120) -> bytes:
    lines = ["id,name,score,passed"]
    for i in range(rows):
        lines.append(f'{i},"item, {i}",{i * 0.5:.1f},{"true" if i % 2 else "false"}')
    return ("\n".join(lines) + "\n").encode()


RAGGED_CSV = b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n\x00\x01\x02garbage\xff\xfe,x,y\n10,11,12\n"

CONFUSION_LABELS = ["cat", "dog", "bird"]
CONFUSION_CSV = (
    "\n".join(
        f"{t},{p},{(9 if t == p else 1) + i}"
        for i, t in enumerate(CONFUSION_LABELS)
        for p in CONFUSION_LABELS
    )
    + "\n"
)
ROC_CSV = (
    "\n".join(f"{x / 100:.2f},{min(1.0, (x / 100) ** 0.3):.4f},{1 - x / 100:.2f}" for x in range(101)) + "\n"
)
TABLE_CSV = "tulip,0.91,true\nrose,0.42,false\ndaisy,0.77,true\n"
MARKDOWN = "# Inline Markdown\n[A link](https://www.kubeflow.org/)\n\n<script>window.pwned=1</script>\n"
WEB_APP_HTML = "<html><body><h1>Hello, World!</h1></body></html>"


def ui_metadata(*, bucket: str, run_prefix: str) -> dict:
    """All six viewer types, as in the Kubeflow docs' examples; ROC and table read from MinIO."""
    return {
        "version": 1,
        "outputs": [
            {
                "type": "confusion_matrix",
                "format": "csv",
                "schema": [
                    {"name": "target", "type": "CATEGORY"},
                    {"name": "predicted", "type": "CATEGORY"},
                    {"name": "count", "type": "NUMBER"},
                ],
                "source": CONFUSION_CSV,
                "storage": "inline",
                "labels": CONFUSION_LABELS,
            },
            {
                "type": "roc",
                "format": "csv",
                "schema": [
                    {"name": "fpr", "type": "NUMBER"},
                    {"name": "tpr", "type": "NUMBER"},
                    {"name": "thresholds", "type": "NUMBER"},
                ],
                "source": f"minio://{bucket}/{run_prefix}/evaluate/roc.csv",
            },
            {
                "type": "table",
                "storage": "minio",
                "format": "csv",
                "header": ["flower", "score", "correct"],
                "source": f"minio://{bucket}/{run_prefix}/predict/part-*.csv",
            },
            {"type": "markdown", "storage": "inline", "source": MARKDOWN},
            {"type": "tensorboard", "source": f"s3://{bucket}/{run_prefix}/train/logs"},
            {"type": "web-app", "storage": "inline", "source": WEB_APP_HTML},
        ],
    }


def metrics_json() -> bytes:
    return json.dumps(
        {
            "metrics": [
                {"name": "accuracy-score", "numberValue": 0.9137, "format": "PERCENTAGE"},
                {"name": "roc-auc-score", "numberValue": 0.95, "format": "RAW"},
            ]
        }
    ).encode()


# --- hostile archives (docs/security.md) -------------------------------------


def _raw_header(name: str, size: int, kind: bytes) -> bytes:
    return tarfile.TarInfo._create_header(
        {
            "name": name,
            "mode": 0o644,
            "uid": 0,
            "gid": 0,
            "size": size,
            "mtime": 0,
            "type": kind,
            "linkname": "",
            "uname": "",
            "gname": "",
            "devmajor": 0,
            "devminor": 0,
        },
        tarfile.GNU_FORMAT,
        "utf-8",
        "strict",
    )


def tar_extended_bomb(
    declared: int, *, kind: bytes = tarfile.GNUTYPE_LONGNAME, compressor=None, fill: bytes = b"\0"
) -> bytes:
    """A tar whose first header is a GNU long-name (or pax, kind=b"x") header declaring
    declared bytes, followed by that many bytes of fill: tarfile reads the whole
    payload into memory before it looks at the member. Compressed in 1 MiB steps with
    compressor (default gzip), so generating it never holds the payload."""
    comp = compressor or zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(_raw_header("././@LongLink", declared, kind))]
    block = fill * (1024 * 1024)
    left = -(-declared // 512) * 512
    while left > 0:
        step = min(left, len(block))
        out.append(comp.compress(block[:step]))
        left -= step
    out.append(comp.compress(_raw_header("data.csv", 4, tarfile.REGTYPE) + b"a\n1\n" + b"\0" * 508))
    out.append(comp.flush())
    return b"".join(out)


# 696 bytes of bzip2: a GNU long-name header declaring 800 MiB and 800 MiB of zero bytes
# (tar_extended_bomb's first part, bz2.BZ2Compressor(9)). Today's ``r:*`` reading took one
# process to 1.7 GiB on it (issue 8). Kept as bytes: compressing 800 MiB takes seconds.
BZ2_LONGNAME_BOMB = base64.b64decode(
    "QlpoOTFBWSZTWVzh7l8FfibfgMyAQAH5AEAECABgqZ4AAAggAHUJJJ6j1BoyAAIqgDQA0MmkdoURQBVUS0AEBVUTWWBjCu4A"
    "QCSSQiENE5jidhGsijUZ2YrZKK8bQfSjVOdk6UpAVAFVRPzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlN"
    "ZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kOCeLfAV+OQADAAAAIIAAwgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45"
    "AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kOCeLfAV+OQADAAAAIIAA"
    "wgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJak"
    "KgJcxQVkmU1kOCeLfAV+OQADAAAAIIAAwgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlN"
    "ZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kOCeLfAV+OQADAAAAIIAAwgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45"
    "AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kOCeLfAV+OQADAAAAIIAA"
    "wgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJak"
    "KgJcxQVkmU1mG6zRUAGEcUADAAAEAAAggADDMBSmmFQgtiKhBeLuSKcKEhZWYmtg"
)


def tgz_sparse() -> bytes:
    """A GNU sparse member (type S), which KFP never writes."""
    raw = _raw_header("data.csv", 4, tarfile.GNUTYPE_SPARSE) + b"a\n1\n" + b"\0" * 508 + b"\0" * 1024
    return _gzip(raw)


def tgz_pax_chain(n: int) -> bytes:
    """n pax extended headers in a row before one file: tarfile recurses once per header."""
    record = b"12 path=a.c\n"  # 12 bytes, length included
    raw = b"".join(
        _raw_header("pax", len(record), tarfile.XHDTYPE) + record + b"\0" * (512 - len(record))
        for _ in range(n)
    )
    raw += _raw_header("data.csv", 4, tarfile.REGTYPE) + b"a\n1\n" + b"\0" * 508 + b"\0" * 1024
    return _gzip(raw)


def tar_plain(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
