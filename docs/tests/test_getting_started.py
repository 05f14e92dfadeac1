"""Runs every shell block of docs/getting-started.md, in order, as one script in a fresh
home directory, and checks what the guide says it prints: the guide cannot rot."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "getting-started.md"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_guide_has_shell_blocks() -> None:
    blocks = shell_blocks(GUIDE.read_text())
    assert len(blocks) >= 8
    assert any("weir new" in b for b in blocks) and any("weir serve" in b for b in blocks)


def test_every_command_of_the_guide_runs(tmp_path: Path) -> None:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 7878)) == 0:
            pytest.fail("something already listens on 127.0.0.1:7878, where the guide serves")
    home = tmp_path / "home"
    home.mkdir()
    real_home = Path.home()
    env = {
        **os.environ,
        "HOME": str(home),
        # The toolchains, cargo's registry and pip's cache stay where they are installed.
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(real_home / ".cargo")),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(real_home / ".rustup")),
        "WEIR_TOOLCHAINS": os.environ.get(
            "WEIR_TOOLCHAINS", str(real_home / ".cache" / "weir" / "toolchains")
        ),
        "PIP_CACHE_DIR": str(real_home / ".cache" / "pip"),
        "NO_COLOR": "1",
    }
    for leaked in ("WEIR_API_TOKENS", "WEIR_API_TOKEN", "WEIR_DATA_DIR", "WEIR_CONFIG", "WEIR_URL"):
        env.pop(leaked, None)
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += "\n".join(shell_blocks(GUIDE.read_text()))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = done.stdout
    assert done.returncode == 0, f"the guide failed ({done.returncode}):\n{out}\n{done.stderr}"
    assert "succeeded {'shout': 'HELLO FROM MY APP!', 'words': 4}" in out, out
    refusal = out.split("refused: ", 1)[1].splitlines()[0] if "refused: " in out else ""
    assert "at /text: 42 is not of type" in refusal, out
    assert "awaiting_review" in out, out
    assert re.search(r"^weir_runs_total\{.*\} \d+", out, flags=re.M), out
    assert "exit code 2" in out, out
    assert re.search(r"^succeeded \{'shout': 'THIS ONE IS LONG ENOUGH FOR A PERSON!', 'words': 8\}$", out, flags=re.M), out
    assert (home / "weir-tour" / "shout" / "build" / "shout.wasm").exists()
