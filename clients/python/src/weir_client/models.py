"""Typed models of what the Weir API returns.

Each model mirrors a schema of the server's OpenAPI document (``GET /openapi.json``) under
the same name; the client's test suite compares every model's fields with the document of a
running server, so a field added, renamed or dropped on either side fails a test. Unknown
fields are kept (``extra="allow"``), so an older client still reads a newer server.
"""

from __future__ import annotations

from typing import Any, List, Optional

from pydantic import BaseModel, ConfigDict

JSON = Any
"""Any JSON value (run inputs and outputs, step payloads, failures)."""

RUN_STATUSES = (
    "pending",
    "running",
    "awaiting_review",
    "succeeded",
    "failed",
    "cancelled",
)
"""Every status a run can have; the last three are final."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RunRecord(_Model):
    """A run: one execution of one workflow version on one input."""

    id: str
    workflow: str
    version: str
    status: str
    input: JSON
    output: Optional[JSON] = None
    failure: Optional[JSON] = None
    review: Optional[JSON] = None
    """While awaiting review, what it waits for: ``{"step", "review"}`` or ``{"step", "failure"}``."""
    idempotency_key: Optional[str] = None
    source_run: Optional[str] = None
    """The run this one reruns from a step, if it is a rerun."""
    created_ms: int
    updated_ms: int

    @property
    def ended(self) -> bool:
        """Whether the run has ended (succeeded, failed or cancelled)."""
        return self.status in ("succeeded", "failed", "cancelled")

    @property
    def settled(self) -> bool:
        """Whether the run has stopped moving on its own (ended, or waiting for review)."""
        return self.ended or self.status == "awaiting_review"


class RunSubmitted(_Model):
    """The answer to a submission."""

    created: bool
    run: RunRecord


class StepRecord(_Model):
    """A step of a run, pinned to the plugin digest it runs."""

    step_id: str
    plugin_digest: str
    status: str
    output: Optional[JSON] = None
    confidence: Optional[float] = None
    route: Optional[str] = None
    failure: Optional[JSON] = None
    skip_reason: Optional[str] = None
    attempts: int


class AttemptRecord(_Model):
    """One attempt of a step."""

    step_id: str
    attempt: int
    input_digest: str
    status: str
    failure: Optional[JSON] = None
    started_ms: int
    finished_ms: Optional[int] = None
    latency_us: Optional[int] = None
    fuel: Optional[int] = None
    memory_peak: Optional[int] = None
    logs: Optional[JSON] = None
    # What the attempt read from the host (clocks, random bytes, HTTP), for `weir replay`.
    tape: Optional[JSON] = None


class ModelCallRecord(_Model):
    """One model call of an attempt: what was asked, what came back, what it cost."""

    run_id: str
    step_id: str
    attempt: int
    seq: int
    workflow: str
    version: str
    alias: str
    provider: Optional[str] = None
    model: Optional[str] = None
    prompt_id: Optional[str] = None
    prompt_hash: Optional[str] = None
    request: JSON
    response: Optional[JSON] = None
    outcome: str
    error: Optional[str] = None
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    latency_us: int
    upstream_attempts: int
    at_ms: int


class RunUsage(_Model):
    """What a run consumed over all its attempts."""

    attempts: int
    latency_us: int
    fuel: int
    memory_peak: int
    model_tokens: int
    model_cost_micros: int


class Redaction(_Model):
    """One redaction the workflow's ``[redact]`` made: where, by which rule, how many."""

    at: str
    rule: str
    count: int


class RunDetail(_Model):
    """A run with its steps, attempts, model calls, usage and redactions."""

    run: RunRecord
    steps: List[StepRecord]
    attempts: List[AttemptRecord]
    model_calls: List[ModelCallRecord]
    usage: RunUsage
    redacted: List[Redaction]

    def step(self, step_id: str) -> StepRecord:
        """The step with this id (``KeyError`` when the workflow has none)."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)


class RunPage(_Model):
    """A page of runs, newest first; ``next`` is the cursor of the following page."""

    runs: List[RunRecord]
    next: Optional[str] = None


class EventRecord(_Model):
    """One entry of a run's event log."""

    seq: int
    at_ms: int
    kind: str
    step_id: Optional[str] = None
    data: JSON


class Event(_Model):
    """One server-sent event of a run's stream: a journal event, or the final ``done``.

    ``record`` is the journal event (``None`` on ``done``); ``run`` is the settled run on
    ``done`` (``None`` otherwise); ``data`` is the payload of any other event.
    """

    id: Optional[str] = None
    event: str
    record: Optional[EventRecord] = None
    run: Optional[RunRecord] = None
    data: Optional[JSON] = None

    @property
    def done(self) -> bool:
        """Whether this is the stream's last event."""
        return self.event == "done"


class ReviewRecord(_Model):
    """A review: a run parked for a person, and the person's decision."""

    id: str
    run_id: str
    step_id: str
    reason: str
    data: JSON
    status: str
    created_ms: int
    expires_ms: Optional[int] = None
    default_action: Optional[str] = None
    decided_by: Optional[str] = None
    decided_ms: Optional[int] = None
    note: Optional[str] = None
    before: Optional[JSON] = None
    after: Optional[JSON] = None


class ReviewList(_Model):
    """Reviews, oldest first."""

    reviews: List[ReviewRecord]


class WorkflowStepView(_Model):
    """A step of an active workflow version."""

    id: str
    plugin: str
    digest: str
    limits: JSON


class WorkflowView(_Model):
    """An active workflow version."""

    name: str
    version: str
    description: str
    input_schema: Optional[JSON] = None
    steps: List[WorkflowStepView]


class Rejected(_Model):
    """A workflow or plugin file that failed to load (the previous version keeps serving)."""

    file: str
    error: str
    at_ms: int


class WorkflowList(_Model):
    """The active workflow versions, and the files that failed to load."""

    workflows: List[WorkflowView]
    rejected: List[Rejected]


class PluginView(_Model):
    """A plugin on offer."""

    name: str
    version: str
    description: str
    digest: str
    size_bytes: int
    imports: List[str]
    capabilities: List[str]
    input_schema: Optional[JSON] = None
    output_schema: Optional[JSON] = None


class PluginList(_Model):
    """The plugins on offer."""

    plugins: List[PluginView]


# The models checked field by field against the server's OpenAPI document.
CHECKED_MODELS = (
    RunRecord,
    RunSubmitted,
    StepRecord,
    AttemptRecord,
    ModelCallRecord,
    RunUsage,
    Redaction,
    RunDetail,
    RunPage,
    EventRecord,
    ReviewRecord,
    ReviewList,
    WorkflowStepView,
    WorkflowView,
    Rejected,
    WorkflowList,
    PluginView,
    PluginList,
)
