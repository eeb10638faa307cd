"""Sound-card input and output over PortAudio (``sounddevice``, extra ``speech``), in one import.

    list_devices()                       every PortAudio device (AudioDevice records)
    find_device("USB", kind="input")     select a device by (part of) its name
    Microphone(device, sample_rate)      callback stream -> bounded queue of mono AudioChunks
    Speaker(device).play(chunks, cancel) blocking playback, cancellable within one block

Each lives in its own module (``portaudio``: the device list and the helpers both streams share;
``microphone``; ``speaker``); this one gathers them. ``sounddevice`` is imported lazily: importing
it never needs PortAudio. Every call that waits on the audio driver has a timeout, so a stuck or
unplugged device raises ``SpeechError`` instead of hanging the caller.
"""

from edgellm_sdk.speech.microphone import Microphone
from edgellm_sdk.speech.portaudio import AudioDevice, find_device, list_devices
from edgellm_sdk.speech.speaker import Speaker

__all__ = ["AudioDevice", "Microphone", "Speaker", "find_device", "list_devices"]
