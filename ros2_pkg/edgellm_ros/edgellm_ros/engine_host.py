"""The Engine a node serves, its request line and counters (no ROS types: unit-testable)."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .turns import Turn, Turns

if TYPE_CHECKING:
    from edgellm_sdk import ResponseCache
    from edgellm_sdk.engine_api import EngineAPI

WAIT_POLL_S = 0.5  # a waiting request re-checks cancel / shutdown at least this often


@dataclass
class Outcome:
    text: str = ""
    finish_reason: str = "error"  # stop | length | cancelled | deadline | error | busy
    error: str = ""
    usage: object | None = None  # edgellm_sdk.Usage
    cached: bool = False


@dataclass
class HostStats:
    requests: int = 0
    busy_refusals: int = 0
    errors: int = 0
    cached_answers: int = 0
    tokens: int = 0
    last_tokens_per_s: float = 0.0
    last_ttft_s: float = 0.0


def load_command_set(spec: str):
    """``module:attribute`` -> the CommandSet it names."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"command_set {spec!r} must look like 'package.module:ATTRIBUTE'")
    try:
        value = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"command_set {spec!r} cannot be imported: {exc}") from None
    from edgellm_sdk.commands import CommandSet

    if not isinstance(value, CommandSet):
        raise TypeError(f"command_set {spec!r} is a {type(value).__name__}, not an edgellm_sdk CommandSet")
    return value


class EngineHost:
    """Serves ``engine`` (which stays its loader's to close) one request at a time.

    ``make_parser`` (optional) builds the CommandParser in a background thread: it prefills the
    command instructions (~1 s), which should not delay the node's start. ``response_cache`` (the
    one the engine was loaded with) gives the hit rate."""

    PARSER_WAIT_S = 30.0

    def __init__(
        self,
        engine: EngineAPI,
        *,
        max_queue: int,
        make_parser: Callable[[], object] | None = None,
        response_cache: ResponseCache | None = None,
    ):
        self.engine, self.parser, self.response_cache = engine, None, response_cache
        self.parser_error = "no command_set configured" if make_parser is None else ""
        self._parser_ready = threading.Event()
        if make_parser is None:
            self._parser_ready.set()
        else:
            threading.Thread(
                target=self._build_parser, args=(make_parser,), name="edgellm-command-parser", daemon=True
            ).start()
        self.turns = Turns(max_queue)
        self.stats = HostStats()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._active: set[threading.Event] = set()  # cancel events of the requests in line

    def generate(
        self,
        messages,
        kwargs: dict,
        *,
        cancel: threading.Event,
        on_token: Callable[[str, int], None] | None = None,
        turn: Turn | None = None,
    ) -> Outcome:
        """Wait for this request's turn (``turn``: one taken earlier), then stream;
        ``on_token(delta, tokens_so_far)`` per printable piece."""
        turn = turn or self.turns.take()
        if turn is None:
            with self._lock:
                self.stats.busy_refusals += 1
            return Outcome(
                finish_reason="busy",
                error=f"busy: {self.turns.max_queue} requests already wait "
                "(raise the max_queue parameter or retry later)",
            )
        with turn:
            try:
                if not self._wait(turn, cancel):
                    return Outcome(finish_reason="cancelled")
                return self._run(messages, kwargs, cancel, on_token)
            finally:
                self._forget(cancel)

    def parse_command(self, text: str, *, deadline_s: float | None, cancel: threading.Event):
        """CommandParser.parse in turn; returns Command | Refusal, or an Outcome when it could not run."""
        if not self._parser_ready.wait(self.PARSER_WAIT_S):
            return Outcome(error=f"the command parser is still loading after {self.PARSER_WAIT_S:g} s")
        if self.parser is None:
            return Outcome(error=self.parser_error)
        turn = self.turns.take()
        if turn is None:
            return Outcome(finish_reason="busy", error="busy: too many requests waiting")
        with turn:
            try:
                if not self._wait(turn, cancel):
                    return Outcome(finish_reason="cancelled")
                with self._lock:
                    self.stats.requests += 1
                return self.parser.parse(text, deadline_s=deadline_s, cancel=cancel)
            finally:
                self._forget(cancel)

    def _build_parser(self, make_parser) -> None:
        try:
            self.parser = make_parser()
            import llguidance  # noqa: F401  (the first constrained request should not pay the import)
        except Exception as exc:  # noqa: BLE001  (reported on every parse request and in diagnostics)
            self.parser_error = f"command parser failed: {exc}"
        finally:
            self._parser_ready.set()

    def _forget(self, cancel: threading.Event) -> None:
        with self._lock:
            self._active.discard(cancel)

    def cancel_all(self) -> None:
        with self._lock:
            for cancel in self._active:
                cancel.set()
        self.turns.wake()

    def _wait(self, turn: Turn, cancel: threading.Event) -> bool:
        with self._lock:
            self._active.add(cancel)
        while not turn.wait(cancel, WAIT_POLL_S):
            if cancel.is_set() or self.closing.is_set() or not turn.in_line:
                return False
        return not cancel.is_set()

    def _run(self, messages, kwargs, cancel, on_token) -> Outcome:
        from edgellm_sdk import EdgeLLMError

        with self._lock:
            self.stats.requests += 1
        parts, count, last = [], 0, None
        try:
            for token in self.engine.generate(messages, cancel=cancel, **kwargs):
                count += token.id >= 0
                if token.text:
                    parts.append(token.text)
                    if on_token is not None:
                        on_token(token.text, count)
                last = token
        except (ValueError, EdgeLLMError) as exc:
            with self._lock:
                self.stats.errors += 1
            return Outcome(error=str(exc))
        usage = last.usage if last is not None else None
        cached = bool(last is not None and last.cached)
        with self._lock:
            self.stats.tokens += count
            self.stats.cached_answers += cached
            if usage is not None and not cached:
                self.stats.last_tokens_per_s, self.stats.last_ttft_s = usage.decode_tokens_per_s, usage.ttft_s
        return Outcome("".join(parts), last.finish_reason if last is not None else "stop", "", usage, cached)

    def parser_state(self) -> str:
        if not self._parser_ready.is_set():
            return "loading"
        return "ready" if self.parser is not None else self.parser_error

    def cache_hit_rate(self) -> float:
        cache = self.response_cache
        return cache.stats.hit_rate if cache is not None else 0.0

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every request and wait (bounded) for the running one to stop; the Engine stays open."""
        self.closing.set()
        self.cancel_all()
        end = time.monotonic() + timeout
        while self.turns.busy and time.monotonic() < end:
            time.sleep(0.02)
