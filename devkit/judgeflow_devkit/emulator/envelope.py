"""API errors as the real Messages API spells them: a status, an error type and a message.

Request handling raises :class:`ApiError`; only the HTTP layer (and the batch store, for an
``errored`` result) turns it into an envelope, so the same failure reads the same way wherever it
surfaces.
"""

from __future__ import annotations

import uuid
from typing import Any

ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class ApiError(Exception):
    """A reply the API would send instead of a message; ``headers`` are added to the response."""

    def __init__(self, error_type: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = ERROR_STATUS[error_type]
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        """The envelope: ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
        return error_body(self.error_type, self.message, request_id)


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def new_id(prefix: str) -> str:
    """An id in the API's style (``msg_…``, ``toolu_…``, ``req_…``)."""
    return f"{prefix}_emu{uuid.uuid4().hex[:21]}"
