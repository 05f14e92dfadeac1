"""The asyncio client against a real ``weir serve``: the same surface, awaited."""

from __future__ import annotations

import asyncio

import pytest

from weir_harness import TOKEN, Weir
from weir_client import AsyncClient, Conflict, InvalidInput

BILLING = {"subject": "Refund please", "body": "I was charged twice for my order #4411."}
VAGUE = {"subject": "Hello", "body": "Something vague happened, can you look?"}


async def test_submit_wait_and_follow_events(weir: Weir) -> None:
    async with AsyncClient(weir.url, token=TOKEN) as c:
        submitted = await c.submit("ticket-triage", BILLING, wait=30, safe_retries=True)
        assert submitted.created and submitted.run.status == "succeeded"
        kinds = [e.event async for e in c.events(submitted.run.id)]
        assert kinds[0] == "run_created" and kinds[-1] == "done"
        assert "run_succeeded" in kinds
        detail = await c.get_run(submitted.run.id)
        assert detail.step("classify_llm").route == "billing"


async def test_concurrent_submissions_and_paging(weir: Weir) -> None:
    async with AsyncClient(weir.url, token=TOKEN) as c:
        runs = await asyncio.gather(
            *(c.submit("ticket-triage", BILLING, idempotency_key=f"k-{i}", wait=30) for i in range(6))
        )
        assert all(s.run.status == "succeeded" for s in runs)
        listed = [r.id async for r in c.list_runs(page_size=4)]
        assert sorted(listed) == sorted(s.run.id for s in runs)


async def test_reviews_and_errors(weir: Weir) -> None:
    async with AsyncClient(weir.url, token=TOKEN) as c:
        run = (await c.submit("gated-triage", VAGUE, wait=30)).run
        assert run.status == "awaiting_review"
        [review] = [r for r in await c.reviews.list() if r.run_id == run.id]
        edited = await c.reviews.edit(review.id, {"label": "billing", "confidence": 1.0}, by="bo")
        assert edited.status == "edited" and edited.after["label"] == "billing"
        final = [e async for e in c.events(run.id)][-1]
        assert final.run is not None and final.run.status == "succeeded"
        with pytest.raises(Conflict):
            await c.reviews.approve(review.id)
        with pytest.raises(InvalidInput) as raised:
            await c.submit("ticket-triage", {"subject": "no body"})
        assert any("body" in v.message and v.path == "/" for v in raised.value.violations)
