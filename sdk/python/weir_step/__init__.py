"""Write Weir workflow steps in Python.

A step is one function, registered with the :func:`step` decorator::

    from weir_step import step, InvalidInput, Output, log

    @step(name="shout", version="1.0.0", description="Upper-cases a subject")
    def run(ctx, ticket):
        if not ticket.get("subject"):
            raise InvalidInput("subject is empty")
        log.info(f"attempt {ctx.attempt} of step {ctx.step_id}")
        return Output({"subject": ticket["subject"].upper()}, confidence=1.0)

``weir build`` turns the module into a WebAssembly component with componentize-py; the
host runs it under the same limits and grants as a step written in any other language.

The function receives a :class:`Context` and the input decoded from JSON, and returns any
JSON-serialisable value (the payload) or an :class:`Output` that adds a confidence and a
route. It fails by raising :class:`InvalidInput`, :class:`Transient`, :class:`Fatal`,
:class:`NeedsReview` or a :class:`weir_step.model.ModelError`; any other exception is a bug
and reaches the host as a fatal error carrying its type and message, with the traceback
logged at level error.
"""

from . import config, log, model, state
from ._step import (
    Context,
    Fatal,
    InvalidInput,
    NeedsReview,
    Output,
    StepError,
    Transient,
    step,
)

__all__ = [
    "Context",
    "Fatal",
    "InvalidInput",
    "NeedsReview",
    "Output",
    "StepError",
    "Transient",
    "config",
    "log",
    "model",
    "state",
    "step",
]
