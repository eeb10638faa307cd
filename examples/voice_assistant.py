"""The voice assistant demo, headless: spoken questions (WAV) in, spoken answers (WAV) out.

python examples/voice_assistant.py examples/data/question.wav answer.wav
"""

import sys

import numpy as np

from edgellm_sdk import Engine
from edgellm_sdk.speech.asr import open_transcriber
from edgellm_sdk.speech.audio import read_wav, write_wav
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk
from edgellm_sdk.speech.voice import VoiceLoop

question, answer = (sys.argv[1:3] + [None, None])[:2]
question = question or "examples/data/question.wav"
with Engine.load("smollm2-135m") as engine:
    tts = open_synthesizer("piper")  # or "espeak" (light, also Chinese)
    loop = VoiceLoop(engine, open_transcriber("moonshine"), tts)  # system prompt prefilled once
    turn = loop.respond(read_wav(question))
    print(f"heard: {turn.heard}\nreply: {turn.reply.strip()}")
    print(f"first audio {turn.first_audio_s:.2f} s after the end of speech")
    if answer:
        write_wav(answer, AudioChunk(np.concatenate([c.samples for c in turn.audio]), tts.sample_rate))
