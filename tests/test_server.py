"""`edgellm serve`: a real uvicorn server on a free loopback port, the official openai / ollama clients."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import jsonschema
import pytest

pytest.importorskip("starlette")
openai = pytest.importorskip("openai")
ollama = pytest.importorskip("ollama")

from server_rig import MODEL, Running, free_port

from edgellm_sdk.server.auth import BindRefused, check_bind

HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def server(engine, embedder):
    running = Running(engine, max_queue=8, embedder_loader=lambda: embedder)
    yield running
    running.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


# --- OpenAI --------------------------------------------------------------------------------------
def test_openai_chat_not_streamed(client):
    r = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8)
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0


def test_openai_chat_streamed_with_usage(client, engine):
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=8, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == engine.chat(HI, max_tokens=8).text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_openai_completions(client):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5, stop=["\n"])
    assert r.choices[0].text and r.usage.completion_tokens <= 5
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=5, stop=["\n"], stream=True) if c.choices)  # fmt: skip
    assert streamed == r.choices[0].text


def test_openai_json_schema(client):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        model=MODEL, max_tokens=40,
        messages=[{"role": "user", "content": "Invent a person: name and age, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )  # fmt: skip
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    r = client.chat.completions.create(model=MODEL, max_tokens=30, messages=HI, response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_temperature",
            "description": "Read the temperature sensor of a room, in degrees C.",
            "parameters": {
                "type": "object",
                "properties": {"room": {"enum": ["kitchen", "bedroom", "garage"]}},
                "required": ["room"],
                "additionalProperties": False,
            },
        },
    }
]


def test_openai_tools(client):
    ask = [{"role": "user", "content": "How warm is the garage?"}]
    r = client.chat.completions.create(model=MODEL, messages=ask, tools=TOOLS, tool_choice="required", max_tokens=40)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_temperature"
    assert json.loads(call.function.arguments)["room"] in ("kitchen", "bedroom", "garage")
    # the client runs it and sends the result back; the model then answers (or calls again)
    follow = ask + [r.choices[0].message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": "31.5"}]  # fmt: skip
    r = client.chat.completions.create(model=MODEL, messages=follow, tools=TOOLS, max_tokens=60)
    assert r.choices[0].finish_reason in ("stop", "tool_calls", "length")


def test_cancel_by_closing_the_stream(client, server):
    t0 = time.monotonic()
    with client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a long story about a robot."}],
        max_tokens=1000, stream=True,
    ) as stream:  # fmt: skip
        for i, _ in enumerate(stream):
            if i == 3:
                break
    queue, closed = server.app.state.server.queue, time.monotonic()
    while queue.busy:  # the Engine's cancel ends the generation at its next token
        assert time.monotonic() - closed < 1.0, "the generation went on after the client left"
        time.sleep(0.01)
    r = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4)
    assert r.choices[0].message.content
    assert time.monotonic() - t0 < 5, "the closed stream kept the engine busy"  # 1000 tokens take > 6 s here


def test_models_and_embeddings(client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    r = client.embeddings.create(model="minilm-l6", input=["a robot", "a cat"])  # base64 on the wire
    assert len(r.data) == 2 and len(r.data[0].embedding) == 384


# --- Ollama --------------------------------------------------------------------------------------
def test_ollama_client(server, engine):
    o = ollama.Client(host=server.url, timeout=60)
    parts = list(o.chat(model=MODEL, messages=HI, stream=True, options={"num_predict": 8}))
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length") and parts[-1].eval_count > 0
    assert "".join(p.message.content for p in parts) == engine.chat(HI, max_tokens=8).text
    g = o.generate(model=MODEL, prompt="Say hello.", options={"num_predict": 6}, stream=False)
    assert g.done and g.response
    assert [m.model for m in o.list().models] == [f"{MODEL}:latest"]
    assert o.show(MODEL).details.family == "llama"
    assert len(o.embed(model="minilm-l6", input="hello").embeddings[0]) == 384
    r = o.chat(model=MODEL, messages=[{"role": "user", "content": "How warm is the garage?"}], tools=TOOLS,
               stream=False, options={"num_predict": 40})  # fmt: skip
    assert r.done and (r.message.content or r.message.tool_calls[0].function.name == "get_temperature")
    assert o.pull("minilm-l6").status == "success"  # installed: a verified no-op
    with pytest.raises(ollama.ResponseError):
        o.pull("no-such-model")
    with pytest.raises(ollama.ResponseError) as e:
        o.chat(model="nope", messages=HI, stream=False)
    assert e.value.status_code == 404
    assert httpx.get(server.url + "/api/version").json()["version"]


# --- safety --------------------------------------------------------------------------------------
def test_bad_requests(server):
    url = server.url + "/v1/chat/completions"
    r = httpx.post(url, content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = httpx.post(url, content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": HI, "temperature": 5})
    assert (
        r.status_code == 400
        and "[0, 2]" in r.json()["error"]["message"]
        and r.json()["error"]["param"] == "temperature"
    )
    r = httpx.post(url, json={"messages": HI, "max_tokens": 10**6})
    assert r.status_code == 400 and "max_tokens must be an integer in [1, " in r.json()["error"]["message"]
    r = httpx.post(url, json={"messages": HI * 300})
    assert r.status_code == 400 and "limit is [1, 256]" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/api/chat", json={"model": MODEL, "messages": HI, "options": {"top_p": 3}})
    assert r.status_code == 400 and "top_p" in r.json()["error"]


def test_auth_and_bind(engine):
    with pytest.raises(BindRefused, match="--api-key"):
        check_bind("127.0.0.2", None)
    check_bind("127.0.0.1", None)
    out = subprocess.run([sys.executable, "-m", "edgellm_sdk", "serve", "--host", "127.0.0.2"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "without an API key" in out.stderr
    running = Running(engine, host="127.0.0.2", api_key="s3cret")
    try:
        url = running.url
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/api/tags").status_code == 401
        assert httpx.get(url + "/health").status_code == 200
        c = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert c.models.list().data[0].id == MODEL
        o = ollama.Client(host=url, headers={"Authorization": "Bearer s3cret"})
        assert o.list().models
    finally:
        running.close()


# --- load ----------------------------------------------------------------------------------------
def test_eight_concurrent_streams_no_cross_talk(server, engine):
    prompts = [f"Count from {i} to {i + 5}:" for i in range(8)]
    expected = [engine.complete(p, max_tokens=8).text for p in prompts]

    def stream(prompt: str) -> str:
        c = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)
        return "".join(ch.choices[0].text for ch in c.completions.create(
            model=MODEL, prompt=prompt, max_tokens=8, stream=True) if ch.choices)  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(stream, prompts)) == expected


def test_queue_full(engine):
    running = Running(engine, max_queue=1)
    body = {"prompt": "1, 2, 3, 4, 5,", "max_tokens": 400, "stream": True}  # counting: never stops early
    url = running.url + "/v1/completions"
    h = httpx.Client(timeout=60)  # made up front: a new client's TLS set-up takes seconds on a busy CPU
    try:
        with h.stream("POST", url, json=body) as first:
            lines = first.iter_lines()  # keep it: a dropped iterator closes the response (a disconnect)
            next(lines)  # running
            waiting = threading.Thread(target=lambda: h.post(url, json={**body, "stream": False, "max_tokens": 2}))
            waiting.start()
            deadline = time.monotonic() + 10
            while running.app.state.server.queue.depth < 1:
                assert time.monotonic() < deadline, "the second request never queued"
                time.sleep(0.02)
            r = h.post(url, json=body)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["type"] == "rate_limit_error"
            r = h.post(running.url + "/api/chat", json={"model": MODEL, "messages": HI})
            assert r.status_code == 503 and "Retry-After" in r.headers
        waiting.join(60)
    finally:
        running.close()


# --- operations ----------------------------------------------------------------------------------
def test_health_metrics_page(server, client):
    client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4)
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    metrics = httpx.get(server.url + "/metrics").text
    for name in ("edgellm_requests_total", "edgellm_ttft_seconds_bucket", "edgellm_queue_depth",
                 'edgellm_cache_hit_ratio{cache="prefix"}', "edgellm_speculative_acceptance",
                 "edgellm_decode_tokens_per_second"):  # fmt: skip
        assert name in metrics
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "cdn" not in page.text.lower()
    assert "getReader" in httpx.get(server.url + "/static/app.js").text
    status = httpx.get(server.url + "/status").json()
    assert status["model"] == MODEL and "queue_depth" in status["metrics"]
    assert httpx.get(server.url + "/health").headers["x-request-id"]


def test_doctor_sees_the_running_server_on_its_port(server):
    from edgellm_sdk.doctor.peripherals import port_free

    ours = port_free("127.0.0.1", server.port, timeout=2)
    assert ours.status == "OK" and f"in use by `edgellm serve` (model {MODEL})" in ours.detail


def test_sigterm_ends_streams_with_a_finish_reason():
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgellm_sdk", "serve", "--port", str(port), "--threads", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        body = {"messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 1000, "stream": True}
        lines = []
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
            for line in filter(None, r.iter_lines()):
                lines.append(line)
                if len(lines) == 6:
                    proc.send_signal(signal.SIGTERM)
        events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
        assert lines[-1] == "data: [DONE]"
        assert events[-1]["choices"][0]["finish_reason"] == "length"
        assert events[-1]["choices"][0]["edgellm_finish_reason"] == "cancelled"
        assert proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
