"""A model provider stand-in: a real HTTP server on loopback speaking the OpenAI chat
completions API, the one third-party service the tests cannot reach.

It classifies tickets the way the example's prompt asks (a JSON answer with a label and a
confidence): a ticket that mentions a refund or a charge is ``billing`` at 0.95, one that
says "vague" is ``feedback`` at 0.3 (so a confidence gate sends it to review), anything
else ``technical`` at 0.9. ``delay`` holds every answer back, to keep runs in flight.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List


class Standin:
    """The server, its settings and what it was asked."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.requests: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                with standin._lock:
                    standin.requests.append(request)
                    delay = standin.delay
                if delay:
                    time.sleep(delay)
                body = json.dumps(standin.answer(request)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL to configure as the provider's ``base-url``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @staticmethod
    def answer(request: Dict[str, Any]) -> Dict[str, Any]:
        text = " ".join(
            str(m.get("content", "")) for m in request.get("messages", [])
        ).lower()
        if "vague" in text:
            label, confidence = "feedback", 0.3
        elif "refund" in text or "charge" in text:
            label, confidence = "billing", 0.95
        else:
            label, confidence = "technical", 0.9
        content = json.dumps({"label": label, "confidence": confidence})
        prompt_tokens = max(1, len(text) // 4)
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "standin"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 12,
                "total_tokens": prompt_tokens + 12,
            },
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
