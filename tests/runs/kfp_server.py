"""A tiny real HTTP server on loopback that answers as a KFP API server would,
with the recorded responses in tests/runs/kfp_responses/ (no KFP runs here)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RESPONSES = Path(__file__).parent / "kfp_responses"
# The run id of the recorded responses.
RECORDED_RUN_ID = "7c4a1f0e-2b5d-4e8a-9f61-3d2c8b9a0e11"


def recorded(name: str) -> bytes:
    return (RESPONSES / name).read_bytes()


class RecordedKfp:
    """Serves ``routes`` ({path: (status, body bytes)}); an unknown path gets KFP's 404.

    ``hang`` holds every request open until ``stop()`` (a KFP that accepts and
    never answers: the client's timeout must end the wait). ``requests`` records
    (path, Authorization header) of each request.
    """

    def __init__(self, routes: dict[str, tuple[int, bytes]] | None = None, *, hang: bool = False):
        self.routes = dict(routes or {})
        self.hang = hang
        self.requests: list[tuple[str, str | None]] = []
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Authorization")))
                if server.hang:
                    server._release.wait()
                    return
                status, body = server.routes.get(self.path, (404, recorded("not_found.json")))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def run_path(self, run_id: str) -> str:
        return f"/apis/v2beta1/runs/{run_id}"

    def __enter__(self) -> RecordedKfp:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
