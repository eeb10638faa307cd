"""Rebuild a Hugging Face ``tokenizer.json`` from a GGUF's byte-level BPE vocabulary.

Supports ``tokenizer.ggml.model == "gpt2"`` (byte-level BPE). The pre-tokenizer follows
the GGUF's ``tokenizer.ggml.pre`` name: "smollm" splits digits one by one before the
byte-level regex, as SmolLM2's original tokenizer.json does.
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from ..errors import ConversionError

CONTROL = 3  # llama.cpp token type for control/special tokens
USER_DEFINED = 4
_DIGIT_SPLITTING_PRE = {"smollm", "starcoder", "refact", "command-r", "olmo"}


def build_tokenizer(metadata: dict) -> Tokenizer:
    model = metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise ConversionError(f"tokenizer model {model!r} is not supported (only byte-level BPE 'gpt2')")
    tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in metadata.get("tokenizer.ggml.merges", [])]
    types = list(metadata.get("tokenizer.ggml.token_type", [1] * len(tokens)))
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ConversionError("GGUF vocabulary has duplicate tokens")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if metadata.get("tokenizer.ggml.pre") in _DIGIT_SPLITTING_PRE:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == CONTROL]
    user = [AddedToken(tokens[i], special=False, normalized=False) for i, t in enumerate(types) if t == USER_DEFINED]
    tok.add_special_tokens(special)
    if user:
        tok.add_tokens(user)
    return tok


def tokenizer_config(metadata: dict) -> dict:
    tokens = metadata["tokenizer.ggml.tokens"]

    def name(key: str):
        i = metadata.get(key)
        return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None

    types = metadata.get("tokenizer.ggml.token_type", [])
    return {
        "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": False,
        "bos_token": name("tokenizer.ggml.bos_token_id"),
        "eos_token": name("tokenizer.ggml.eos_token_id"),
        "unk_token": name("tokenizer.ggml.unknown_token_id"),
        "pad_token": name("tokenizer.ggml.padding_token_id"),
        "additional_special_tokens": [tokens[i] for i, t in enumerate(types) if t == CONTROL],
        "chat_template": metadata.get("tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": None,
    }
