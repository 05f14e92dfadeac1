"""The step's configuration table from the workflow (or `weir step run --config`)."""

import json
from typing import Any

from wit_world.imports import config as wit

_MISSING = object()


def get(key: str, default: Any = None) -> Any:
    """The value under ``key``, decoded from JSON, or ``default`` when it is absent."""
    text = wit.get(key)
    return default if text is None else json.loads(text)


def require(key: str) -> Any:
    """The value under ``key``; a missing key is the workflow's mistake (fatal)."""
    from ._step import Fatal

    value = get(key, _MISSING)
    if value is _MISSING:
        raise Fatal(f"config key `{key}` is required")
    return value


def all() -> dict:
    """The whole table."""
    return json.loads(wit.all())
