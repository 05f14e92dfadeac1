"""A real ``weir serve`` on loopback for tests, with the ticket-triage example, a workflow
with a review gate, and a model provider stand-in behind the ``smart`` alias.

The ``weir`` binary is ``$WEIR_BIN``, else ``$CARGO_TARGET_DIR/debug/weir`` (``target/``
by default); the example's plugins must be built (``scripts/test`` does both).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import httpx
import pytest

from standin import Standin

REPO = Path(__file__).resolve().parents[3]
TOKEN = "client-test-token"
EXAMPLE = REPO / "examples" / "ticket-triage"
PLUGINS = REPO / "plugins" / "target" / "wasm32-wasip2" / "release"


def weir_bin() -> Path:
    if os.environ.get("WEIR_BIN"):
        return Path(os.environ["WEIR_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "weir"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REVIEW_WORKFLOW = """
# A classifier behind a confidence gate: an unsure answer parks the run for a person.
name = "gated-triage"
version = "1.0.0"
description = "Classify a ticket with the model; unsure answers wait for review"

[prompts]
classify = "{prompt}"

[input-schema]
type = "object"
required = ["subject", "body"]
[input-schema.properties.subject]
type = "string"
[input-schema.properties.body]
type = "string"

[[steps]]
id = "classify"
plugin = "{plugin}"
grants = {{ models = ["smart"] }}
review = {{ when = "steps.classify.confidence < 0.6" }}
"""


@dataclass
class Weir:
    """A running ``weir serve``: where it listens and what is behind it."""

    url: str
    port: int
    standin: Standin
    process: subprocess.Popen
    log: Path

    def metric(self, name: str) -> float:
        """The sum of a Prometheus metric's samples on ``/metrics``."""
        text = httpx.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        ).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def start(tmp: Path, standin: Standin, extra: List[str]) -> Weir:
    binary = weir_bin()
    if not binary.exists():
        pytest.fail(f"no weir binary at {binary}: build it with `cargo build -p weir` or set WEIR_BIN")
    for plugin in ("validate_json", "classify_llm", "route_ticket"):
        if not (PLUGINS / f"{plugin}.wasm").exists():
            pytest.fail(
                f"the example's plugins are not built ({PLUGINS}): run "
                "`(cd plugins && cargo build --release --target wasm32-wasip2 --target-dir target)`"
            )
    workflows = tmp / "workflows"
    workflows.mkdir()
    example = (EXAMPLE / "workflow.toml").read_text()
    # The example names its plugins relative to its own directory: make them absolute.
    example = example.replace('"../../', f'"{REPO}/')
    example = example.replace('"prompts/', f'"{EXAMPLE}/prompts/')
    (workflows / "ticket-triage.toml").write_text(example)
    (workflows / "gated-triage.toml").write_text(
        REVIEW_WORKFLOW.format(
            prompt=EXAMPLE / "prompts" / "classify.j2",
            plugin=PLUGINS / "classify_llm.wasm",
        )
    )
    config = tmp / "weir.toml"
    config.write_text(
        f"""
[providers.standin]
base-url = "{standin.url}"
timeout = "10s"

[models.smart]
provider = "standin"
model = "standin-1"
input-price = 1.0
output-price = 2.0
"""
    )
    port = free_port()
    log = tmp / "weir-serve.log"
    env = {**os.environ, "WEIR_API_TOKENS": TOKEN, "NO_COLOR": "1"}
    env.pop("WEIR_CONFIG", None)
    process = subprocess.Popen(
        [
            str(binary),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--workflows",
            str(workflows),
            "--data-dir",
            str(tmp / "data"),
            "--host-config",
            str(config),
            *extra,
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"weir serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Weir(url, port, standin, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"weir serve did not get ready in 120 s:\n{log.read_text()}")


def stop(weir: Weir) -> None:
    if weir.process.poll() is None:
        weir.process.send_signal(signal.SIGTERM)
        try:
            weir.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            weir.process.kill()
            weir.process.wait()
