"""Runs INSIDE the sandbox (copied into its input directory; imports nothing of Pipelens).

argv: result fd, result byte limit[, input dir (weak mode only)]. Reads
``recipe.py`` and ``meta.json`` from the input directory, calls
``render(path, meta)`` and writes one JSON object to the result fd:

    {"status": "ok", "output": {"type": "html"|"png"|"table"|"vega_lite", ...}}
    {"status": "exception", "traceback": "..."}
    {"status": "memory"} | {"status": "bad_output", "reason": "..."}

The result is at most ``limit`` bytes; anything larger is a bad output. The
runner checks all of it again: nothing written here is trusted.
"""

import base64
import json
import os
import sys
import traceback
import types


def _pipelens_module():
    """``import pipelens`` inside a recipe: constructors of the four outputs."""
    mod = types.ModuleType("pipelens")

    def HTML(html):  # noqa: N802
        return {"type": "html", "html": html}

    def PNG(data):  # noqa: N802
        return {"type": "png", "png": data}

    def Table(header, rows):  # noqa: N802
        return {"type": "table", "header": header, "rows": rows}

    def VegaLite(spec):  # noqa: N802
        return {"type": "vega_lite", "spec": spec}

    mod.HTML, mod.PNG, mod.Table, mod.VegaLite = HTML, PNG, Table, VegaLite
    return mod


class BadOutput(Exception):
    pass


class LeftBehind(Exception):
    pass


def _cell(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _cell(item())
    return str(value)


def _normalize(value, limit):
    """The recipe's return value as a JSON-able output dict (or BadOutput)."""
    if type(value).__name__ == "DataFrame" and hasattr(value, "columns"):
        value = {"type": "table", "header": list(value.columns), "rows": value.values.tolist()}
    elif type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        import io

        buf = io.BytesIO()
        value.savefig(buf, format="png")
        value = {"type": "png", "png": buf.getvalue()}
    elif isinstance(value, str):
        value = {"type": "html", "html": value}
    elif isinstance(value, (bytes, bytearray)):
        value = {"type": "png", "png": bytes(value)}
    if not isinstance(value, dict) or value.get("type") not in ("html", "png", "table", "vega_lite"):
        raise BadOutput(
            f"render() returned {type(value).__name__}; return pipelens.HTML(...), PNG(...), "
            f"Table(header, rows) or VegaLite(spec) (docs/recipes.md)."
        )
    kind = value["type"]
    if kind == "html":
        if not isinstance(value.get("html"), str):
            raise BadOutput("HTML output must be a str.")
        if len(value["html"]) > limit:
            raise BadOutput(f"The HTML is larger than the limit ({len(value['html'])} > {limit} characters).")
        return {"type": "html", "html": value["html"]}
    if kind == "png":
        data = value.get("png")
        if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
            raise BadOutput("PNG output must be the bytes of a PNG file.")
        if len(data) * 4 // 3 > limit:
            raise BadOutput(f"The PNG is larger than the limit ({len(data)} bytes).")
        return {"type": "png", "png_b64": base64.b64encode(bytes(data)).decode("ascii")}
    if kind == "table":
        header, rows = value.get("header"), value.get("rows")
        if not isinstance(header, (list, tuple)) or not isinstance(rows, (list, tuple)):
            raise BadOutput("A table is Table(header: list, rows: list of lists).")
        if len(rows) > 10_000:
            raise BadOutput(f"A table may have at most 10,000 rows ({len(rows)} returned).")
        out_rows = []
        for row in rows:
            if not isinstance(row, (list, tuple)):
                raise BadOutput("Each table row must be a list.")
            out_rows.append([_cell(c) for c in row])
        return {"type": "table", "header": [str(h) for h in header], "rows": out_rows}
    spec = value.get("spec")
    if not isinstance(spec, dict):
        raise BadOutput("A Vega-Lite output is VegaLite(spec: dict).")
    return {"type": "vega_lite", "spec": spec}


def _left_behind(input_dir):
    """Processes besides this one (and bwrap's init, pid 1) still running in the sandbox."""
    me = os.getpid()
    if input_dir == "/input":  # our own PID namespace: every process in /proc is the recipe's
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        return [p for p in pids if p not in (1, me)]
    found = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _matplotlib_cache():
    """matplotlib wants a writable config dir: copy the font cache built with the venv
    (read-only in the sandbox) into the private /tmp, so it is not rebuilt on each run."""
    import shutil
    import tempfile

    target = os.path.join(tempfile.gettempdir(), "mplconfig")
    built = os.path.join(sys.prefix, "mplconfig")
    try:
        if os.path.isdir(built) and not os.path.exists(target):
            shutil.copytree(built, target)
        os.environ["MPLCONFIGDIR"] = target
    except OSError:
        pass


def main():
    main_pid = os.getpid()
    fd, limit = int(sys.argv[1]), int(sys.argv[2])
    input_dir = sys.argv[3] if len(sys.argv) > 3 else "/input"
    out = os.fdopen(fd, "w", encoding="utf-8")
    _matplotlib_cache()
    try:
        with open(os.path.join(input_dir, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        with open(os.path.join(input_dir, "recipe.py"), encoding="utf-8") as f:
            source = f.read()
        sys.modules["pipelens"] = _pipelens_module()
        namespace = {"__name__": "recipe", "__file__": "recipe.py"}
        exec(compile(source, "recipe.py", "exec"), namespace)  # noqa: S102 - the sandbox's purpose
        render = namespace.get("render")
        if not callable(render):
            raise BadOutput("The recipe defines no function render(path, meta).")
        value = render(os.path.join(input_dir, "data", meta["file"]), dict(meta))
        if os.getpid() != main_pid:
            os._exit(0)  # a process the recipe forked returned here: only the first one answers
        left = _left_behind(input_dir)
        if left:
            raise LeftBehind(
                f"render() returned but left {len(left)} process(es) running; they were killed "
                f"with the sandbox. Recipes may not leave background processes."
            )
        result = {"status": "ok", "output": _normalize(value, limit)}
        text = json.dumps(result, allow_nan=False)
        if len(text) > limit:
            raise BadOutput(f"The output is larger than the limit ({len(text)} > {limit} bytes).")
    except LeftBehind as exc:
        text = json.dumps({"status": "left_processes", "reason": str(exc)})
    except BadOutput as exc:
        text = json.dumps({"status": "bad_output", "reason": str(exc)[:2000]})
    except MemoryError:
        text = json.dumps({"status": "memory"})
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ValueError) and "JSON compliant" in str(exc):
            text = json.dumps({"status": "bad_output", "reason": "The output holds NaN or infinity."})
        else:
            text = json.dumps({"status": "exception", "traceback": traceback.format_exc()[-8000:]})
    except BlockingIOError as exc:
        if os.getpid() != main_pid:
            os._exit(1)
        text = json.dumps(
            {"status": "processes", "reason": f"{exc}", "traceback": traceback.format_exc()[-8000:]}
        )
    except BaseException:  # SystemExit, KeyboardInterrupt too: the recipe's doing
        if os.getpid() != main_pid:
            os._exit(1)
        text = json.dumps({"status": "exception", "traceback": traceback.format_exc()[-8000:]})
    if os.getpid() != main_pid:
        os._exit(1)
    try:
        out.write(text)
        out.close()
    except MemoryError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers or threads the recipe left behind


if __name__ == "__main__":
    main()
