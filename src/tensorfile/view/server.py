"""The local server of `tensorfile view`: the page, its assets and this model's documents, nothing else.

Everything it can answer is in one in-memory table built before it starts (`routes`): a URL is a key
of that table or a 404, never a path on disk, so `/../`, `%2e%2e` or an absolute path cannot reach a
file. It binds 127.0.0.1 only; every URL starts with a random token that other local users cannot
guess; and the Host header must name this server (127.0.0.1:PORT or localhost:PORT), so a web page
that re-points its own host name at 127.0.0.1 (DNS rebinding) gets 403 instead of the documents.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .assets import page_assets, page_html

HOST = "127.0.0.1"

# The page runs only its own script and style, fetches only from this origin and cannot be framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str


def routes(token: str, documents: dict[str, dict[str, Any]]) -> dict[str, Resource]:
    """URL path -> what is served there: the page, its assets, one JSON document per section."""
    prefix = f"/{token}/"
    table = {prefix: Resource(page_html(list(documents)).encode(), "text/html; charset=utf-8")}
    for name, (body, content_type) in page_assets().items():
        table[f"{prefix}static/{name}"] = Resource(body, content_type)
    for name, doc in documents.items():
        body = json.dumps(doc, ensure_ascii=False, default=str, separators=(",", ":")).encode()
        table[f"{prefix}doc/{name}.json"] = Resource(body, "application/json; charset=utf-8")
    return table


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "tensorfile-view"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return  # the terminal shows the URL, not a request log

    def _send(self, status: int, resource: Resource | None, head_only: bool = False) -> None:
        body = resource.body if resource else f"{status} {self.responses[status][0]}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", resource.content_type if resource else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _answer(self, head_only: bool) -> None:
        if self.headers.get("Host", "") not in self.server.allowed_hosts:
            self._send(403, None, head_only)
            return
        # Only the path is looked up, as sent (no decoding, no normalising): a key or a 404.
        path = self.path if self.path.startswith("//") else urlsplit(self.path).path
        resource = self.server.table.get(path)
        self._send(200 if resource else 404, resource, head_only)

    def do_GET(self) -> None:
        self._answer(head_only=False)

    def do_HEAD(self) -> None:
        self._answer(head_only=True)

    def _refuse(self) -> None:
        self._send(405, None)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse


class ViewServer(ThreadingHTTPServer):
    """Serves one model's page on 127.0.0.1; `url` is the address to open (token included)."""

    daemon_threads = True
    # --port N again right after Ctrl-C (a socket in TIME_WAIT) works; a port something listens on
    # still fails on POSIX. On Windows SO_REUSEADDR would let two servers share a port: not there.
    allow_reuse_address = os.name != "nt"

    def __init__(self, documents: dict[str, dict[str, Any]], port: int = 0) -> None:
        super().__init__((HOST, port), _Handler)
        self.port = int(self.server_address[1])
        self.token = secrets.token_urlsafe(24)
        self.allowed_hosts = frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})
        self.table = routes(self.token, documents)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/{self.token}/"

    def start_background(self) -> threading.Thread:
        """Serve from a daemon thread (tests, embedding); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="tensorfile-view", daemon=True)
        thread.start()
        return thread
