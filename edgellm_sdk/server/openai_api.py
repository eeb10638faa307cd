"""The OpenAI API: chat and text completions (SSE streams), models, embeddings, OpenAI-shaped errors.

Finish reasons the OpenAI API does not know ("cancelled": the client left or the server is
stopping; "deadline") are sent as "length" (the answer was cut short), with the Engine's own
reason in ``edgellm_finish_reason``.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time

from starlette.responses import JSONResponse

from ..errors import ContextOverflow
from ..types import Completion, Token
from . import options as opt
from .queue import QueueFull, ServerStopping
from .state import JobStream, collect, first_item, tokens_then
from .tool_calls import is_forced, openai_calls, parse_tools, run_chat

log = logging.getLogger("edgellm.server")


def error(status: int, message: str, kind: str, param: str | None = None, code: str | None = None, headers=None):
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def openai_errors(handler):
    """Typed errors -> OpenAI's error shape: 400/413 bad request, 429 queue full, 503 stopping."""

    @functools.wraps(handler)
    async def wrapper(request):
        try:
            return await handler(request)
        except opt.BadRequest as e:
            return error(e.status, str(e), "invalid_request_error", e.param)
        except (ValueError, ContextOverflow) as e:
            return error(400, str(e), "invalid_request_error")
        except QueueFull as e:
            return error(
                429, str(e), "rate_limit_error", code="queue_full", headers={"Retry-After": str(e.retry_after_s)}
            )
        except ServerStopping as e:
            return error(503, str(e), "server_error", code="shutting_down", headers={"Retry-After": "5"})

    return wrapper


def finish(reason: str | None, tool_calls: tuple = ()) -> dict:
    if tool_calls:
        return {"finish_reason": "tool_calls"}
    if reason in ("cancelled", "deadline"):
        return {"finish_reason": "length", "edgellm_finish_reason": reason}
    return {"finish_reason": reason}


def usage(u) -> dict | None:
    if u is None:
        return None
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}  # fmt: skip


def generation_options(body: dict, state) -> dict:
    limits = state.limits
    if body.get("n") not in (None, 1):
        raise opt.BadRequest("n must be 1 (one engine answers one request at a time)", param="n")
    out = {
        "max_tokens": opt.max_tokens(body, limits, state.engine.max_context, "max_completion_tokens", "max_tokens"),
        "stop": opt.stops(body.get("stop"), limits),
        "sampling": opt.sampling(body),
    }
    fmt = body.get("response_format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        out["schema"] = {"type": "object"}
    elif kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise opt.BadRequest("response_format.json_schema.schema must be a JSON Schema object", "response_format")
        out["schema"] = schema
    elif kind != "text":
        raise opt.BadRequest("response_format.type must be text, json_object or json_schema", "response_format")
    return out


@openai_errors
async def chat_completions(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    messages = opt.messages(body, state.limits)
    options = generation_options(body, state)
    tools = parse_tools(body.get("tools"), body.get("tool_choice"))
    forced = is_forced(body.get("tool_choice"))
    engine, rid, created = state.engine, request.state.request_id, int(time.time())
    if tools or not body.get("stream"):
        job = state.submit(
            lambda cancel: [run_chat(engine, messages, tools, forced, cancel=cancel, **options)], request
        )
    else:
        job = state.submit(lambda cancel: engine.generate(messages, cancel=cancel, **options), request)
    head = {"id": f"chatcmpl-{rid}", "created": created, "model": state.model_name, "system_fingerprint": None}
    if not body.get("stream"):
        (c,) = await collect(request, job)
        state.metrics.generation(c.usage, (job.started or job.submitted) - job.submitted)
        calls = openai_calls(c.tool_calls, rid)
        message = {"role": "assistant", "content": None if calls else c.text, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None, **finish(c.finish_reason, c.tool_calls)}
        return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage(c.usage)})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    first, _ = await first_item(request, job)

    def chunk(delta: dict, end: dict | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, **(end or {"finish_reason": None})}
        data = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        return f"data: {json.dumps({**data, 'usage': None} if include_usage else data)}\n\n"

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        last = None
        async for item in tokens_then(job, first, state):
            if isinstance(item, Completion):  # a tool-calling turn arrives whole
                calls = openai_calls(item.tool_calls, rid)
                yield chunk({"tool_calls": calls} if calls else {"content": item.text})
                last = Token(-1, "", item.finish_reason, item.usage)
                end = finish(item.finish_reason, item.tool_calls)
            else:
                if item.text:
                    yield chunk({"content": item.text})
                last, end = item, finish(item.finish_reason)
        if last is None:
            return
        yield chunk({}, end)
        if include_usage:
            yield f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage(last.usage)})}\n\n"
        yield "data: [DONE]\n\n"

    return JobStream(events(), job, "text/event-stream")


@openai_errors
async def completions(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise opt.BadRequest("prompt must be a non-empty string (one prompt per request)", param="prompt")
    options = generation_options(body, state)
    engine, rid = state.engine, request.state.request_id
    head = {"id": f"cmpl-{rid}", "object": "text_completion", "created": int(time.time()), "model": state.model_name}
    job = state.submit(lambda cancel: engine.generate(prompt, cancel=cancel, **options), request)
    if not body.get("stream"):
        c = Completion.from_tokens(await collect(request, job), engine.tokenizer.eos_ids)
        state.metrics.generation(c.usage, (job.started or job.submitted) - job.submitted)
        choice = {"index": 0, "text": c.text, "logprobs": None, **finish(c.finish_reason)}
        return JSONResponse({**head, "choices": [choice], "usage": usage(c.usage)})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    first, _ = await first_item(request, job)

    async def events():
        async for tok in tokens_then(job, first, state):
            end = finish(tok.finish_reason) if tok.finish_reason else {"finish_reason": None}
            yield f"data: {json.dumps({**head, 'choices': [{'index': 0, 'text': tok.text, 'logprobs': None, **end}]})}\n\n"
            if tok.finish_reason and include_usage:
                yield f"data: {json.dumps({**head, 'choices': [], 'usage': usage(tok.usage)})}\n\n"
        yield "data: [DONE]\n\n"

    return JobStream(events(), job, "text/event-stream")


async def models(request):
    state = request.app.state.server
    entry = {"id": state.model_name, "object": "model", "created": int(state.started), "owned_by": "edgellm"}
    return JSONResponse({"object": "list", "data": [entry]})


@openai_errors
async def embeddings(request):
    state = request.app.state.server
    body = await opt.read_json(request, state.limits)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise opt.BadRequest("input must be a non-empty string or list of strings", param="input")
    if len(texts) > state.limits.max_messages:
        raise opt.BadRequest(f"input has {len(texts)} items; the limit is [1, {state.limits.max_messages}]", "input")
    if state.embedder_loader is None:
        return error(404, "no embedding model installed: run `edgellm pull minilm-l6`", "invalid_request_error",
                     "model", "model_not_found")  # fmt: skip
    (vectors,) = await collect(request, state.submit(lambda cancel: [state.embedder().embed(texts)], request))
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": i,
         "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist()}
        for i, v in enumerate(vectors)
    ]  # fmt: skip
    n = sum(len(t.split()) for t in texts)
    return JSONResponse({"object": "list", "data": data, "model": state.embedder().name,
                         "usage": {"prompt_tokens": n, "total_tokens": n}})  # fmt: skip
