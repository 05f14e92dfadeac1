"""Fixtures: a fresh ``weir serve`` per test (see ``weir_harness``) and its model stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from standin import Standin
from weir_harness import Weir, start, stop


@pytest.fixture
def standin() -> Iterator[Standin]:
    server = Standin()
    yield server
    server.close()


@pytest.fixture
def weir(tmp_path: Path, standin: Standin) -> Iterator[Weir]:
    """A ``weir serve`` with the default queue."""
    server = start(tmp_path, standin, [])
    yield server
    stop(server)


@pytest.fixture
def small_weir(tmp_path: Path, standin: Standin) -> Iterator[Weir]:
    """A ``weir serve`` that drives one run at a time and queues one more."""
    server = start(tmp_path, standin, ["--workers", "1", "--queue", "1"])
    yield server
    stop(server)
