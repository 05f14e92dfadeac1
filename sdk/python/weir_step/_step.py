"""The step decorator, the types a step author works with, and the exported world."""

import json
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

from componentize_py_types import Err
from wit_world.imports import types

from . import log

_registered: Optional["_Step"] = None


class StepError(Exception):
    """An error the step reports; the workflow's policies decide what happens next."""

    kind = "fatal"


class InvalidInput(StepError):
    """The input is malformed; retrying will not help."""

    kind = "invalid_input"


class Transient(StepError):
    """A passing failure (an upstream was down, a rate limit); a retry may succeed."""

    kind = "transient"


class Fatal(StepError):
    """A permanent failure; do not retry."""

    kind = "fatal"


class NeedsReview(StepError):
    """The step cannot decide alone; a human should look at this case."""

    kind = "needs_review"


@dataclass(frozen=True)
class Context:
    """Where the current attempt sits."""

    run_id: str
    step_id: str
    attempt: int
    #: Milliseconds left before the host stops this attempt, when a deadline is set.
    deadline_ms: Optional[int]


class Output:
    """A successful result: the payload plus an optional confidence and route label."""

    __slots__ = ("payload", "confidence", "route")

    def __init__(self, payload: Any, confidence: Optional[float] = None, route: Optional[str] = None):
        self.payload = payload
        # Clamped like the other SDKs do: the host only accepts 0.0 to 1.0.
        self.confidence = None if confidence is None else min(1.0, max(0.0, float(confidence)))
        self.route = route


@dataclass(frozen=True)
class _Step:
    func: Callable[[Context, Any], Any]
    name: str
    version: str
    description: str
    input_schema: Optional[dict]
    output_schema: Optional[dict]
    capabilities: tuple


def step(
    name: str,
    version: str,
    description: str = "",
    input_schema: Optional[dict] = None,
    output_schema: Optional[dict] = None,
    capabilities: tuple = (),
):
    """Registers the decorated function as the component's step.

    ``input_schema`` and ``output_schema`` are JSON Schemas (as dicts): the host checks the
    input before the step runs and the payload after. ``capabilities`` names what the step
    expects to be granted (``http``, ``files``, ``models``). One step per component.
    """

    def register(func: Callable[[Context, Any], Any]) -> Callable[[Context, Any], Any]:
        global _registered
        if _registered is not None and _registered.func is not func:
            raise RuntimeError(
                f"a component holds one step: {_registered.func.__name__} is already "
                f"registered, so {func.__name__} cannot be"
            )
        _registered = _Step(
            func, name, version, description, input_schema, output_schema, tuple(capabilities)
        )
        return func

    return register


def _registered_step() -> _Step:
    if _registered is None:
        raise RuntimeError("no function is decorated with @weir_step.step in this component")
    return _registered


def _describe():
    s = _registered_step()
    return types.StepMeta(
        name=s.name,
        version=s.version,
        description=s.description,
        input_schema=None if s.input_schema is None else json.dumps(s.input_schema),
        output_schema=None if s.output_schema is None else json.dumps(s.output_schema),
        capabilities=list(s.capabilities),
    )


def _to_wit_error(error: Exception):
    from .model import ModelError

    if isinstance(error, ModelError):
        return types.StepError_ModelFailed(error._wit)
    message = str(error) or type(error).__name__
    if isinstance(error, InvalidInput):
        return types.StepError_InvalidInput(message)
    if isinstance(error, Transient):
        return types.StepError_Transient(message)
    if isinstance(error, NeedsReview):
        return types.StepError_NeedsReview(message)
    return types.StepError_Fatal(message)


def _run(ctx, input_text: str):
    s = _registered_step()
    try:
        value = json.loads(input_text)
    except ValueError as e:
        raise Err(types.StepError_InvalidInput(f"input is not JSON: {e}"))
    context = Context(ctx.run_id, ctx.step_id, ctx.attempt, ctx.deadline_ms)
    try:
        result = s.func(context, value)
    except StepError as e:
        raise Err(_to_wit_error(e))
    except Exception as e:  # a bug in the step: report it, do not hide it
        log.error("".join(traceback.format_exception(e)).rstrip())
        message = f"{type(e).__name__}: {e}"
        if isinstance(e, ModuleNotFoundError):
            # The component holds only what was imported when it was built.
            message += " (import it at the top of app.py, so it is loaded when the step is built)"
        raise Err(types.StepError_Fatal(message))
    output = result if isinstance(result, Output) else Output(result)
    try:
        payload = json.dumps(output.payload)
    except (TypeError, ValueError) as e:
        raise Err(types.StepError_Fatal(f"output could not be encoded as JSON: {e}"))
    return types.StepOutput(payload=payload, confidence=output.confidence, route=output.route)


class WitWorld:
    """The `weir:step` world's exports, as componentize-py expects them."""

    def describe(self):
        return _describe()

    def run(self, ctx, input: str):
        return _run(ctx, input)
