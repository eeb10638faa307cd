"""FeedbackLog: examples the user approved, kept on the device for fine-tuning later (opt-in, redacted, bounded).

A device learns from what it already sees only when the user says so: the app creates a FeedbackLog
(nothing is collected otherwise) and adds an example when the user confirms a voice-assistant turn,
corrects a sensor narration, or corrects a parsed command. Each line is a task example in the format
``toolchain/data.py`` reads, so ``edgellm finetune --data feedback.jsonl`` and the federated client take
the file as it is::

    {"messages": [{"role": "system", ...}, {"role": "user", "content": "..."}], "target": "...",
     "match": "exact", "kind": "turn", "time": "2026-05-12T14:30:00Z"}

Personal data is redacted before anything is written (privacy.Redactor; ``redact_pii=False`` opts out).
The file stays under ``max_bytes``: the oldest lines are dropped. Every write replaces the whole file
atomically (a temporary file, fsync, rename) under a lock file, so a crash leaves the old or the new
file, never a torn line, and threads and processes sharing one log do not lose each other's lines.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import MissingDependency
from .privacy import Redactor, default_redactor, privacy_available

try:
    import fcntl
except ImportError:  # not POSIX: threads of one process are still serialized
    fcntl = None  # type: ignore[assignment]

KINDS = ("turn", "narration", "command")


class FeedbackLog:
    """``path``: the JSONL file. ``max_bytes``: its budget. ``system``: a default system prompt for new examples."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 4 << 20,
        redact_pii: bool = True,
        redactor: Redactor | None = None,
        system: str | None = None,
    ):
        if not isinstance(max_bytes, int) or max_bytes < 1024:
            raise ValueError(f"max_bytes must be an int >= 1024, got {max_bytes!r}")
        if redact_pii and redactor is None and not privacy_available():
            raise MissingDependency(
                "presidio-analyzer",
                "privacy",
                "FeedbackLog redacts personal data with the privacy extra: pip install 'edgellm-sdk[privacy]' "
                "(Python >= 3.11), or pass redact_pii=False to store the text as given",
            )
        self.path, self.max_bytes, self.redact_pii, self.system = Path(path), max_bytes, redact_pii, system
        self.redactor = redactor
        self.dropped = 0  # lines dropped to stay under max_bytes, by this object
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # --- what an app records ----------------------------------------------------------------------
    def add_turn(self, transcript: str, answer: str, *, system: str | None = None) -> dict:
        """A voice-assistant turn the user confirmed: what they said, and the answer they accepted."""
        return self.add(transcript, answer, kind="turn", system=system)

    def add_narration(self, prompt: str, corrected: str, *, system: str | None = None) -> dict:
        """A sensor narration the user corrected: the narrator's prompt (readings) and the right sentence."""
        return self.add(prompt, corrected, kind="narration", system=system)

    def add_command(self, utterance: str, command: dict | str, *, system: str | None = None) -> dict:
        """A parsed command the user corrected: the utterance and the right command (JSON, compared as JSON)."""
        return self.add(utterance, command, kind="command", system=system)

    def add(
        self,
        prompt: str | Sequence[dict],
        target: str | dict | list,
        *,
        kind: str = "turn",
        system: str | None = None,
    ) -> dict:
        """Append one example (prompt: a user message or chat messages; target: the approved answer).

        Returns the line as written (redacted). A JSON target (dict or list) is matched as JSON.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        messages = _messages(prompt, system if system is not None else self.system)
        match = "json" if isinstance(target, dict | list) else "exact"
        if not isinstance(target, str | dict | list) or (isinstance(target, str) and not target.strip()):
            raise ValueError("target must be a non-empty string, or a JSON object or list")
        if self.redact_pii:
            messages = [{**m, "content": self._redact(m["content"])} for m in messages]
            target = self._redact_value(target)
        line: dict[str, Any] = {
            "messages": messages,
            "target": target if isinstance(target, str) else json.dumps(target, ensure_ascii=False),
            "match": match,
            "kind": kind,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        data = json.dumps(line, ensure_ascii=False) + "\n"
        if len(data.encode()) > self.max_bytes:
            raise ValueError(f"one example of {len(data.encode())} bytes exceeds max_bytes={self.max_bytes}")
        with self._lock, _FileLock(self.path):
            lines = self._read_lines() + [data]
            total = sum(len(x.encode()) for x in lines)
            while total > self.max_bytes:
                total -= len(lines.pop(0).encode())
                self.dropped += 1
            _write_atomically(self.path, "".join(lines))
        return line

    # --- reading and housekeeping -----------------------------------------------------------------
    def examples(self) -> list[dict]:
        """Every line, oldest first."""
        with self._lock:
            return [json.loads(x) for x in self._read_lines()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._read_lines())

    @property
    def nbytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def clear(self) -> None:
        with self._lock, _FileLock(self.path):
            _write_atomically(self.path, "")

    def _read_lines(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [x + "\n" for x in text.splitlines() if x.strip()]

    def _redact(self, text: str) -> str:
        return (self.redactor or default_redactor()).redact(text)

    def _redact_value(self, value):
        """Redact the strings inside a JSON value, keeping it valid JSON."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {k: self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(v) for v in value]
        return value


def _messages(prompt: str | Sequence[dict], system: str | None) -> list[dict]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("prompt must be a non-empty string or a list of chat messages")
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
        if not messages or not all(
            isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
        ):
            raise ValueError('prompt messages must be a non-empty list of {"role": str, "content": str}')
    if system is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:  # owner only
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _FileLock:
    """An exclusive lock on ``<path>.lock`` across processes (POSIX flock; a no-op elsewhere)."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")
        self.fd: int | None = None

    def __enter__(self) -> None:
        if fcntl is not None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
