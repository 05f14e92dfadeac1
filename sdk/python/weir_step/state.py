"""Small durable key/value state scoped to the run: what one step sets, later steps read."""

import json
from typing import Any

from componentize_py_types import Err
from wit_world.imports import state as wit


def get(key: str, default: Any = None) -> Any:
    """The value under ``key``, decoded from JSON, or ``default`` when it is unset."""
    text = wit.get(key)
    return default if text is None else json.loads(text)


def set(key: str, value: Any) -> None:
    """Sets ``key`` to ``value`` (stored as JSON). Past the host's limits it raises Fatal."""
    from ._step import Fatal

    try:
        wit.set(key, json.dumps(value))
    except Err as e:
        raise Fatal(f"state key `{key}` could not be set: {e.value}")


def delete(key: str) -> None:
    """Removes ``key``."""
    wit.delete(key)
