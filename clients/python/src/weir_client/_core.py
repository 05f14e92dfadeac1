"""What the sync and async clients share: settings, request shapes, the retry rule, error
mapping and the server-sent-event decoder. No I/O happens here, so both clients behave the
same by construction."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Union

import httpx

from .errors import ApiError, error_from_response
from .models import Event, EventRecord, RunRecord

DEFAULT_BASE_URL = "http://127.0.0.1:7878"
"""Where ``weir serve`` listens unless told otherwise."""

TOKEN_ENV = "WEIR_API_TOKEN"
"""The environment variable a token is read from when none is passed."""

RETRIED_STATUSES = frozenset({429, 503})
"""Statuses the server answers without having done anything: safe to send again."""

Wait = Union[None, float, int, str]
"""How long ``submit`` blocks: seconds, or a duration the server parses (``"30s"``)."""


@dataclass(frozen=True)
class Settings:
    """A client's settings, resolved once."""

    base_url: str
    token: Optional[str]
    timeout: float
    max_retries: int
    max_retry_wait: float
    max_reconnects: int

    @classmethod
    def resolve(
        cls,
        base_url: Optional[str],
        token: Optional[str],
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        max_reconnects: int,
    ) -> "Settings":
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if max_retry_wait < 0:
            raise ValueError("max_retry_wait must be 0 or more")
        url = (base_url or os.environ.get("WEIR_URL") or DEFAULT_BASE_URL).rstrip("/")
        return cls(
            base_url=url,
            token=token if token is not None else os.environ.get(TOKEN_ENV) or None,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            max_reconnects=max_reconnects,
        )

    def headers(self) -> Dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "weir-client-python/0.1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def encode_wait(wait: Wait) -> Optional[str]:
    """``wait`` as the server's ``?wait=`` parameter (whole milliseconds)."""
    if wait is None:
        return None
    if isinstance(wait, str):
        return wait
    if wait < 0:
        raise ValueError("wait must be 0 or more seconds")
    if wait == 0:
        return None
    return f"{max(1, int(round(wait * 1000)))}ms"


def wait_seconds(wait: Wait) -> float:
    """How long a waiting submission may block, for the HTTP timeout (5 min at most)."""
    if wait is None:
        return 0.0
    if isinstance(wait, str):
        return 300.0
    return min(float(wait), 300.0)


def submit_body(
    workflow: str,
    input: Any,
    version: Optional[str],
    idempotency_key: Optional[str],
    safe_retries: bool,
) -> Dict[str, Any]:
    """The body of ``POST /v1/runs``; with ``safe_retries`` and no key, a fresh key, so a
    request resent after a lost answer returns the run it made instead of a second one."""
    if idempotency_key == "":
        raise ValueError("idempotency_key must not be empty: pass None or a non-empty key")
    if idempotency_key is None and safe_retries:
        idempotency_key = f"weir-client-{uuid.uuid4()}"
    body: Dict[str, Any] = {"workflow": workflow, "input": input}
    if version is not None:
        body["version"] = version
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return body


def decide_body(
    decision: str,
    output: Any,
    reason: Optional[str],
    by: Optional[str],
    note: Optional[str],
    has_output: bool,
) -> Dict[str, Any]:
    """The body of ``POST /v1/reviews/{id}``."""
    body: Dict[str, Any] = {"decision": decision}
    if has_output:
        body["output"] = output
    if reason is not None:
        body["reason"] = reason
    if by is not None:
        body["by"] = by
    if note is not None:
        body["note"] = note
    return body


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(settings: Settings, response: httpx.Response, attempt: int) -> Optional[float]:
    """How long to wait before resending after ``response`` (``attempt`` is 0-based), or
    ``None`` to give up: only 429 and 503, at most ``max_retries`` times, each wait the
    server's ``Retry-After`` (else exponential backoff with jitter), capped."""
    if response.status_code not in RETRIED_STATUSES or attempt >= settings.max_retries:
        return None
    told = parse_retry_after(response.headers.get("retry-after"))
    if told is None:
        told = min(8.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2)
    return min(told, settings.max_retry_wait)


def reconnect_delay(failures: int) -> float:
    """Backoff before reopening a broken event stream (``failures`` in a row, from 1)."""
    return min(5.0, 0.1 * 2 ** (failures - 1))


def raise_for_error(response: httpx.Response) -> None:
    """Raises the API error a non-2xx response carries."""
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        body = response.text
    raise error_from_response(
        response.status_code,
        body,
        parse_retry_after(response.headers.get("retry-after")),
    )


def json_of(response: httpx.Response) -> Any:
    """The body of a successful response, as JSON."""
    raise_for_error(response)
    try:
        return response.json()
    except ValueError as err:
        raise ApiError(
            response.status_code, "bad_response", f"the server's answer is not JSON: {err}"
        ) from err


class SseDecoder:
    """Turns the lines of a ``text/event-stream`` into events (the WHATWG rules: ``event``,
    ``data`` (joined by newlines), ``id``, comments ignored, a blank line dispatches)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: List[str] = []
        self._id: Optional[str] = None

    def feed(self, line: str) -> Optional[Event]:
        """The event this line completes, if any."""
        if line.endswith("\r"):
            line = line[:-1]
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Optional[Event]:
        if not self._data and not self._event:
            return None
        event, data, sse_id = self._event or "message", "\n".join(self._data), self._id
        self._event, self._data, self._id = "", [], None
        return event_from_sse(event, data, sse_id)


def event_from_sse(event: str, data: str, sse_id: Optional[str]) -> Event:
    """One stream event as a model: a journal record, the final run, or anything else."""
    try:
        payload = json.loads(data) if data else None
    except ValueError:
        payload = data
    if event == "done" and isinstance(payload, Mapping):
        return Event(id=sse_id, event=event, run=RunRecord.model_validate(payload))
    if sse_id is not None and isinstance(payload, Mapping):
        return Event(id=sse_id, event=event, record=EventRecord.model_validate(payload))
    return Event(id=sse_id, event=event, data=payload)


def is_journal_event(event: Event) -> bool:
    """Whether an event is one of the run's journal events (these carry an id to resume after)."""
    return event.id is not None and event.record is not None
