"""A Python client for the Weir sidecar (``weir serve``).

Submit runs and wait for them, list and follow them (server-sent events that resume after a
dropped connection), cancel them, decide reviews, and see the workflows and plugins on offer;
sync (``Client``) and asyncio (``AsyncClient``), typed with pydantic models that are checked
against the server's OpenAPI document.

>>> from weir_client import Client                                  # doctest: +SKIP
>>> with Client("http://127.0.0.1:7878", token="dev-token") as weir:  # doctest: +SKIP
...     submitted = weir.submit("ticket-triage", {"subject": "Refund", "body": "Charged twice"}, wait=30)
...     print(submitted.run.status, submitted.run.output)
"""

from .aio import AsyncClient
from .client import Client
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    Violation,
    WeirError,
)
from .models import (
    AttemptRecord,
    Event,
    EventRecord,
    ModelCallRecord,
    PluginView,
    ReviewRecord,
    Redaction,
    RunDetail,
    RunPage,
    RunRecord,
    RunSubmitted,
    RunUsage,
    StepRecord,
    WorkflowList,
    WorkflowView,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AttemptRecord",
    "BadRequest",
    "Client",
    "Conflict",
    "Event",
    "EventRecord",
    "InternalError",
    "InvalidInput",
    "MethodNotAllowed",
    "ModelCallRecord",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginView",
    "ReviewRecord",
    "Redaction",
    "RunDetail",
    "RunPage",
    "RunRecord",
    "RunSubmitted",
    "RunUsage",
    "StepRecord",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "Violation",
    "WeirError",
    "WorkflowList",
    "WorkflowView",
]
