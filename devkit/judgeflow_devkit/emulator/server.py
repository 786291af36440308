"""The HTTP face of the emulator: a Starlette app, and a runner that serves it on a thread.

``POST /v1/messages`` answers like the Messages API (auth, validation, rate limits, latency,
injected faults, prompt-cache usage); the Message Batches API is served under
``/v1/messages/batches`` (:mod:`~judgeflow_devkit.emulator.batch_routes`); ``GET /_emulator/stats`` and
``POST /_emulator/reset`` let a test or benchmark read and zero the counters. Everything that
decides *what* to answer lives in :mod:`~judgeflow_devkit.emulator.state` and below; this module only
decides *when* and in which envelope.

A waiting request (latency or an injected hang) ends early when its client disconnects, so a
client timeout frees the server as it would the real API; at shutdown it is answered with a 529
(which clients retry), so ``stop()`` is not held up and nothing is cancelled mid-response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from judgeflow_devkit.emulator.batch_routes import batch_routes
from judgeflow_devkit.emulator.config import EmulatorConfig
from judgeflow_devkit.emulator.envelope import ApiError, error_body, new_id
from judgeflow_devkit.emulator.state import EmulatorState
from judgeflow_devkit.emulator.stats import DISCONNECTED

log = logging.getLogger(__name__)

STATE_KEY = "emulator"
STOPPING_KEY = "emulator_stopping"


def create_app(config: EmulatorConfig, *, state: EmulatorState | None = None) -> Starlette:
    """The ASGI app; its :class:`EmulatorState` is ``app.state.emulator``."""
    app = Starlette(
        routes=[
            Route("/v1/messages", _messages, methods=["POST"]),
            Route("/_emulator/stats", _stats, methods=["GET"]),
            Route("/_emulator/reset", _reset, methods=["POST"]),
            *batch_routes(_state),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    setattr(app.state, STATE_KEY, state or EmulatorState(config))
    return app


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = getattr(request.app.state, STATE_KEY)
    return state


async def _messages(request: Request) -> Response:
    state = _state(request)
    state.started()
    status = 500
    try:
        response = await _answer(request, state, new_id("req"))
        status = response.status_code
        return response
    finally:
        state.finished(status)


async def _answer(request: Request, state: EmulatorState, request_id: str) -> Response:
    try:
        state.authenticate(request.headers)
        admission = state.admit(await _json_body(request))
    except ApiError as exc:
        return _error(exc, request_id, state)
    except ClientDisconnect:
        return Response(status_code=DISCONNECTED)
    waited = await _wait(request, admission.delay_s)
    if waited == "disconnected":
        return Response(status_code=DISCONNECTED)
    if waited == "stopping":
        return _error(ApiError("overloaded_error", "The emulator is shutting down."), request_id, state)
    try:
        body = state.complete(admission)
    except ApiError as exc:
        return _error(exc, request_id, state)
    return JSONResponse(body, headers={**state.ratelimit_headers(), "request-id": request_id})


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError("invalid_request_error", f"request body is not valid JSON: {exc}") from exc


def _error(exc: ApiError, request_id: str, state: EmulatorState) -> JSONResponse:
    headers = {**state.ratelimit_headers(), **exc.headers, "request-id": request_id}
    return JSONResponse(exc.body(request_id), status_code=exc.status, headers=headers)


async def _wait(request: Request, seconds: float) -> str:
    """Sleep ``seconds``: ``"done"``, or ``"disconnected"`` / ``"stopping"`` as soon as the client
    goes away or the server starts shutting down."""
    if seconds <= 0:
        return "done"
    tasks = {
        "done": asyncio.ensure_future(asyncio.sleep(seconds)),
        "disconnected": asyncio.ensure_future(_disconnected(request)),
        "stopping": asyncio.ensure_future(_stopping(request).wait()),
    }
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks.values():
            task.cancel()
    return next(name for name in ("disconnected", "stopping", "done") if tasks[name].done())


async def _disconnected(request: Request) -> None:
    """Return once the ASGI server reports ``http.disconnect`` (the body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _stopping(request: Request) -> asyncio.Event:
    """The app's shutdown event, made on first use inside the server's loop."""
    event: asyncio.Event | None = getattr(request.app.state, STOPPING_KEY, None)
    if event is None:
        event = asyncio.Event()
        setattr(request.app.state, STOPPING_KEY, event)
    return event


async def _stats(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).snapshot())


async def _reset(request: Request) -> JSONResponse:
    state = _state(request)
    state.reset()
    return JSONResponse(state.snapshot())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    request_id = new_id("req")
    return JSONResponse(
        error_body(error_type, str(exc.detail), request_id),
        status_code=exc.status_code,
        headers={"request-id": request_id},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("emulator: unhandled error on %s", request.url.path, exc_info=exc)
    request_id = new_id("req")
    return JSONResponse(
        error_body("api_error", "Internal server error", request_id),
        status_code=500,
        headers={"request-id": request_id},
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (and listen) before the server starts, so the port is known even for port 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn, but waiting requests are answered (529) at shutdown instead of being cancelled."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if isinstance(self.config.app, Starlette):
            setattr(self.config.app.state, STOPPING_KEY, None)
        await super().startup(sockets=sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        event = getattr(app.state, STOPPING_KEY, None) if isinstance(app, Starlette) else None
        if event is not None:
            event.set()
        await super().shutdown(sockets=sockets)


def uvicorn_server(app: Starlette, *, graceful_shutdown_s: int = 1, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_shutdown_s,
        backlog=2048,
    )
    return _Server(config)


class EmulatorServer:
    """Serve the emulator on a background thread; a context manager for tests and benchmarks.

    ``port=0`` picks a free port; :attr:`url` is ``http://127.0.0.1:PORT`` once started.
    :meth:`stats` and :meth:`reset` act on the same state as the ``/_emulator`` endpoints.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 10.0,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self.app = create_app(self.config, state=self.state)
        self._host, self._port = host, port
        self._startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator server is not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start(self) -> EmulatorServer:
        """Bind, start serving, and return once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("emulator server is already started")
        sock = bind_socket(self._host, self._port)
        server = uvicorn_server(self.app)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="judgeflow-emulator", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                self._server = self._thread = None
                raise RuntimeError("emulator server did not start")
            time.sleep(0.005)
        self._url = socket_url(sock)
        log.info("judgeflow emulator listening on %s", self._url)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and join the thread; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout_s)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout_s)
        self._server = self._thread = None
        self._url = None

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot()

    def reset(self) -> None:
        self.state.reset()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then return normally.

    uvicorn shuts down gracefully on either signal and then re-raises it to the handler that was
    installed before it started; a no-op handler there makes the requested stop a clean return
    instead of a death by signal or a ``KeyboardInterrupt``.
    """
    sock = bind_socket(host, port)
    log.info("judgeflow emulator listening on %s", socket_url(sock))
    with contextlib.closing(sock), _signals_ignored_after_shutdown():
        uvicorn_server(create_app(config)).run(sockets=[sock])


@contextlib.contextmanager
def _signals_ignored_after_shutdown() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, frame: FrameType | None) -> None:
    log.info("judgeflow emulator stopped (%s)", signal.Signals(signum).name)
