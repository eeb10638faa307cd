"""One Engine, one worker thread: requests run in arrival order, never interleaved, from a bounded queue.

The event loop never runs the model: a ``Job``'s work runs on the worker thread and hands each
item (a Token, a Completion, an embedding matrix) back to the loop. Setting ``job.cancel`` (a client
went away, the server is stopping) ends a running generation at its next token and skips a waiting one.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import EdgeLLMError

Work = Callable[[threading.Event], Iterable[Any]]


class QueueFull(EdgeLLMError):
    """Every place in the queue is taken; retry after ``retry_after_s``."""

    def __init__(self, waiting: int, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"the server is busy: {waiting} requests are waiting; retry in {retry_after_s} s")


class ServerStopping(EdgeLLMError):
    """The server is shutting down and takes no more work."""


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


class Job:
    """One request's work and the channel its items come back on."""

    def __init__(self, work: Work, loop: asyncio.AbstractEventLoop, request_id: str):
        self.work, self.loop, self.request_id = work, loop, request_id
        self.cancel = threading.Event()
        self.submitted = time.perf_counter()
        self.started: float | None = None
        self._items: asyncio.Queue = asyncio.Queue()

    def put(self, item: Any) -> None:
        """From the worker thread: hand one item to the event loop (dropped if the loop is gone)."""
        try:
            self.loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the loop closed: nobody is listening any more
            self.cancel.set()

    def __aiter__(self) -> Job:
        return self

    async def __anext__(self) -> Any:
        item = await self._items.get()
        if item is _DONE:
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            raise item.error
        return item


class GenerationQueue:
    """Runs jobs one at a time on a worker thread; at most ``max_waiting`` wait behind the running one."""

    def __init__(self, max_waiting: int = 8):
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        self.max_waiting = max_waiting
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._wake = threading.Condition()
        self._stopping = False
        self._mean_s = 1.0  # running mean of a job's duration: the Retry-After estimate
        self._thread = threading.Thread(target=self._serve, name="edgellm-generation", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the one running)."""
        return len(self._waiting)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def busy(self) -> bool:
        return self._running is not None

    def submit(self, work: Work, request_id: str) -> Job:
        """Queue ``work`` (call from the event loop); QueueFull / ServerStopping when it cannot."""
        job = Job(work, asyncio.get_running_loop(), request_id)
        with self._wake:
            if self._stopping:
                raise ServerStopping("the server is shutting down")
            if len(self._waiting) >= self.max_waiting and (self._running is not None or self._waiting):
                retry = max(1, math.ceil(self._mean_s * (len(self._waiting) + 1)))
                raise QueueFull(len(self._waiting), retry)
            self._waiting.append(job)
            self._wake.notify()
        return job

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the running job and every waiting one, then end the worker thread."""
        with self._wake:
            self._stopping = True
            for job in [self._running, *self._waiting]:
                if job is not None:
                    job.cancel.set()
            self._wake.notify()
        self._thread.join(timeout_s)

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._stopping:
                    self._wake.wait(timeout=1.0)
                if not self._waiting:
                    return  # stopping and nothing left
                job = self._running = self._waiting.popleft()
            self._run(job)
            with self._wake:
                self._running = None

    def _run(self, job: Job) -> None:
        job.started = time.perf_counter()
        try:
            if self._stopping:
                raise ServerStopping("the server is shutting down")
            if not job.cancel.is_set():  # a client that left while waiting costs nothing
                for item in job.work(job.cancel):
                    job.put(item)
        except Exception as e:  # noqa: BLE001 - the request that caused it gets the error
            job.put(_Failed(e))
        finally:
            job.put(_DONE)
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - job.started)
