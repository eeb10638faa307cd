"""What every route shares: the Engine, its queue, limits, metrics, and running one request's job."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import StreamingResponse

from ..types import Token
from .metrics import Metrics
from .options import Limits
from .queue import GenerationQueue, Job, Work


@dataclass
class ServerState:
    engine: Any  # an Engine (EngineAPI plus its caches and stats)
    queue: GenerationQueue
    metrics: Metrics
    limits: Limits = field(default_factory=Limits)
    model_name: str = "smollm2-135m"
    profile_name: str | None = None
    started: float = field(default_factory=time.time)
    embedder_loader: Callable[[], Any] | None = None  # None: no embedding model installed
    _embedder: Any = None
    _embedder_lock: threading.Lock = field(default_factory=threading.Lock)

    def embedder(self) -> Any:
        """The embedding model, loaded on first use (on the worker thread); None if not installed."""
        with self._embedder_lock:
            if self._embedder is None and self.embedder_loader is not None:
                self._embedder = self.embedder_loader()
        return self._embedder

    def submit(self, work: Work, request) -> Job:
        return self.queue.submit(work, request.scope.get("state", {}).get("request_id", "-"))


async def _cancel_on_disconnect(request, job: Job) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel.set()
            return


async def first_item(request, job: Job) -> tuple[Any, bool]:
    """Wait for the job's first item (raising its error) while watching for the client leaving.

    Returns (item, more): ``more`` is False when the job ended without an item."""
    watcher = asyncio.ensure_future(_cancel_on_disconnect(request, job))
    try:
        return await job.__anext__(), True
    except StopAsyncIteration:
        return None, False
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def collect(request, job: Job) -> list[Any]:
    """Every item of the job (the client leaving cancels it)."""
    item, more = await first_item(request, job)
    items = [item] if more else []
    items += [i async for i in job]
    return items


async def tokens_then(job: Job, first: Any, state: ServerState) -> AsyncIterator[Any]:
    """The job's items starting with ``first``; leaving early (client gone) cancels the job.

    ``first`` None (the job ended before any item) yields nothing. Records the generation
    in the metrics when a token carries usage."""
    if first is None:
        return
    try:
        item = first
        while True:
            if isinstance(item, Token) and item.usage is not None:
                state.metrics.generation(item.usage, (job.started or job.submitted) - job.submitted)
            yield item
            item = await job.__anext__()
    except StopAsyncIteration:
        return
    finally:
        job.cancel.set()  # a no-op once the job finished; stops it at once when the client left


class JobStream(StreamingResponse):
    """A StreamingResponse that cancels its job however the response ends: finished, client gone
    (Starlette then stops the send loop, possibly while the body generator sits at a ``yield``,
    where its own ``finally`` would only run at garbage collection), or an error."""

    def __init__(self, content, job: Job, media_type: str):
        super().__init__(content, media_type=media_type, headers={"Cache-Control": "no-cache"})
        self.job = job

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel.set()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
