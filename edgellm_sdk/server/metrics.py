"""Prometheus metrics (prometheus-client) in a registry of the app's own, read at scrape time."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependency
from ..types import Usage

ROUTES = frozenset(
    {
        "/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/embeddings", "/api/chat", "/api/generate",
        "/api/tags", "/api/show", "/api/version", "/api/embed", "/api/pull", "/health", "/metrics", "/status", "/",
    }
)  # fmt: skip


class Metrics:
    """Requests by route and status, tokens, TTFT, decode rate, queue depth, cache and speculation rates."""

    def __init__(self, engine: Any, queue: Any):
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as e:
            raise MissingDependency("prometheus_client", "server") from e

        self.engine, self.queue = engine, queue
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "edgellm_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.tokens = Counter("edgellm_generated_tokens", "tokens generated", registry=r)
        self.ttft = Histogram(
            "edgellm_ttft_seconds", "engine time to first token", registry=r,
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.wait = Histogram("edgellm_queue_wait_seconds", "time a request waited for the engine", registry=r)
        self.rate = Gauge("edgellm_decode_tokens_per_second", "decode rate of the last generation", registry=r)
        self.depth = Gauge("edgellm_queue_depth", "requests waiting for the engine", registry=r)
        self.busy = Gauge("edgellm_engine_busy", "1 while a generation runs", registry=r)
        self.cache = Gauge("edgellm_cache_hit_ratio", "hits / lookups since load", ["cache"], registry=r)
        self.spec = Gauge("edgellm_speculative_acceptance", "accepted / drafted tokens since load", registry=r)
        self.last = {"tokens_per_s": 0.0, "ttft_s": 0.0}

    def request(self, path: str, status: int) -> None:
        self.requests.labels(path if path in ROUTES else "other", str(status)).inc()

    def generation(self, usage: Usage | None, waited_s: float) -> None:
        self.wait.observe(waited_s)
        if usage is None:
            return
        self.tokens.inc(usage.completion_tokens)
        self.ttft.observe(usage.ttft_s)
        self.last = {"tokens_per_s": usage.decode_tokens_per_s, "ttft_s": usage.ttft_s}
        if usage.decode_tokens_per_s:
            self.rate.set(usage.decode_tokens_per_s)

    def snapshot(self) -> dict[str, float]:
        """Refresh the gauges read from the engine and the queue; the values, for the page."""
        self.depth.set(self.queue.depth)
        self.busy.set(1 if self.queue.busy else 0)
        values = {"queue_depth": self.queue.depth, "busy": int(self.queue.busy), **self.last}
        for name in ("prefix_cache", "response_cache", "semantic_cache"):
            cache = getattr(self.engine, name, None)
            if cache is not None:
                stats = cache.stats() if callable(cache.stats) else cache.stats
                ratio = stats.hit_rate
                self.cache.labels(name.removesuffix("_cache")).set(ratio)
                values[f"{name}_hit_rate"] = ratio
        speculation = getattr(self.engine, "speculation", None)
        if speculation is not None:
            self.spec.set(speculation.acceptance)
            values["speculative_acceptance"] = speculation.acceptance
        values["requests"] = sum(
            s.value for m in self.requests.collect() for s in m.samples if s.name.endswith("_total")
        )
        return values

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.snapshot()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
