"""The Ollama API, as Home Assistant's Ollama integration and the ``ollama`` client call it.

/api/chat and /api/generate stream NDJSON unless ``"stream": false``; a full queue answers 503
with Retry-After (what ollama itself answers when its pending-request limit is reached).
"""

from __future__ import annotations

import functools
import json
import time
from datetime import datetime, timezone

from starlette.responses import JSONResponse, StreamingResponse

from ..errors import ContextOverflow, EdgeLLMError
from ..types import Completion, Token
from . import options as opt
from .queue import QueueFull, ServerStopping
from .state import JobStream, collect, first_item, tokens_then
from .tool_calls import ollama_calls, parse_tools, run_chat

VERSION = "0.11.0"  # the Ollama API level these routes follow (clients only display it)


def ollama_errors(handler):
    @functools.wraps(handler)
    async def wrapper(request):
        try:
            return await handler(request)
        except opt.BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except (ValueError, ContextOverflow) as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except (QueueFull, ServerStopping) as e:
            retry = str(getattr(e, "retry_after_s", 5))
            return JSONResponse({"error": f"server busy, please try again: {e}"}, 503, {"Retry-After": retry})

    return wrapper


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def check_model(body: dict, state) -> str:
    name = body.get("model") or body.get("name") or state.model_name
    if str(name).removesuffix(":latest") != state.model_name:
        raise opt.BadRequest(f"model {name!r} not found; this server runs {state.model_name!r}", "model", 404)
    return str(name)


def generation_options(body: dict, state) -> dict:
    o = body.get("options") or {}
    if not isinstance(o, dict):
        raise opt.BadRequest("options must be an object", "options")
    predict = o.get("num_predict")
    high = min(state.limits.max_tokens, state.engine.max_context - 1)
    out = {
        "max_tokens": high
        if predict in (-1, -2)
        else opt.max_tokens(o, state.limits, state.engine.max_context, "num_predict"),
        "stop": opt.stops(o.get("stop"), state.limits, "options.stop"),
        "sampling": opt.sampling(o),
    }
    fmt = body.get("format")
    if fmt == "json":
        out["schema"] = {"type": "object"}
    elif isinstance(fmt, dict):
        out["schema"] = fmt
    elif fmt not in (None, ""):
        raise opt.BadRequest("format must be 'json' or a JSON Schema object", "format")
    return out


def final_fields(reason: str | None, usage) -> dict:
    done = {"done": True, "done_reason": {"length": "length"}.get(reason or "", "stop")}
    if usage is None:
        return done
    ns = 1_000_000_000
    return {**done, "total_duration": int(usage.total_s * ns), "load_duration": 0,
            "prompt_eval_count": usage.prompt_tokens, "prompt_eval_duration": int(usage.ttft_s * ns),
            "eval_count": usage.completion_tokens, "eval_duration": int((usage.total_s - usage.ttft_s) * ns)}  # fmt: skip


async def _respond(request, state, job, shape, stream: bool):
    """NDJSON lines (``shape(text, item_or_None)`` builds each) or one JSON object."""
    if not stream:
        items = await collect(request, job)
        c = items[0] if items and isinstance(items[0], Completion) else Completion.from_tokens(items)
        state.metrics.generation(c.usage, (job.started or job.submitted) - job.submitted)
        return JSONResponse({**shape(c.text, c), **final_fields(c.finish_reason, c.usage)})
    first, _ = await first_item(request, job)

    async def lines():
        async for item in tokens_then(job, first, state):
            if isinstance(item, Completion):
                yield json.dumps({**shape(item.text, item), **final_fields(item.finish_reason, item.usage)}) + "\n"
            elif isinstance(item, Token):
                if item.text:
                    yield json.dumps({**shape(item.text, None), "done": False}) + "\n"
                if item.finish_reason:
                    yield json.dumps({**shape("", None), **final_fields(item.finish_reason, item.usage)}) + "\n"

    return JobStream(lines(), job, "application/x-ndjson")


@ollama_errors
async def chat(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    model = check_model(body, state)
    messages = opt.messages(body, state.limits)
    options = generation_options(body, state)
    tools = parse_tools(body.get("tools"), None)
    engine, stream = state.engine, body.get("stream", True) is not False
    if tools or not stream:
        job = state.submit(lambda cancel: [run_chat(engine, messages, tools, False, cancel=cancel, **options)], request)
    else:
        job = state.submit(lambda cancel: engine.generate(messages, cancel=cancel, **options), request)

    def shape(text: str, c: Completion | None) -> dict:
        message: dict = {"role": "assistant", "content": text}
        if c is not None and c.tool_calls:
            message = {"role": "assistant", "content": "", "tool_calls": ollama_calls(c.tool_calls)}
        return {"model": model, "created_at": now(), "message": message}

    return await _respond(request, state, job, shape, stream)


@ollama_errors
async def generate(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    model = check_model(body, state)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise opt.BadRequest("prompt must be a string", "prompt")
    if not prompt:  # ollama loads the model and answers nothing
        return JSONResponse({"model": model, "created_at": now(), "response": "", "done": True, "done_reason": "load"})
    options = generation_options(body, state)
    system = body.get("system")
    raw = bool(body.get("raw"))
    turns = ([{"role": "system", "content": system}] if isinstance(system, str) and system else []) + [
        {"role": "user", "content": prompt}
    ]
    engine, stream = state.engine, body.get("stream", True) is not False
    job = state.submit(lambda cancel: engine.generate(prompt if raw else turns, cancel=cancel, **options), request)

    def shape(text: str, c: Completion | None) -> dict:
        return {"model": model, "created_at": now(), "response": text}

    return await _respond(request, state, job, shape, stream)


def _model_entry(state) -> dict:
    engine = state.engine
    manifest = getattr(engine, "manifest", None)
    size = manifest.variant_bytes(engine.variant) if manifest is not None and engine.variant else 0
    details = {"parent_model": "", "format": "onnx", "family": "llama", "families": ["llama"],
               "parameter_size": "", "quantization_level": str(getattr(engine, "variant", "") or "")}  # fmt: skip
    return {"name": f"{state.model_name}:latest", "model": f"{state.model_name}:latest",
            "modified_at": datetime.fromtimestamp(state.started, timezone.utc).isoformat(),
            "size": size, "digest": "", "details": details}  # fmt: skip


async def tags(request):
    return JSONResponse({"models": [_model_entry(request.app.state.server)]})


@ollama_errors
async def show(request):
    state = request.app.state.server
    check_model(await opt.read_json(request, state.limits), state)
    entry = _model_entry(state)
    info = {"general.architecture": "llama", "llama.context_length": state.engine.max_context}
    return JSONResponse({"modelfile": f"FROM {state.model_name}\n", "parameters": "", "template": "",
                         "details": entry["details"], "model_info": info, "modified_at": entry["modified_at"],
                         "capabilities": ["completion", "tools"]})  # fmt: skip


async def version(request):
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        sdk = dist_version("edgellm-sdk")
    except PackageNotFoundError:
        sdk = "unknown"
    return JSONResponse({"version": VERSION, "edgellm": sdk})


@ollama_errors
async def embed(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise opt.BadRequest("input must be a string or a list of strings", "input")
    if state.embedder_loader is None:
        return JSONResponse({"error": "no embedding model installed: run `edgellm pull minilm-l6`"}, 404)
    t0 = time.perf_counter()
    (vectors,) = await collect(request, state.submit(lambda cancel: [state.embedder().embed(texts)], request))
    return JSONResponse({"model": body.get("model") or state.embedder().name, "embeddings": vectors.tolist(),
                         "total_duration": int((time.perf_counter() - t0) * 1e9), "load_duration": 0})  # fmt: skip


@ollama_errors
async def pull(request):
    """Install a model the store knows (``edgellm pull NAME``); the running model is not swapped."""
    from ..models.store import KNOWN_MODELS, ModelStore

    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    name = str(body.get("model") or body.get("name") or "").removesuffix(":latest")
    if name not in KNOWN_MODELS:
        return JSONResponse(
            {"error": f"pull model manifest: unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}"}, 404
        )

    def work(cancel):
        try:
            from ..toolchain.convert import CONVERTERS
        except ImportError:
            CONVERTERS = None
        ModelStore().pull(name, converters=CONVERTERS)
        return [{"status": "success"}]

    try:
        job = state.submit(work, request)
        result = await collect(request, job)
    except EdgeLLMError as e:
        if isinstance(e, (QueueFull, ServerStopping)):
            raise
        return JSONResponse({"error": str(e)}, 500)
    if body.get("stream", True) is False:
        return JSONResponse(result[0])
    return StreamingResponse(iter([json.dumps({"status": f"pulling {name}"}) + "\n", json.dumps(result[0]) + "\n"]),
                             media_type="application/x-ndjson")  # fmt: skip
