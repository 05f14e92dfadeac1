"""The sync client against a real ``weir serve``."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import pytest

from weir_harness import PLUGINS, TOKEN, Weir
from proxy import CuttingProxy
from weir_client import (
    Client,
    Conflict,
    InvalidInput,
    NotFound,
    Overloaded,
    Unauthorized,
)

BILLING = {"subject": "Refund please", "body": "I was charged twice for my order #4411."}
VAGUE = {"subject": "Hello", "body": "Something vague happened, can you look?"}


def client(weir: Weir, **kwargs: object) -> Client:
    return Client(weir.url, token=TOKEN, **kwargs)  # type: ignore[arg-type]


def test_submit_waits_for_the_run_and_reads_it_back(weir: Weir) -> None:
    with client(weir) as c:
        submitted = c.submit("ticket-triage", BILLING, wait=30)
        assert submitted.created
        run = submitted.run
        assert run.status == "succeeded", run
        assert run.workflow == "ticket-triage" and run.version == "1.0.0"
        assert run.output["queue"] == "billing"
        detail = c.get_run(run.id)
        assert detail.run.id == run.id
        assert detail.step("classify_llm").route == "billing"
        assert [call.outcome for call in detail.model_calls] == ["ok"]
        assert detail.usage.model_tokens > 0
        assert len(weir.standin.requests) == 1


def test_the_same_idempotency_key_returns_the_same_run(weir: Weir) -> None:
    with client(weir) as c:
        first = c.submit("ticket-triage", BILLING, idempotency_key="order-4411", wait=30)
        again = c.submit("ticket-triage", BILLING, idempotency_key="order-4411")
        assert first.created and not again.created
        assert again.run.id == first.run.id
        with pytest.raises(Conflict):
            c.submit("ticket-triage", VAGUE, idempotency_key="order-4411")
        with pytest.raises(ValueError, match="must not be empty"):
            c.submit("ticket-triage", BILLING, idempotency_key="")


def test_safe_retries_make_a_key_for_every_submission(weir: Weir) -> None:
    with client(weir) as c:
        one = c.submit("ticket-triage", BILLING, safe_retries=True)
        two = c.submit("ticket-triage", BILLING, safe_retries=True)
        assert one.run.idempotency_key and two.run.idempotency_key
        assert one.run.idempotency_key != two.run.idempotency_key
        assert one.run.id != two.run.id


def test_a_schema_violation_raises_invalid_input_with_its_paths(weir: Weir) -> None:
    with client(weir) as c, pytest.raises(InvalidInput) as raised:
        c.submit("ticket-triage", {"subject": 42, "extra": True})
    err = raised.value
    assert err.status == 422 and err.code == "invalid_input"
    paths = {v.path for v in err.violations}
    assert "/subject" in paths, err.violations
    text = " ".join(v.message for v in err.violations)
    assert "body" in text and "extra" in text, err.violations
    assert list(client(weir).list_runs()) == []


def test_a_full_queue_is_retried_after_retry_after(small_weir: Weir) -> None:
    small_weir.standin.delay = 1.0
    impatient = client(small_weir, max_retries=0)
    overloaded = []
    # One run driven, one queued: the next submissions are refused until one ends.
    for _ in range(4):
        try:
            impatient.submit("ticket-triage", BILLING)
        except Overloaded as err:
            overloaded.append(err)
    assert overloaded, "the queue never filled"
    assert overloaded[0].retry_after == 1.0
    refused_before = small_weir.metric("weir_queue_rejected_total")
    started = time.monotonic()
    patient = client(small_weir, max_retries=10, max_retry_wait=2.0)
    submitted = patient.submit("ticket-triage", BILLING, wait=60)
    assert submitted.created and submitted.run.status == "succeeded"
    # It was refused at least once more and got in after waiting, not at once.
    assert small_weir.metric("weir_queue_rejected_total") > refused_before
    assert time.monotonic() - started >= 1.0


def test_the_event_stream_survives_a_dropped_connection(weir: Weir) -> None:
    weir.standin.delay = 1.0
    proxy = CuttingProxy(("127.0.0.1", weir.port))
    try:
        with client(weir) as direct, Client(proxy.url, token=TOKEN) as through:
            # A ticket no other test sends: a cached answer would end the run before the cut.
            ticket = {**BILLING, "body": f"{BILLING['body']} (stream {time.time_ns()})"}
            asked = len(weir.standin.requests)
            run = direct.submit("ticket-triage", ticket).run
            seen = []
            done = None
            for event in through.events(run.id):
                if event.done:
                    done = event
                    break
                seen.append(int(event.id))
                if len(seen) == 2:
                    proxy.cut()
            assert done is not None and done.run is not None
            assert done.run.status == "succeeded"
            assert len(weir.standin.requests) == asked + 1, "the model call was not held back"
            assert proxy.connections >= 2, "the stream was never reopened"
            # The whole log, read again in one go, is exactly what the broken stream gave.
            full = [int(e.id) for e in direct.events(run.id) if not e.done]
            assert seen == full
            assert seen == list(range(1, len(seen) + 1))
    finally:
        proxy.close()


def test_a_review_decided_through_the_client_resumes_the_run(weir: Weir) -> None:
    with client(weir) as c:
        run = c.submit("gated-triage", VAGUE, wait=30).run
        assert run.status == "awaiting_review"
        pending = [r for r in c.reviews.list() if r.run_id == run.id]
        assert len(pending) == 1
        review = c.reviews.get(pending[0].id)
        assert review.step_id == "classify" and review.status == "pending"
        decided = c.reviews.approve(review.id, by="ana", note="feedback it is")
        assert decided.status == "approved" and decided.decided_by == "ana"
        last = None
        for event in c.events(run.id):
            last = event
        assert last is not None and last.done and last.run is not None
        assert last.run.status == "succeeded"
        assert last.run.output["label"] == "feedback"
        with pytest.raises(Conflict):
            c.reviews.reject(review.id, "too late")
        assert [r.id for r in c.reviews.list(status="approved")] == [review.id]


def test_list_runs_iterates_every_page(weir: Weir) -> None:
    with client(weir) as c:
        ids = [c.submit("ticket-triage", BILLING).run.id for _ in range(5)]
        listed = [r.id for r in c.list_runs(workflow="ticket-triage", page_size=2)]
        assert listed == sorted(ids, reverse=True)
        assert [r.id for r in c.list_runs(workflow="gated-triage")] == []


def test_cancel_stops_a_run_and_an_ended_run_conflicts(weir: Weir) -> None:
    weir.standin.delay = 2.0
    with client(weir) as c:
        run = c.submit("ticket-triage", BILLING).run
        cancelled = c.cancel(run.id, reason="customer withdrew")
        assert cancelled.status == "cancelled"
        with pytest.raises(Conflict):
            c.cancel(run.id)
        with pytest.raises(NotFound):
            c.cancel("no-such-run")


def test_the_catalog_lists_workflows_and_takes_uploads(weir: Weir) -> None:
    with client(weir) as c:
        names = {(w.name, w.version) for w in c.workflows().workflows}
        assert {("ticket-triage", "1.0.0"), ("gated-triage", "1.0.0")} <= names
        offered = {p.name for p in c.plugins.list()}
        assert "classify-llm" in offered or "classify_llm" in offered, offered
        component = PLUGINS / "route_ticket.wasm"
        uploaded = c.plugins.upload(component)
        assert uploaded.digest.endswith(hashlib.sha256(component.read_bytes()).hexdigest())


def test_a_wrong_token_is_unauthorized_and_the_env_token_is_used(
    weir: Weir, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(weir.url, token="wrong") as c, pytest.raises(Unauthorized):
        c.get_run("anything")
    monkeypatch.setenv("WEIR_API_TOKEN", TOKEN)
    with Client(weir.url) as c:
        assert c.workflows().workflows
        assert c.healthy() and c.ready()


def test_a_server_that_is_gone_raises_transport_error() -> None:
    from weir_client import TransportError

    with socket_closed_port() as port, Client(f"http://127.0.0.1:{port}", max_retries=1) as c:
        with pytest.raises(TransportError):
            c.get_run("x")
        assert not c.healthy()


class socket_closed_port:
    """A port nothing listens on, for the length of a ``with``."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        pass


def test_concurrent_submissions_from_threads_share_one_client(weir: Weir) -> None:
    with client(weir) as c:
        results: list = []

        def submit() -> None:
            results.append(c.submit("ticket-triage", BILLING, wait=30).run.status)

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["succeeded"] * 6
    assert httpx.get(f"{weir.url}/healthz").status_code == 200
