"""The ticket desk, calling a real Weir sidecar through the Python client."""

from __future__ import annotations

import httpx


def test_a_refund_ticket_is_routed_to_billing(desk: str) -> None:
    answer = httpx.post(
        f"{desk}/tickets",
        json={"subject": "Refund", "body": "I was charged twice for my order", "id": "T-1"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded"
    assert body["decision"]["queue"] == "billing"
    # The desk's ticket id is the idempotency key: a resubmission is the same run.
    again = httpx.post(
        f"{desk}/tickets",
        json={"subject": "Refund", "body": "I was charged twice for my order", "id": "T-1"},
        timeout=30,
    ).json()
    assert again["run_id"] == body["run_id"]
    assert httpx.get(f"{desk}/tickets/{body['run_id']}").json() == body


def test_spam_is_closed_and_a_bad_channel_is_refused_by_field(desk: str) -> None:
    spam = httpx.post(
        f"{desk}/tickets",
        json={
            "subject": "You have WON",
            "body": "Claim your crypto: https://a.example https://b.example https://c.example https://d.example",
        },
        timeout=30,
    ).json()
    assert spam["status"] == "succeeded" and spam["decision"]["status"] == "closed"
    refused = httpx.post(
        f"{desk}/tickets", json={"subject": "Hi", "body": "Hello", "channel": "fax"}, timeout=30
    )
    assert refused.status_code == 422
    assert [v["path"] for v in refused.json()["detail"]["violations"]] == ["/channel"]
    assert httpx.get(f"{desk}/tickets/no-such-run").status_code == 404
