"""Seeded generators of hostile-ish inputs for the fuzz tests (issue 8, finding 5).

``cases(seed, n)`` yields ``(name, data)`` pairs: KFP archives, CSVs (tables,
confusion matrices, ROC curves), images, Parquet files and KFP
``mlpipeline-ui-metadata`` documents — first well-formed, then mutated (bytes flipped, cut, repeated,
inserted) or built from hostile parts (NaN and huge numbers, deep nesting,
wrong JSON types, huge declared sizes and dimensions, long lines, other
compressions and image formats). The same seed gives the same inputs.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import struct
import zlib

from PIL import Image

from tests.runs.rendering import files

NUMBERS = [
    "0",
    "1",
    "-3",
    "0.5",
    "1e3",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e999",
    "-1e999",
    "9" * 400,
    "1e-400",
    "0x10",
    "",
    " 7 ",
    "1_000",
    "١٢",
    "+.5",
]
WORDS = [
    "cat",
    "dog",
    "bird",
    "a,b",
    'q"uote',
    "new\nline",
    "tab\there",
    "\x00",
    "\ufffd",
    "é",
    "🙂",
    "\r",
    "<script>alert(1)</script>",
    "=cmd|' /C calc'!A0",
    "",
    " ",
    "x" * 3000,
]
CSV_HEADERS = [
    "target,predicted,count",
    "fpr,tpr,thresholds",
    "fpr,tpr,threshold",
    "id,name,score",
    "a\tb\tc",
    "a;b;c",
    "",
    "fpr,other",
]


def _mutate(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    buf = bytearray(data)
    for _ in range(rounds if rounds is not None else rng.randint(1, 6)):
        if not buf:
            buf += rng.randbytes(8)
        op = rng.randrange(6)
        i = rng.randrange(len(buf))
        if op == 0:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:  # cut
            del buf[i:]
        elif op == 2:  # insert random bytes
            buf[i:i] = rng.randbytes(rng.randint(1, 64))
        elif op == 3:  # repeat a slice
            j = min(len(buf), i + rng.randint(1, 64))
            buf[i:i] = bytes(buf[i:j]) * rng.randint(2, 50)
        elif op == 4:  # an interesting byte
            buf[i] = rng.choice([0, 0xFF, 0x7F, 0x80, ord('"'), ord("\n"), ord(","), ord("%")])
        else:  # drop a slice
            del buf[i : i + rng.randint(1, 64)]
    return bytes(buf)


# --- CSV ----------------------------------------------------------------------------------


def csv_case(rng: random.Random) -> tuple[str, bytes]:
    header = rng.choice(CSV_HEADERS)
    ncols = max(1, header.count(",") + 1 if header else rng.randint(1, 6))
    delim = rng.choice([",", ",", ",", "\t", ";", "|"])
    newline = rng.choice(["\n", "\n", "\r\n", "\r"])
    lines = [header] if header else []
    for _ in range(rng.randint(0, 300)):
        cells = []
        for _ in range(max(0, ncols + rng.choice([0, 0, 0, 0, -1, 1, 5]))):
            value = rng.choice(NUMBERS) if rng.random() < 0.6 else rng.choice(WORDS)
            if rng.random() < 0.2:
                value = '"' + value.replace('"', '""') + '"'
            cells.append(value)
        lines.append(delim.join(cells))
    text = newline.join(lines) + (newline if rng.random() < 0.8 else "")
    data = text.encode("utf-8", errors="surrogatepass")
    roll = rng.random()
    if roll < 0.25:
        data = _mutate(rng, data)
    elif roll < 0.3:
        data = b"x," * rng.randint(1, 200_000)  # one long line
    elif roll < 0.35:
        data = b'"' + b"a\n" * rng.randint(1, 50_000)  # an unterminated quote
    elif roll < 0.4:
        data = rng.randbytes(rng.randint(0, 4096))
    name = rng.choice(["data.csv", "t.tsv", "roc.csv", "cm.csv", "table.csv"])
    return name, data


# --- images -------------------------------------------------------------------------------


def _png_header(width: int, height: int, depth: int = 8, color: int = 6) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def image_case(rng: random.Random) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.15:
        data = _png_header(
            rng.choice([1, 3000, 9000, 70000, 2**31 - 1]),
            rng.choice([1, 2000, 9000, 2**31 - 1]),
            rng.choice([1, 8, 16]),
            rng.choice([0, 2, 3, 4, 6]),
        )
    else:
        fmt = rng.choice(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM", "ICO", "TGA", "PCX"])
        mode = "RGB" if fmt in ("JPEG", "PPM", "PCX") else rng.choice(["RGB", "RGBA", "L", "P"])
        if fmt in ("BMP", "TGA") and mode == "RGBA":
            mode = "RGB"
        low = 16 if fmt == "ICO" else 1  # Pillow writes icons of 16 px and more
        im = Image.new(
            mode,
            (rng.randint(low, 300), rng.randint(low, 300)),
            rng.randrange(256) if mode in ("L", "P") else tuple(rng.randrange(256) for _ in mode),
        )
        out = io.BytesIO()
        im.save(out, fmt)
        data = out.getvalue()
        if roll < 0.75:
            data = _mutate(rng, data)
    return rng.choice(["plot.png", "photo.jpg", "anim.gif", "x.webp", "y.bmp"]), data


# --- KFP metadata -------------------------------------------------------------------------


def _junk(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([None, True, 0, -1, 1.5, 1e308, "", "x", "csv", "inline", "minio://b/k", [], {}])
    if roll < 0.6:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(["type", "source", "storage", "format", "labels", "schema", "header", "name", "x"]): _junk(
            rng, depth + 1
        )
        for _ in range(rng.randint(0, 4))
    }


def metadata_case(rng: random.Random) -> tuple[str, bytes]:
    outputs = []
    for _ in range(rng.randint(0, 25)):
        kind = rng.choice(
            ["confusion_matrix", "roc", "table", "markdown", "web-app", "tensorboard", "sparkles", None, 7]
        )
        output: dict = {"type": kind}
        if rng.random() < 0.8:
            output["storage"] = rng.choice(["inline", "inline", "inline", "inline", "minio", None, 3])
        source_kind = rng.random()
        if source_kind < 0.5:
            output["source"] = csv_case(rng)[1].decode("utf-8", errors="replace")
        elif source_kind < 0.7:
            output["source"] = rng.choice(
                [
                    "# Title\n![x](https://t.example/p.png)\n",
                    "<script>1</script>",
                    "[" * 5000,
                    "s3://b/logs; rm -rf ~",
                    "gs://bucket/x.csv",
                    "minio://nobucket/k.csv",
                    "logs\n; rm -rf ~",
                ]
            )
        else:
            output["source"] = _junk(rng)
        for key in ("format", "labels", "schema", "header"):
            if rng.random() < 0.3:
                output[key] = _junk(rng)
        if rng.random() < 0.2:
            output["schema"] = [
                {"name": rng.choice(["fpr", "tpr", "thresholds", "target", "predicted", "count", 5, None])}
                for _ in range(3)
            ]
        if rng.random() < 0.2:
            output["labels"] = [rng.choice(["a", "b", 1, None, [], 2.5]) for _ in range(rng.randint(0, 5))]
        outputs.append(output)
    doc = rng.choice(
        [
            {"version": 1, "outputs": outputs},
            {"outputs": outputs},
            outputs,
            {"outputs": {}},
            {"version": 1, "outputs": outputs},
        ]
    )
    text = json.dumps(doc, allow_nan=True)
    roll = rng.random()
    if roll < 0.15:
        text = text.replace("1e+308", rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]), 1)
    elif roll < 0.2:
        text = "[" * rng.randint(100, 50_000) + "]" * rng.randint(0, 50_000)
    data = text.encode()
    if rng.random() < 0.2:
        data = _mutate(rng, data)
    return rng.choice(["mlpipeline-ui-metadata.json", "mlpipeline-ui-metadata"]), data


# --- archives ------------------------------------------------------------------------------


def archive_case(rng: random.Random) -> tuple[str, bytes]:
    inner_name, inner = rng.choice([csv_case, metadata_case, image_case])(rng)
    roll = rng.random()
    if roll < 0.1:
        data = files.tar_extended_bomb(
            rng.choice([64 * 1024, 1 << 20, 16 << 20]), kind=rng.choice([b"L", b"K", b"x", b"g"])
        )
    elif roll < 0.15:
        data = files.tgz_pax_chain(rng.randint(1, 40))
    elif roll < 0.2:
        data = files.tgz_declaring(rng.choice([0, 1, 2**33, 8**11 - 1]))
    elif roll < 0.25:
        raw = files.tar_plain({inner_name: inner})
        data = rng.choice([bz2.compress, lambda b: b, gzip.compress])(raw)
    elif roll < 0.3:
        data = gzip.compress(b"\0" * rng.choice([1 << 20, 8 << 20]))  # zeros: an empty tar, or a small bomb
    else:
        members = {inner_name: inner}
        if rng.random() < 0.2:
            members[rng.choice(["../x", "/etc/x", "a/../../b", "dir/" + inner_name, "x" * 300])] = inner
        data = files.tgz(members)
        if roll < 0.7:
            tar = gzip.decompress(data)
            data = gzip.compress(_mutate(rng, tar)) if rng.random() < 0.6 else _mutate(rng, data)
    return rng.choice(["mlpipeline-ui-metadata.tgz", "mlpipeline-metrics.tgz", "data.tgz", "model.tgz"]), data


# --- Parquet --------------------------------------------------------------------------


def _parquet_table(rng: random.Random):
    import pyarrow as pa

    rows = rng.choice([0, 1, 7, 100, 1000])
    columns = {
        "i": pa.array([rng.randint(-(2**40), 2**40) for _ in range(rows)], pa.int64()),
        "f": pa.array([rng.choice([0.5, -1e300, float("nan"), float("inf"), None]) for _ in range(rows)]),
        "s": pa.array([rng.choice(["tulip", "", "x" * 3000, '\x00\n,"', None]) for _ in range(rows)]),
        "b": pa.array([rng.random() < 0.5 for _ in range(rows)]),
    }
    if rng.random() < 0.3:  # nested columns are listed, not shown
        columns["l"] = pa.array([[rng.randint(0, 9)] * rng.randint(0, 3) for _ in range(rows)])
    if rng.random() < 0.2:
        columns["bin"] = pa.array([rng.randbytes(rng.randint(0, 20)) for _ in range(rows)])
    if rng.random() < 0.2:
        columns["t"] = pa.array([rng.randint(0, 2**40) for _ in range(rows)], pa.timestamp("ms"))
    return pa.table(columns)


def parquet_case(rng: random.Random) -> tuple[str, bytes]:
    """Parquet files as pandas and pyarrow write them, then mutated (often in the footer, where
    the sizes are declared), cut, or given a footer length that lies."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(
        _parquet_table(rng),
        buf,
        row_group_size=rng.choice([None, 1, 10, 333]),
        compression=rng.choice(["snappy", "gzip", "zstd", "none"]),
    )
    data = buf.getvalue()
    roll = rng.random()
    if roll < 0.3:
        footer = rng.randint(12, min(len(data), 600))
        data = data[:-footer] + _mutate(rng, data[-footer:-8]) + data[-8:]  # thrift metadata
    elif roll < 0.4:
        data = data[:-8] + struct.pack("<I", rng.choice([0, 1, 2**31, 2**32 - 1, len(data)])) + b"PAR1"
    elif roll < 0.6:
        data = _mutate(rng, data)
    name = rng.choice(["train.parquet", "output_dataset", "part-0.parq"])
    return name, data


KINDS = {
    "archive": archive_case,
    "csv": csv_case,
    "image": image_case,
    "metadata": metadata_case,
    "parquet": parquet_case,
}


def cases(seed: int, n: int, kinds=tuple(KINDS)):
    """``n`` (kind, name, data) inputs, round-robin over ``kinds``, reproducible from ``seed``."""
    rng = random.Random(seed)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        name, data = KINDS[kind](rng)
        yield kind, name, data
