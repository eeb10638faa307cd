"""`edgellm serve-wyoming` over TCP on loopback, driven by the real wyoming client; and the install
hint when the wyoming package is missing."""

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from edgellm_sdk.errors import MissingDependency


def test_without_the_wyoming_package_serve_names_the_extra(monkeypatch):
    from edgellm_sdk.speech import wyoming_server

    monkeypatch.setitem(sys.modules, "wyoming", None)  # `import wyoming` raises ImportError
    for call in (
        lambda: asyncio.run(wyoming_server.serve("tcp://127.0.0.1:0", None, None, None)),
        wyoming_server.make_handler_class,
    ):
        with pytest.raises(
            MissingDependency, match=r"wyoming package; install it with: pip install 'edgellm-sdk\[speech\]'"
        ):
            call()


@pytest.fixture(scope="module")
def server(default_store):
    pytest.importorskip("wyoming", reason="the speech extra is not installed")
    pytest.importorskip("moonshine_voice", reason="the speech extra is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgellm_sdk.cli",
            "serve-wyoming",
            "--uri",
            f"tcp://127.0.0.1:{port}",
            "--tts",
            "piper",
            "--max-tokens",
            "48",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(10)


async def events_until(client, stop_type, timeout=60):
    events = []
    while True:
        event = await asyncio.wait_for(client.read_event(), timeout)
        assert event is not None, "server closed the connection"
        events.append(event)
        if event.type == stop_type:
            return events


async def session(port):
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.handle import HandledChunk, HandledStart, HandledStop
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await events_until(client, "info"))[-1])
        assert info.asr and info.tts[0].supports_synthesize_streaming and info.handle[0].supports_handled_streaming
        # what is loaded: the default model (its variant and weights digest as the version), moonshine's
        # English, the joe voice's en_US
        (model,) = info.handle[0].models
        variant, _, digest = model.version.partition(":")
        assert model.name == "smollm2-135m" and variant and len(digest) == 16, model
        assert model.languages == ["en"]
        assert info.asr[0].models[0].name == "MoonshineTranscriber" and info.asr[0].models[0].languages == ["en"]
        assert info.tts[0].voices[0].name == "piper" and info.tts[0].voices[0].languages == ["en_US"]

        await client.write_event(Synthesize(text="Turn on the kitchen lights.").event())
        spoken = await events_until(client, AudioStop().event().type)
        chunks = [AudioChunk.from_event(e) for e in spoken if AudioChunk.is_type(e.type)]
        assert AudioStart.is_type(spoken[0].type) and chunks and chunks[0].width == 2

        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=chunks[0].rate, width=2, channels=1).event())
        for c in chunks:
            await client.write_event(c.event())
        await client.write_event(AudioStop().event())
        heard = Transcript.from_event((await events_until(client, "transcript"))[-1]).text
        assert "kitchen lights" in heard.lower()

        await client.write_event(SynthesizeStart().event())
        for delta in ["Hello there", ". How are", " you today?"]:
            await client.write_event(SynthesizeChunk(text=delta).event())
        await client.write_event(SynthesizeStop().event())
        streamed = await events_until(client, SynthesizeStopped().event().type)
        assert sum(AudioChunk.is_type(e.type) for e in streamed) > 2 and AudioStop.is_type(streamed[-2].type)

        await client.write_event(Transcript(text="What is the capital of France?").event())
        handled = await events_until(client, HandledStop().event().type)
        assert HandledStart.is_type(handled[0].type)
        answer = "".join(HandledChunk.from_event(e).text for e in handled if HandledChunk.is_type(e.type))
        assert "Paris" in answer


def test_wyoming_asr_tts_and_streamed_handle(server):
    asyncio.run(session(server))


def test_bad_uri_is_a_clear_error():
    r = subprocess.run(
        [sys.executable, "-m", "edgellm_sdk.cli", "serve-wyoming", "--uri", "http://x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "tcp://HOST:PORT" in r.stderr
