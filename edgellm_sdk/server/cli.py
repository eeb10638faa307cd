"""``edgellm serve``: the OpenAI and Ollama APIs over one Engine, on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..cli.common import add_model_args, engine_from_args
from ..errors import EdgeLLMError, MissingDependency
from . import DEFAULT_HOST, DEFAULT_PORT
from .auth import BindRefused, check_bind, read_key_file
from .options import Limits


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="HTTP server speaking the OpenAI and Ollama APIs (extra: server)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}; others need a key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    add_model_args(p)
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--api-key", default=os.environ.get("EDGELLM_API_KEY") or None,
                      help="clients send 'Authorization: Bearer KEY' (default: $EDGELLM_API_KEY)")  # fmt: skip
    keys.add_argument("--api-key-file", help="read the key from this file's first line")
    p.add_argument("--max-queue", type=int, default=8, help="requests that may wait for the engine (default 8)")
    p.add_argument("--max-tokens-limit", type=int, default=1024, help="largest max_tokens a request may ask")
    p.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=cmd_serve)


def make_server(app, host: str, port: int, log_level: str = "info"):
    """A uvicorn Server whose SIGTERM/SIGINT first cancels the generations (streams end with a finish
    reason), then lets uvicorn drain the connections (at most 10 s)."""
    try:
        import uvicorn
    except ImportError as e:
        raise MissingDependency("uvicorn", "server") from e

    queue = app.state.server.queue

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            queue.stop(timeout_s=0)  # cancel now; never block the event loop here
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets=None) -> None:
            await super().shutdown(sockets)
            queue.stop(timeout_s=0)

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="off", timeout_graceful_shutdown=10,
        timeout_keep_alive=5, access_log=False,
    )  # fmt: skip
    return GracefulServer(config)


def embedder_loader():
    """Loads minilm-l6 on first use when it is installed, else None (no embedding routes)."""
    from ..models.store import ModelStore

    if "minilm-l6" not in {m.name for m in ModelStore().installed()}:
        return None

    def load():
        from ..embed import Embedder

        return Embedder.load("minilm-l6")

    return load


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        key = read_key_file(args.api_key_file) if args.api_key_file else args.api_key
        check_bind(args.host, key)
    except (BindRefused, EdgeLLMError) as e:
        print(f"edgellm serve: {e}", file=sys.stderr)
        return 2
    if args.max_queue < 0 or not 1 <= args.max_tokens_limit:
        print("edgellm serve: --max-queue must be >= 0 and --max-tokens-limit >= 1", file=sys.stderr)
        return 2
    from .app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = engine_from_args(args)
    app = create_app(
        engine, model_name=engine.manifest.name if engine.manifest is not None else os.path.basename(args.model),
        profile_name=args.profile, api_key=key, max_queue=args.max_queue,
        limits=Limits(max_body_bytes=args.max_body, max_tokens=args.max_tokens_limit), embedder_loader=embedder_loader(),
    )  # fmt: skip
    server = make_server(app, args.host, args.port, args.log_level)
    try:
        print(f"[edgellm] serving {engine.model_id} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
        server.run()
    finally:
        app.state.server.queue.stop()
        engine.close()
    return 0
