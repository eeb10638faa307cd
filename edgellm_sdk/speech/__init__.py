"""Speech I/O: ASR (moonshine, vosk), TTS (piper, espeak-ng), the voice loop and the live assistant.

    from edgellm_sdk.speech.asr import open_transcriber
    from edgellm_sdk.speech.tts import open_synthesizer
    from edgellm_sdk.speech.voice import VoiceLoop
    from edgellm_sdk.speech.devices import Microphone, Speaker
    from edgellm_sdk.speech.listener import Listener      # wake word, VAD end of speech, barge-in
    from edgellm_sdk.speech.assistant import VoiceAssistant

Importing this package loads nothing heavy; each backend imports its library when opened
(extra `speech`: pip install 'edgellm-sdk[speech]', and apt install espeak-ng).
"""

from .types import AudioChunk, Transcript, Word

__all__ = ["AudioChunk", "Transcript", "Word"]
