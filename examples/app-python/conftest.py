"""Fixtures: a real ``weir serve`` (the client tests' harness) and this app under uvicorn,
pointed at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "clients" / "python" / "tests"))

from standin import Standin  # noqa: E402
from weir_harness import TOKEN, free_port, start, stop  # noqa: E402


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[str]:
    """The app's URL, with a sidecar behind it."""
    standin = Standin()
    weir = start(tmp_path, standin, [])
    port = free_port()
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=HERE,
        env={**os.environ, "WEIR_URL": weir.url, "WEIR_API_TOKEN": TOKEN},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if app.poll() is not None:
                pytest.fail(f"the app exited: {(tmp_path / 'app.log').read_text()}")
            try:
                httpx.get(f"{url}/docs", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("the app did not start")
                time.sleep(0.1)
        yield url
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=10)
        stop(weir)
        standin.close()
