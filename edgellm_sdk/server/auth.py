"""API keys: which bind addresses need one, and a constant-time bearer check (pure ASGI middleware)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from ..errors import EdgeLLMError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
PUBLIC_PATHS = ("/health", "/static/")  # and "/" itself: the page asks for the key, the API checks it


class BindRefused(EdgeLLMError):
    """The server would listen beyond loopback without an API key."""


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse any address but 127.0.0.1 / ::1 / localhost without a key.

    Other 127.x addresses count as "elsewhere" too: they are reachable from containers and
    network namespaces that share the host's loopback, and the rule stays one line to audit."""
    if host not in LOOPBACK_HOSTS and not api_key:
        raise BindRefused(
            f"refusing to listen on {host} without an API key: anyone who can reach it could use the model. "
            "Pass --api-key KEY or --api-key-file FILE (clients send 'Authorization: Bearer KEY'), "
            "or bind to 127.0.0.1."
        )


def read_key_file(path: str | Path) -> str:
    """The key in ``path`` (first line, stripped); an empty file is an error, not "no key"."""
    try:
        key = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except OSError as e:
        raise EdgeLLMError(f"cannot read the API key file {path}: {e.strerror}") from e
    if not key or not key[0].strip():
        raise EdgeLLMError(f"the API key file {path} is empty")
    return key[0].strip()


def key_matches(header: str | None, api_key: str) -> bool:
    """``Authorization: Bearer KEY`` compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_key.encode())


class BearerAuth:
    """401 unless the request carries the key; the page, its static files and /health are open."""

    def __init__(self, app, api_key: str | None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.api_key or path == "/" or path.startswith(PUBLIC_PATHS):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if key_matches(headers.get(b"authorization", b"").decode("latin-1"), self.api_key):
            return await self.app(scope, receive, send)
        message = "invalid or missing API key: send 'Authorization: Bearer KEY'"
        if path.startswith("/v1/"):
            body: dict = {
                "error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
            }
        else:
            body = {"error": message}
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
