"""A local stand-in for a Slack incoming webhook: a real HTTP server that records what it is sent.

::

    with SlackReceiver() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        ...
        [payload] = slack.wait_for(1)

Set ``status`` to answer like a broken Slack (500) and ``delay_s`` to answer like a slow one; both
may be changed while the server runs. Every POST is recorded *before* the delay, so a test can see
that a request arrived even when the client gave up waiting.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

WEBHOOK_PATH = "/services/T000/B000/XXX"


class SlackReceiver:
    """A threaded HTTP server on 127.0.0.1 (free port) that answers webhook POSTs like Slack."""

    def __init__(self, *, status: int = 200, delay_s: float = 0.0, path: str = WEBHOOK_PATH) -> None:
        self.status = status
        self.delay_s = delay_s
        self.path = path
        self._payloads: list[Any] = []
        self._received = threading.Condition()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SlackReceiver is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    @property
    def payloads(self) -> list[Any]:
        """A copy of every JSON body received so far, in arrival order."""
        with self._received:
            return list(self._payloads)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Any]:
        """Block until at least ``n`` payloads arrived; return them. ``TimeoutError`` if they do not."""
        deadline = time.monotonic() + timeout
        with self._received:
            while len(self._payloads) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {n} payload(s) within {timeout}s, got {len(self._payloads)}")
                self._received.wait(remaining)
            return list(self._payloads)

    def __enter__(self) -> SlackReceiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="slack-receiver", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()  # wakes handlers sleeping out a delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _record(self, payload: Any) -> None:
        with self._received:
            self._payloads.append(payload)
            self._received.notify_all()


def connection_json(url: str, *, timeout: int | None = None) -> str:
    """An ``AIRFLOW_CONN_*`` value for a ``slackwebhook`` connection posting to ``url``.

    The provider's hook uses the password as the whole webhook URL when it contains ``://``;
    ``timeout`` becomes the connection's ``timeout`` extra (seconds).
    """
    conn: dict[str, Any] = {"conn_type": "slackwebhook", "password": url}
    if timeout is not None:
        conn["extra"] = {"timeout": timeout}
    return json.dumps(conn)


def _handler_for(receiver: SlackReceiver) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.close_connection = True  # one request per connection, like urllib's
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            try:
                payload: Any = json.loads(body)
            except json.JSONDecodeError:
                payload = {"_raw": body}
            receiver._record(payload)
            if receiver.delay_s > 0 and receiver._closing.wait(receiver.delay_s):
                return  # shutting down: drop the answer, as a hung Slack would
            if self.path != receiver.path:
                self._answer(404, "no_service")
            else:
                self._answer(receiver.status, "ok" if receiver.status == 200 else "internal_error")

        def _answer(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return _Handler
