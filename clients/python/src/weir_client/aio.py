"""The asynchronous client, on ``httpx.AsyncClient``: the same surface as ``Client``, awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional, Union

import httpx

from . import _core
from .errors import TransportError
from .models import (
    Event,
    PluginList,
    PluginView,
    ReviewList,
    ReviewRecord,
    RunDetail,
    RunPage,
    RunRecord,
    RunSubmitted,
    WorkflowList,
)

_UNSET: Any = object()


class AsyncClient:
    """An asyncio client of one Weir sidecar (see ``Client`` for the settings).

    ``token`` defaults to ``$WEIR_API_TOKEN`` and ``base_url`` to ``$WEIR_URL`` or
    ``http://127.0.0.1:7878``. Answers 429 and 503 are sent again after the server's
    ``Retry-After`` (at most ``max_retries`` times, each wait at most ``max_retry_wait``
    seconds); errors raise the exception of their code (see ``weir_client.errors``).

    >>> async with AsyncClient() as weir:                        # doctest: +SKIP
    ...     run = (await weir.submit("ticket-triage", {"subject": "Hi", "body": "..."}, wait=30)).run
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        max_reconnects: int = 5,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        self._settings = _core.Settings.resolve(
            base_url, token, timeout, max_retries, max_retry_wait, max_reconnects
        )
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self.reviews = AsyncReviews(self)
        self.plugins = AsyncPlugins(self)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection pool (when the client made it)."""
        if self._owns_http:
            await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Dict[str, Any]] = None,
        json: Any = _UNSET,
        content: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        resend_on_transport_error: bool = False,
    ) -> httpx.Response:
        all_headers = self._settings.headers()
        all_headers.update(headers or {})
        kwargs: Dict[str, Any] = {"params": params, "headers": all_headers, "content": content}
        if json is not _UNSET:
            kwargs["json"] = json
        if timeout is not None:
            kwargs["timeout"] = timeout
        url = self._settings.base_url + path
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as err:
                if resend_on_transport_error and attempt < self._settings.max_retries:
                    attempt += 1
                    await asyncio.sleep(_core.reconnect_delay(attempt))
                    continue
                raise TransportError(f"{method} {url}: {err}") from err
            delay = _core.retry_delay(self._settings, response, attempt)
            if delay is None:
                return response
            attempt += 1
            await asyncio.sleep(delay)

    async def submit(
        self,
        workflow: str,
        input: Any,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        wait: _core.Wait = None,
        *,
        safe_retries: bool = False,
    ) -> RunSubmitted:
        """Starts a run of ``workflow`` (its highest active version unless ``version``).

        With ``wait`` (seconds, or ``"30s"``) the call blocks until the run ends, parks for
        review, or the wait runs out. The same ``idempotency_key`` returns the same run
        (``created`` is then false). ``safe_retries`` makes a key when none is given, so a
        request resent after a broken connection cannot start a second run.
        """
        body = _core.submit_body(workflow, input, version, idempotency_key, safe_retries)
        wait_param = _core.encode_wait(wait)
        response = await self._send(
            "POST",
            "/v1/runs",
            params={"wait": wait_param} if wait_param is not None else None,
            json=body,
            timeout=self._settings.timeout + _core.wait_seconds(wait),
            resend_on_transport_error="idempotency_key" in body,
        )
        return RunSubmitted.model_validate(_core.json_of(response))

    async def get_run(self, run_id: str) -> RunDetail:
        """A run with its steps, attempts, model calls and usage."""
        response = await self._send("GET", f"/v1/runs/{run_id}", resend_on_transport_error=True)
        return RunDetail.model_validate(_core.json_of(response))

    async def list_page(
        self,
        status: Optional[str] = None,
        workflow: Optional[str] = None,
        limit: Optional[int] = None,
        before: Optional[str] = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        params = {"status": status, "workflow": workflow, "limit": limit, "before": before}
        response = await self._send(
            "GET",
            "/v1/runs",
            params={k: v for k, v in params.items() if v is not None},
            resend_on_transport_error=True,
        )
        return RunPage.model_validate(_core.json_of(response))

    async def list_runs(
        self,
        status: Optional[str] = None,
        workflow: Optional[str] = None,
        page_size: int = 50,
    ) -> AsyncIterator[RunRecord]:
        """Every matching run, newest first, fetched a page at a time as iterated."""
        before: Optional[str] = None
        while True:
            page = await self.list_page(status, workflow, page_size, before)
            for run in page.runs:
                yield run
            if page.next is None:
                return
            before = page.next

    async def cancel(self, run_id: str, reason: Optional[str] = None) -> RunRecord:
        """Cancels a run that has not ended (``Conflict`` if it has)."""
        body = {"reason": reason} if reason is not None else {}
        response = await self._send("POST", f"/v1/runs/{run_id}/cancel", json=body)
        return RunRecord.model_validate(_core.json_of(response))

    async def events(
        self, run_id: str, last_event_id: Optional[str] = None
    ) -> AsyncIterator[Event]:
        """The run's events, from the start (or after ``last_event_id``), live until the
        run settles; the last one is ``done`` with the run. A dropped connection is
        reopened with ``Last-Event-ID``, so no event is lost or repeated."""
        last = last_event_id
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                async with self._http.stream(
                    "GET",
                    self._settings.base_url + f"/v1/runs/{run_id}/events",
                    headers={**self._settings.headers(), **headers},
                    timeout=httpx.Timeout(self._settings.timeout, read=None),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _core.raise_for_error(response)
                    decoder = _core.SseDecoder()
                    async for line in response.aiter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        if event.done:
                            yield event
                            return
                        if _core.is_journal_event(event):
                            failures = 0
                            last = event.id
                            yield event
                        # Any other event (the server going away) ends this connection.
            except httpx.TransportError as err:
                failures += 1
                if failures > self._settings.max_reconnects:
                    raise TransportError(f"the event stream of run {run_id} broke: {err}") from err
            else:
                failures += 1
                if failures > self._settings.max_reconnects:
                    raise TransportError(
                        f"the event stream of run {run_id} kept ending before its `done` event"
                    )
            await asyncio.sleep(_core.reconnect_delay(failures))

    async def workflows(self) -> WorkflowList:
        """The active workflow versions, and the files that failed to load."""
        response = await self._send("GET", "/v1/workflows", resend_on_transport_error=True)
        return WorkflowList.model_validate(_core.json_of(response))

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200."""
        try:
            return (await self._send("GET", "/healthz")).status_code == 200
        except TransportError:
            return False

    async def ready(self) -> bool:
        """Whether ``/readyz`` answers 200 (store answers, catalog loaded, not draining)."""
        try:
            return (await self._send("GET", "/readyz")).status_code == 200
        except TransportError:
            return False


class AsyncReviews:
    """The review queue: ``client.reviews``, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, status: str = "pending") -> List[ReviewRecord]:
        """Reviews in ``status`` (``pending``, ``approved``, ``edited``, ``rejected``, ``all``)."""
        response = await self._client._send(
            "GET", "/v1/reviews", params={"status": status}, resend_on_transport_error=True
        )
        return list(ReviewList.model_validate(_core.json_of(response)).reviews)

    async def get(self, review_id: str) -> ReviewRecord:
        """One review."""
        response = await self._client._send(
            "GET", f"/v1/reviews/{review_id}", resend_on_transport_error=True
        )
        return ReviewRecord.model_validate(_core.json_of(response))

    async def decide(
        self,
        review_id: str,
        decision: str,
        *,
        output: Any = _UNSET,
        reason: Optional[str] = None,
        by: Optional[str] = None,
        note: Optional[str] = None,
    ) -> ReviewRecord:
        """Decides a review: ``approve``, ``edit`` (with ``output``) or ``reject`` (with
        ``reason``); the run goes on. ``Conflict`` if it was decided already."""
        body = _core.decide_body(decision, output, reason, by, note, output is not _UNSET)
        response = await self._client._send("POST", f"/v1/reviews/{review_id}", json=body)
        return ReviewRecord.model_validate(_core.json_of(response))

    async def approve(self, review_id: str, *, by: Optional[str] = None, note: Optional[str] = None) -> ReviewRecord:
        """The step's output stands."""
        return await self.decide(review_id, "approve", by=by, note=note)

    async def edit(self, review_id: str, output: Any, *, by: Optional[str] = None, note: Optional[str] = None) -> ReviewRecord:
        """Replace the step's output (checked against its output schema)."""
        return await self.decide(review_id, "edit", output=output, by=by, note=note)

    async def reject(self, review_id: str, reason: str, *, by: Optional[str] = None, note: Optional[str] = None) -> ReviewRecord:
        """Fail the run, with the reason."""
        return await self.decide(review_id, "reject", reason=reason, by=by, note=note)


class AsyncPlugins:
    """The plugins on offer: ``client.plugins``, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> List[PluginView]:
        """Every plugin the server offers."""
        response = await self._client._send("GET", "/v1/plugins", resend_on_transport_error=True)
        return list(PluginList.model_validate(_core.json_of(response)).plugins)

    async def upload(self, component: Union[bytes, str, Path]) -> PluginView:
        """Uploads a component (its bytes, or a path to a ``.wasm`` file)."""
        data = component if isinstance(component, bytes) else Path(component).read_bytes()
        response = await self._client._send(
            "POST",
            "/v1/plugins",
            content=data,
            headers={"Content-Type": "application/wasm"},
            resend_on_transport_error=True,
        )
        return PluginView.model_validate(_core.json_of(response))
