"""Speech I/O: ASR (moonshine, vosk), TTS (piper, espeak-ng) and the voice loop.

    from edgellm_sdk.speech.asr import open_transcriber
    from edgellm_sdk.speech.tts import open_synthesizer
    from edgellm_sdk.speech.voice import VoiceLoop

Importing this package loads nothing heavy; each backend imports its library when opened
(extra `speech`: pip install 'edgellm-sdk[speech]', and apt install espeak-ng).
"""

from .types import AudioChunk, Transcript, Word

__all__ = ["AudioChunk", "Transcript", "Word"]
