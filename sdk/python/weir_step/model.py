"""Chat completions from the models the host is configured with.

A step names a model alias (``fast``, ``smart``), never a provider or a key; the host
applies its policies (timeouts, retries, breaker, rate limits, cache, budgets) and journals
the call. A failure raises :class:`ModelError`; left uncaught, it fails the step with the
typed ``model`` failure the workflow's fallback rules match.
"""

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import model as wit

from ._step import StepError, Transient

_KINDS = {
    "ModelError_Denied": "denied",
    "ModelError_NotConfigured": "not_configured",
    "ModelError_Unavailable": "unavailable",
    "ModelError_RateLimited": "rate_limited",
    "ModelError_BudgetExceeded": "budget_exceeded",
    "ModelError_DeadlineExceeded": "deadline_exceeded",
    "ModelError_Rejected": "rejected",
}


class ModelError(StepError):
    """A model call failed; ``kind`` says why (``unavailable``, ``budget_exceeded``, ...)."""

    kind = "model"

    def __init__(self, wit_error):
        self._wit = wit_error
        self.model_kind = _KINDS.get(type(wit_error).__name__, "rejected")
        self.message = wit_error.value
        super().__init__(f"model {self.model_kind}: {self.message}")


@dataclass(frozen=True)
class Response:
    """A completion."""

    content: str
    alias: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool

    def parse(self) -> Any:
        """The content decoded as JSON; an answer that is not JSON is a transient failure."""
        try:
            return json.loads(self.content)
        except ValueError as e:
            raise Transient(f"the model's answer is not the JSON expected: {e}")


def complete(
    alias: str,
    messages: Sequence[Tuple[str, str]] = (),
    *,
    system: Optional[str] = None,
    user: Optional[str] = None,
    prompt: Optional[str] = None,
    variables: Optional[dict] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    json_mode: bool = False,
) -> Response:
    """Asks the model behind ``alias`` for a completion.

    ``messages`` are ``(role, content)`` pairs; ``system`` and ``user`` append one message
    each. ``prompt`` names a template from the workflow's ``[prompts]`` table, rendered by
    the host with ``variables`` and appended as a user message.
    """
    convo = [wit.Message(role=r, content=c) for r, c in messages]
    if system is not None:
        convo.append(wit.Message(role="system", content=system))
    if user is not None:
        convo.append(wit.Message(role="user", content=user))
    prompt_ref = None
    if prompt is not None:
        prompt_ref = wit.PromptRef(id=prompt, variables=json.dumps(variables or {}))
    request = wit.Request(
        alias=alias,
        messages=convo,
        prompt=prompt_ref,
        max_tokens=max_tokens,
        temperature=temperature,
        json=json_mode,
    )
    try:
        r = wit.complete(request)
    except Err as e:
        raise ModelError(e.value)
    return Response(
        r.content, r.alias, r.model, r.prompt_tokens, r.completion_tokens, r.cost_usd, r.cached
    )
