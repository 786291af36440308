"""The HTTP face of the Message Batches API: the routes the SDK's ``messages.batches`` calls.

``POST /v1/messages/batches`` creates; ``GET /v1/messages/batches`` lists (newest first);
``GET``/``DELETE /v1/messages/batches/{id}`` retrieve and delete; ``POST .../{id}/cancel``
cancels; ``GET .../{id}/results`` streams the ``.jsonl`` results from the absolute
``results_url`` the batch object carries. Authentication and the error envelope are the live
endpoint's; its latency, rate limits and faults are not applied (nor counted in its stats).

What to answer is decided by :class:`~judgeflow_devkit.emulator.batches.BatchStore`, called on a worker
thread, so that validating or processing a large batch never stalls the event loop. A create
body over ``batch_max_bytes`` is refused with 413 ``request_too_large`` (how the real API refuses
an oversized body) without reading the rest of it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from judgeflow_devkit.emulator.envelope import ApiError, new_id
from judgeflow_devkit.emulator.state import EmulatorState
from judgeflow_devkit.emulator.stats import DISCONNECTED

BATCHES = "/v1/messages/batches"

StateOf = Callable[[Request], EmulatorState]
Operation = Callable[[Request, EmulatorState], Awaitable[Response]]


def batch_routes(state_of: StateOf) -> list[Route]:
    """The routes, each reading the app's state through ``state_of``."""

    def route(path: str, operation: Operation, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _answer(request, state_of(request), operation)

        return Route(path, endpoint, methods=[method])

    return [
        route(BATCHES, _create, "POST"),
        route(BATCHES, _list, "GET"),
        route(BATCHES + "/{batch_id}", _retrieve, "GET"),
        route(BATCHES + "/{batch_id}", _delete, "DELETE"),
        route(BATCHES + "/{batch_id}/cancel", _cancel, "POST"),
        route(BATCHES + "/{batch_id}/results", _results, "GET"),
    ]


async def _answer(request: Request, state: EmulatorState, operation: Operation) -> Response:
    request_id = new_id("req")
    try:
        state.authenticate(request.headers)
        response = await operation(request, state)
    except ApiError as exc:
        headers = {**exc.headers, "request-id": request_id}
        return JSONResponse(exc.body(request_id), status_code=exc.status, headers=headers)
    except ClientDisconnect:
        return Response(status_code=DISCONNECTED)
    response.headers["request-id"] = request_id
    return response


async def _create(request: Request, state: EmulatorState) -> Response:
    raw = await _body(request, state.config.batch_max_bytes)
    batch = await run_in_threadpool(lambda: state.batches.create(_json(raw)))
    return JSONResponse(_absolute(request, batch))


async def _list(request: Request, state: EmulatorState) -> Response:
    query = request.query_params
    page = await run_in_threadpool(
        lambda: state.batches.page(
            limit=query.get("limit"), after_id=query.get("after_id"), before_id=query.get("before_id")
        )
    )
    page["data"] = [_absolute(request, batch) for batch in page["data"]]
    return JSONResponse(page)


async def _retrieve(request: Request, state: EmulatorState) -> Response:
    batch = await run_in_threadpool(state.batches.retrieve, request.path_params["batch_id"])
    return JSONResponse(_absolute(request, batch))


async def _delete(request: Request, state: EmulatorState) -> Response:
    return JSONResponse(await run_in_threadpool(state.batches.delete, request.path_params["batch_id"]))


async def _cancel(request: Request, state: EmulatorState) -> Response:
    batch = await run_in_threadpool(state.batches.cancel, request.path_params["batch_id"])
    return JSONResponse(_absolute(request, batch))


async def _results(request: Request, state: EmulatorState) -> Response:
    batch_id = request.path_params["batch_id"]
    content = await run_in_threadpool(state.batches.results, batch_id)
    disposition = f"attachment; filename*=utf-8''{batch_id}_results.jsonl"
    return Response(content, media_type="application/x-jsonl", headers={"content-disposition": disposition})


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError("invalid_request_error", f"request body is not valid JSON: {exc}") from exc


def _absolute(request: Request, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with its ``results_url`` made absolute, as the real API gives it."""
    path = batch.get("results_url")
    if path:
        batch = {**batch, "results_url": str(request.base_url).rstrip("/") + path}
    return batch


def _too_large(limit: int) -> NoReturn:
    raise ApiError("request_too_large", f"Request exceeds the maximum allowed number of bytes ({limit}).")
