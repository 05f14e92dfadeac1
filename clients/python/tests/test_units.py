"""The parts that need no server: the event decoder, Retry-After, error mapping, bodies."""

from __future__ import annotations

import email.utils

import pytest

from weir_client import _core
from weir_client.errors import InternalError, InvalidInput, NotFound, Overloaded, error_from_response


def test_the_decoder_follows_the_event_stream_rules() -> None:
    decoder = _core.SseDecoder()
    lines = [
        ": keep-alive",
        "id: 3",
        "event: step_started",
        'data: {"seq": 3, "at_ms": 1, "kind": "step_started",',
        'data: "step_id": "clean", "data": {"attempt": 1}}',
        "",
        "event: done",
        'data: {"id": "r", "workflow": "w", "version": "1.0.0", "status": "succeeded",',
        'data: "input": {}, "created_ms": 1, "updated_ms": 2}',
        "",
    ]
    events = [e for e in map(decoder.feed, lines) if e is not None]
    assert [e.event for e in events] == ["step_started", "done"]
    assert events[0].id == "3" and events[0].record is not None
    assert events[0].record.step_id == "clean" and events[0].record.data == {"attempt": 1}
    assert events[1].done and events[1].run is not None and events[1].run.status == "succeeded"
    assert not _core.is_journal_event(events[1])


def test_an_unknown_event_is_not_a_journal_event() -> None:
    decoder = _core.SseDecoder()
    events = [decoder.feed(line) for line in ["event: shutdown", 'data: {"reason": "draining"}', ""]]
    event = events[-1]
    assert event is not None and event.data == {"reason": "draining"}
    assert not _core.is_journal_event(event)


def test_retry_after_reads_seconds_and_dates() -> None:
    assert _core.parse_retry_after("2") == 2.0
    assert _core.parse_retry_after(" 0.5 ") == 0.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert _core.parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    assert _core.parse_retry_after("soon") is None
    assert _core.parse_retry_after(None) is None


def test_errors_map_by_code_then_by_status() -> None:
    lines = ['at /subject: 42 is not of type "string"', "at /: \"body\" is a required property", "odd"]
    body = {"error": {"code": "invalid_input", "message": "bad", "details": {"violations": lines}}}
    err = error_from_response(422, body, None)
    assert isinstance(err, InvalidInput)
    assert [(v.path, v.message) for v in err.violations] == [
        ("/subject", '42 is not of type "string"'),
        ("/", '"body" is a required property'),
        (None, "odd"),
    ]
    assert str(err.violations[0]) == lines[0]
    assert isinstance(error_from_response(429, {"error": {"code": "overloaded", "message": "full"}}, 1.0), Overloaded)
    plain = error_from_response(404, "Not Found", None)
    assert isinstance(plain, NotFound) and plain.message == "Not Found"
    assert isinstance(error_from_response(502, "", None), InternalError)


def test_bodies_and_waits() -> None:
    assert _core.encode_wait(1.5) == "1500ms"
    assert _core.encode_wait("2m") == "2m"
    assert _core.encode_wait(0) is None
    with pytest.raises(ValueError):
        _core.encode_wait(-1)
    body = _core.submit_body("w", {"a": 1}, None, None, safe_retries=True)
    assert body["idempotency_key"].startswith("weir-client-")
    assert "idempotency_key" not in _core.submit_body("w", {}, "1.0.0", None, safe_retries=False)
    with pytest.raises(ValueError):
        _core.submit_body("w", {}, None, "", safe_retries=False)
