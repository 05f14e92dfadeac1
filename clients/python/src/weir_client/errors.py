"""Errors the client raises: one exception class per error code of the Weir API.

Every API error has the shape ``{"error": {"code", "message", "details"}}``; the client
turns it into the exception named by its ``code`` (``InvalidInput`` for ``invalid_input``,
``Overloaded`` for ``overloaded``, ...), so callers branch on types, not strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type


class WeirError(Exception):
    """Base class of everything this client raises."""


class TransportError(WeirError):
    """The server could not be reached, or the connection broke mid-request."""


class ApiError(WeirError):
    """The server answered with an error: ``status``, ``code``, ``message``, ``details``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400 ``bad_request``: the request is malformed (a bad filter, body or parameter)."""


@dataclass(frozen=True)
class Violation:
    """One schema violation: the JSON pointer of the offending value (``/`` for the whole
    input) and what is wrong with it; ``text`` is the server's line as sent."""

    path: Optional[str]
    message: str
    text: str

    @classmethod
    def parse(cls, text: str) -> "Violation":
        """A violation from the server's ``at <path>: <message>`` line."""
        if text.startswith("at ") and ": " in text:
            path, message = text[3:].split(": ", 1)
            return cls(path, message, text)
        return cls(None, text, text)

    def __str__(self) -> str:
        return self.text


class InvalidInput(ApiError):
    """422 ``invalid_input``: the input does not match a schema; see ``violations``."""

    @property
    def violations(self) -> List[Violation]:
        """Every violation, each naming its JSON path and what is wrong."""
        found = self.details.get("violations") if isinstance(self.details, dict) else None
        if not isinstance(found, list):
            return []
        return [Violation.parse(v) if isinstance(v, str) else Violation(
            str(v.get("path")) if isinstance(v, dict) and v.get("path") is not None else None,
            str(v.get("message", v)) if isinstance(v, dict) else str(v),
            str(v),
        ) for v in found]


class Unauthorized(ApiError):
    """401 ``unauthorized``: no token, or a wrong one."""


class NotFound(ApiError):
    """404 ``not_found``: no such run, review, workflow or route."""


class MethodNotAllowed(ApiError):
    """405 ``method_not_allowed``."""


class Conflict(ApiError):
    """409 ``conflict``: the resource's state forbids this (an ended run, a decided review,
    an idempotency key used for another input or workflow)."""


class PayloadTooLarge(ApiError):
    """413 ``payload_too_large``."""


class UnsupportedMediaType(ApiError):
    """415 ``unsupported_media_type``."""


class Overloaded(ApiError):
    """429 ``overloaded``: the run queue is full; ``retry_after`` says when to come back."""


class Unavailable(ApiError):
    """503 ``unavailable``: the server is shutting down or not ready."""


class InternalError(ApiError):
    """500 ``internal``: a server fault; the message names the cause."""


ERRORS_BY_CODE: Dict[str, Type[ApiError]] = {
    "bad_request": BadRequest,
    "invalid_input": InvalidInput,
    "unauthorized": Unauthorized,
    "not_found": NotFound,
    "method_not_allowed": MethodNotAllowed,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "overloaded": Overloaded,
    "unavailable": Unavailable,
    "internal": InternalError,
}

# A status without a JSON body (a proxy in between, say) still maps to a class.
_ERRORS_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    429: Overloaded,
    503: Unavailable,
}


def error_from_response(
    status: int, body: Any, retry_after: Optional[float]
) -> ApiError:
    """The exception for an error response: by its ``code``, else by its status."""
    code, message, details = "", "", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code", ""))
        message = str(err.get("message", ""))
        details = err.get("details")
    elif isinstance(body, str):
        message = body.strip()
    cls = ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(status)
    if cls is None:
        cls = InternalError if status >= 500 else ApiError
    if not code:
        code = next((c for c, k in ERRORS_BY_CODE.items() if k is cls), "unknown")
    if not message:
        message = f"the server answered {status}"
    return cls(status, code, message, details, retry_after)
