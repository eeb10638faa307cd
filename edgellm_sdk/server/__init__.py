"""``edgellm serve``: one local HTTP server speaking the OpenAI and Ollama APIs over one Engine.

    cli        ``edgellm serve`` arguments, the bind/key check, uvicorn with graceful SIGTERM
    app        the Starlette app: routes, request ids, auth, health, status, the chat page
    openai_api /v1/chat/completions, /v1/completions, /v1/models, /v1/embeddings (SSE streams)
    ollama_api /api/chat, /api/generate (NDJSON streams), /api/tags, /show, /version, /embed, /pull
    options    request bodies -> Engine arguments, with limits (BadRequest names the allowed range)
    queue      GenerationQueue: one worker thread, requests in order, bounded, cancel on disconnect
    auth       bearer keys (constant-time), which addresses need one
    metrics    Prometheus metrics (prometheus-client)

Needs the ``server`` extra (starlette, uvicorn, prometheus-client); nothing in the core imports it.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
