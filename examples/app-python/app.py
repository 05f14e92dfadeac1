"""A support desk's ticket service that asks Weir to triage each ticket.

``POST /tickets`` submits the ticket to the ``ticket-triage`` workflow on the Weir sidecar
and answers with the decision: the queue and priority when the run finished, ``closed``
for spam or empty tickets, ``in_review`` (202) when a person has to decide first, and a 422
naming every invalid field when the ticket is not one. ``GET /tickets/{run_id}`` reads the
decision later (for tickets that went to review). The sidecar's URL and token come from
``WEIR_URL`` and ``WEIR_API_TOKEN``.

    uvicorn app:app --port 8000
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel

from weir_client import AsyncClient, InvalidInput, NotFound, Overloaded, RunRecord

WORKFLOW = "ticket-triage"


class Ticket(BaseModel):
    subject: str
    body: str
    channel: Optional[str] = None
    id: Optional[str] = None  # the desk's own ticket id: resubmitting it never triages twice


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncClient() as weir:
        app.state.weir = weir
        yield


app = FastAPI(title="ticket desk", lifespan=lifespan)


def decision(run: RunRecord) -> Dict[str, Any]:
    """What the desk shows for a run."""
    answer: Dict[str, Any] = {"run_id": run.id, "status": run.status}
    if run.status == "succeeded":
        answer["decision"] = run.output
    elif run.status == "awaiting_review":
        answer["status"] = "in_review"
    elif run.failure is not None:
        answer["failure"] = run.failure
    return answer


@app.post("/tickets")
async def triage(ticket: Ticket, response: Response) -> Dict[str, Any]:
    weir: AsyncClient = app.state.weir
    payload = ticket.model_dump(exclude_none=True, exclude={"id"})
    try:
        submitted = await weir.submit(
            WORKFLOW,
            payload,
            idempotency_key=f"desk-{ticket.id}" if ticket.id else None,
            safe_retries=True,
            wait=20,
        )
    except InvalidInput as err:
        violations = [{"path": v.path, "message": v.message} for v in err.violations]
        raise HTTPException(422, {"message": err.message, "violations": violations}) from err
    except Overloaded as err:
        raise HTTPException(503, "triage is busy, try again shortly", {"Retry-After": str(int(err.retry_after or 1))}) from err
    run = submitted.run
    if not run.ended:
        response.status_code = 202
    return decision(run)


@app.get("/tickets/{run_id}")
async def ticket(run_id: str) -> Dict[str, Any]:
    weir: AsyncClient = app.state.weir
    try:
        detail = await weir.get_run(run_id)
    except NotFound as err:
        raise HTTPException(404, f"no ticket run {run_id}") from err
    return decision(detail.run)
