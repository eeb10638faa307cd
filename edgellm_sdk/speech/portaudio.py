"""PortAudio through ``sounddevice`` (extra ``speech``): the device list and the helpers that the
Microphone and the Speaker share.

    list_devices()                       every PortAudio device (AudioDevice records)
    find_device("USB", kind="input")     select a device by (part of) its name
    resolve_device(None, "output")       None = the system default, a name, an index or an AudioDevice

``sounddevice`` is imported lazily (``import_sounddevice``): importing this module never needs
PortAudio. ``run_with_timeout`` runs a driver call that may hang (stopping, closing a stream) in a
daemon thread, so a stuck device cannot hang the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgellm_sdk.errors import MissingDependency, SpeechError

_log = logging.getLogger(__name__)


def import_sounddevice() -> Any:
    """The ``sounddevice`` module, or MissingDependency naming the pip / apt fix."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice is installed but the PortAudio C library is not
        raise MissingDependency(
            "sounddevice",
            "speech",
            message=f"the PortAudio library is not installed ({exc}); install it with: apt install libportaudio2",
        ) from exc
    except ImportError as exc:
        raise MissingDependency("sounddevice", "speech") from exc
    return sounddevice


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float

    def __str__(self) -> str:
        return (
            f"[{self.index}] {self.name} ({self.hostapi}, {self.max_input_channels} in, "
            f"{self.max_output_channels} out, {self.default_samplerate:g} Hz)"
        )


def list_devices() -> list[AudioDevice]:
    """Every device PortAudio can see, in PortAudio's order."""
    sd = import_sounddevice()
    try:
        apis = [api["name"] for api in sd.query_hostapis()]
        return [
            AudioDevice(
                index=int(d["index"]),
                name=str(d["name"]),
                hostapi=apis[d["hostapi"]] if d["hostapi"] < len(apis) else str(d["hostapi"]),
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]),
            )
            for d in sd.query_devices()
        ]
    except sd.PortAudioError as exc:
        raise SpeechError(f"cannot list audio devices: {exc}") from exc


def _has(dev: AudioDevice, kind: str) -> bool:
    return (dev.max_input_channels if kind == "input" else dev.max_output_channels) > 0


def find_device(name: str | int, kind: str = "input") -> AudioDevice:
    """The ``kind`` ("input" or "output") device whose name contains ``name`` (case-insensitive;
    an exact name wins over a partial one). An int is taken as a PortAudio device index.
    Unknown -> SpeechError listing the available devices of that kind."""
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', got {kind!r}")
    devices = list_devices()
    usable = [d for d in devices if _has(d, kind)]
    if isinstance(name, int):
        match = [d for d in usable if d.index == name]
    else:
        wanted = str(name).strip().lower()
        match = [d for d in usable if d.name.lower() == wanted] or [d for d in usable if wanted in d.name.lower()]
    if match:
        return match[0]
    listing = "\n  ".join(str(d) for d in usable) or "(none)"
    raise SpeechError(f"no audio {kind} device matches {name!r}; available {kind} devices:\n  {listing}")


def _default_device(kind: str) -> AudioDevice:
    sd = import_sounddevice()
    idx = sd.default.device[0 if kind == "input" else 1]
    if idx is None or int(idx) < 0:
        raise SpeechError(
            f"there is no default audio {kind} device; pass device=<name> "
            f"(see edgellm_sdk.speech.devices.list_devices())"
        )
    return find_device(int(idx), kind)


def resolve_device(device: str | int | AudioDevice | None, kind: str) -> AudioDevice:
    """``kind`` ("input" / "output") device: None = the system default, else as ``find_device``."""
    if device is None:
        return _default_device(kind)
    if isinstance(device, AudioDevice):
        return device
    return find_device(device, kind)


def run_with_timeout(fn: Callable[[], object], timeout: float) -> bool:
    """Run ``fn`` in a daemon thread; True if it finished within ``timeout`` seconds. A stuck
    PortAudio call is left behind in its thread instead of hanging the caller."""
    done = threading.Event()

    def target() -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the stream is being torn down
            _log.debug("audio stream shutdown: %s", exc)
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="edgellm-audio-close").start()
    return done.wait(timeout)
