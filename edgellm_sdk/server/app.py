"""The Starlette app: OpenAI and Ollama routes over one ServerState, request ids, auth, the page."""

from __future__ import annotations

import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..errors import MissingDependency
from .options import Limits

log = logging.getLogger("edgellm.server")
STATIC = Path(__file__).parent / "static"


class RequestIds:
    """Gives each request an id (``X-Request-Id`` in and out), logs it with status and time, counts it."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics
        self._ids = itertools.count(1)
        self._prefix = os.urandom(3).hex()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = given if given.replace("-", "").isalnum() else f"{self._prefix}{next(self._ids):05d}"
        scope.setdefault("state", {})["request_id"] = rid
        t0, status = time.perf_counter(), 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.request(scope["path"], status)
            ms = (time.perf_counter() - t0) * 1000
            log.info("%s %s %s -> %d in %.0f ms", rid, scope["method"], scope["path"], status, ms)


def create_app(engine: Any, *, model_name: str, profile_name: str | None = None, api_key: str | None = None,
               max_queue: int = 8, limits: Limits | None = None, embedder_loader=None):  # fmt: skip
    """The ASGI app serving ``engine``; ``app.state.server`` holds the ServerState (stop its queue on exit)."""
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles
    except ImportError as e:
        raise MissingDependency("starlette", "server") from e
    from . import ollama_api, openai_api
    from .auth import BearerAuth
    from .metrics import Metrics
    from .queue import GenerationQueue
    from .state import ServerState

    queue = GenerationQueue(max_queue)
    metrics = Metrics(engine, queue)
    state = ServerState(engine, queue, metrics, limits or Limits(), model_name, profile_name,
                        embedder_loader=embedder_loader)  # fmt: skip

    async def health(request):
        return JSONResponse({"status": "stopping" if queue.stopping else "ok", "model": model_name})

    async def status(request):
        return JSONResponse({"model": model_name, "profile": profile_name, "variant": getattr(engine, "variant", None),
                             "max_context": engine.max_context, "uptime_s": round(time.time() - state.started, 1),
                             "metrics": metrics.snapshot()})  # fmt: skip

    async def prometheus(request):
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def index(request):
        return FileResponse(STATIC / "index.html")

    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/status", status),
        Route("/metrics", prometheus),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/completions", openai_api.completions, methods=["POST"]),
        Route("/v1/models", openai_api.models),
        Route("/v1/embeddings", openai_api.embeddings, methods=["POST"]),
        Route("/api/chat", ollama_api.chat, methods=["POST"]),
        Route("/api/generate", ollama_api.generate, methods=["POST"]),
        Route("/api/tags", ollama_api.tags),
        Route("/api/show", ollama_api.show, methods=["POST"]),
        Route("/api/version", ollama_api.version),
        Route("/api/embed", ollama_api.embed, methods=["POST"]),
        Route("/api/pull", ollama_api.pull, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(RequestIds, metrics=metrics), Middleware(BearerAuth, api_key=api_key)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.server = state
    return app
