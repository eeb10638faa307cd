"""Tokenizer (Hugging Face ``tokenizers``) and TextStream, the streaming detokenizer.

TextStream turns token ids into text pieces that are always valid, complete UTF-8:
``DecodeStream`` withholds bytes until a character is whole (CJK, emoji), and we also
hold back a trailing zero-width joiner so an emoji sequence is not split, plus any tail
that could be the beginning of a stop string.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import ModelCorrupt

_JOINERS = ("\u200d",)  # a character after these belongs to the same grapheme


class Tokenizer:
    def __init__(
        self,
        hf_tokenizer,
        *,
        eos_ids: Iterable[int] = (),
        bos_id: int | None = None,
        add_bos: bool = False,
        chat_template: str | None = None,
        special_tokens: dict | None = None,
    ):
        self.hf = hf_tokenizer
        self.eos_ids = frozenset(int(i) for i in eos_ids)
        self.bos_id, self.add_bos = bos_id, add_bos
        self.chat_template = chat_template
        self.special_tokens = special_tokens or {}
        self._encode_cached = functools.lru_cache(maxsize=128)(self._encode)  # repeated prompts

    @classmethod
    def from_dir(cls, path: str | Path) -> Tokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(path)
        try:
            hf = HFTokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as e:
            raise ModelCorrupt(f"cannot read {path / 'tokenizer.json'}: {e}") from e
        cfg = _read_json(path / "tokenizer_config.json")
        gen = _read_json(path / "generation_config.json")
        model_cfg = _read_json(path / "config.json")

        def token_id(value) -> int | None:
            if isinstance(value, dict):
                value = value.get("content")
            return hf.token_to_id(value) if isinstance(value, str) else None

        eos = gen.get("eos_token_id", model_cfg.get("eos_token_id"))
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if (tid := token_id(cfg.get("eos_token"))) is not None:
            eos_ids.add(tid)
        template = cfg.get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            template = next((t["template"] for t in template if t.get("name") == "default"), template[0]["template"])
        specials = {
            k: (v.get("content") if isinstance(v, dict) else v)
            for k in ("bos_token", "eos_token", "unk_token", "pad_token")
            if (v := cfg.get(k))
        }
        return cls(
            hf,
            eos_ids=eos_ids,
            bos_id=token_id(cfg.get("bos_token")),
            add_bos=bool(cfg.get("add_bos_token", False)),
            chat_template=template,
            special_tokens=specials,
        )

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
        ids = list(self._encode_cached(text))
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return ids

    def _encode(self, text: str) -> tuple[int, ...]:
        return tuple(self.hf.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=skip_special)

    def stream(self, stop: Sequence[str] = ()) -> TextStream:
        return TextStream(self, stop)


class TextStream:
    """Incremental detokenizer: ``step(id)`` returns the newly printable text (maybe "")."""

    def __init__(self, tokenizer: Tokenizer, stop: Sequence[str] = ()):
        from tokenizers.decoders import DecodeStream

        self._tok = tokenizer
        self._decoder = DecodeStream(skip_special_tokens=True)
        self._stop = [s for s in stop if s]
        self._pending = ""  # decoded but not yet emitted
        self.stopped: str | None = None  # the stop string that was found

    def step(self, token_id: int) -> str:
        if self.stopped is not None:
            return ""
        piece = self._decoder.step(self._tok.hf, int(token_id))
        if piece:
            self._pending += piece
        return self._release()

    def flush(self) -> str:
        """Everything still held back (call once generation has ended without a stop string)."""
        if self.stopped is not None:
            return ""
        out, self._pending = self._pending, ""
        return out

    def _release(self) -> str:
        text = self._pending
        for s in self._stop:
            i = text.find(s)
            if i >= 0 and (self.stopped is None or i < text.find(self.stopped)):
                self.stopped = s
        if self.stopped is not None:
            self._pending = ""
            return text[: text.find(self.stopped)]
        hold = max((_overlap(text, s) for s in self._stop), default=0)
        while hold < len(text) and text[len(text) - hold - 1] in _JOINERS:
            hold += 1
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ModelCorrupt(f"{path} is not valid JSON: {e}") from e
