"""A hospital's system, as the local runtime plays it: an HTTP server on 127.0.0.1 (a free port)
that records every webhook delivery it receives (headers and body) and answers as told.

Only the local stage may register a webhook on it (`http://127.0.0.1:<port>/...`: the settings'
`allow_loopback_webhooks`); every other stage refuses loopback addresses like any inside one.
Tests script its answers per path (`answer("/hooks", 503, 503)`: those, then 200); `make run`
reads what arrived at `GET /local/webhook-receiver`.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    received_at: datetime  # on the virtual clock, as the deliveries' signatures are

    @property
    def delivered(self) -> bool:
        return 200 <= self.answered < 300

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "answered": self.answered,
            "received_at": self.received_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answers: dict[str, deque[int]] = defaultdict(deque)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                body = self.rfile.read(length)
                status = receiver._record(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None  # quiet: the tests read what arrived, not a log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, *statuses: int) -> None:
        """The next requests to `path` are answered with these statuses, in turn; then 200."""
        with self._lock:
            self._answers[path].extend(statuses)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._answers.clear()

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        from chalicelib import clock

        with self._lock:
            scripted = self._answers.get(path)
            status = scripted.popleft() if scripted else 200
            self._received.append(Received(path, headers, body, status, clock.now()))
            return status
