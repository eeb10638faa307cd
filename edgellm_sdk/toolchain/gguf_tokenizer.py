"""Rebuild a Hugging Face ``tokenizer.json`` from a GGUF's vocabulary.

``tokenizer.ggml.model == "gpt2"``: byte-level BPE. The pre-tokenizer follows the GGUF's
``tokenizer.ggml.pre`` name: "smollm" splits digits one by one before the byte-level regex,
as SmolLM2's original tokenizer.json does.
``"llama"``: SentencePiece BPE (Gemma): spaces become "▁", pieces merge by score (the merge
list is derived from the scores, as transformers' SentencePiece converter does), characters
outside the vocabulary fall back to <0xNN> byte tokens, and no pre-tokenizer splits the text.
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ..errors import ConversionError

CONTROL = 3  # llama.cpp token type for control/special tokens
USER_DEFINED = 4
NORMAL, BYTE = 1, 6
MODELS = ("gpt2", "llama")
_DIGIT_SPLITTING_PRE = {"smollm", "starcoder", "refact", "command-r", "olmo"}


def build_tokenizer(metadata: dict) -> Tokenizer:
    model = metadata.get("tokenizer.ggml.model")
    if model not in MODELS:
        raise ConversionError(
            f"tokenizer model {model!r} is not supported; supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece BPE)"
        )
    tok = _sentencepiece(metadata) if model == "llama" else _byte_level(metadata)
    tokens, types = metadata["tokenizer.ggml.tokens"], list(metadata.get("tokenizer.ggml.token_type", []))
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == CONTROL]
    user = [AddedToken(tokens[i], special=False, normalized=False) for i, t in enumerate(types) if t == USER_DEFINED]
    tok.add_special_tokens(special)
    if user:
        tok.add_tokens(user)
    return tok


def _sentencepiece(metadata: dict) -> Tokenizer:
    tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
    scores = list(metadata.get("tokenizer.ggml.scores") or [])
    types = list(metadata.get("tokenizer.ggml.token_type", [NORMAL] * len(tokens)))
    if len(scores) != len(tokens):
        raise ConversionError("a SentencePiece GGUF vocabulary needs one score per token (tokenizer.ggml.scores)")
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ConversionError("GGUF vocabulary has duplicate tokens")
    unk = metadata.get("tokenizer.ggml.unknown_token_id")
    tok = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=_merges_by_score(tokens, scores, types, vocab),
            unk_token=tokens[int(unk)] if unk is not None else None,
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    if metadata.get("tokenizer.ggml.add_space_prefix", False):
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return tok


def _merges_by_score(tokens: list[str], scores: list[float], types: list[int], vocab: dict) -> list[tuple[str, str]]:
    """Every split of a normal piece into two pieces of the vocabulary, the best-scored piece first:
    BPE that applies these merges in order picks the pairs SentencePiece's scores pick."""
    merges: list[tuple[float, int, str, str]] = []
    for i, piece in enumerate(tokens):
        if types[i] != NORMAL or len(piece) < 2:
            continue
        pairs = [(piece[:j], piece[j:]) for j in range(1, len(piece)) if piece[:j] in vocab and piece[j:] in vocab]
        pairs.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend((-scores[i], i, left, right) for left, right in pairs)
    merges.sort(key=lambda m: (m[0], m[1]))
    return [(left, right) for _, _, left, right in merges]


def _byte_level(metadata: dict) -> Tokenizer:
    tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in metadata.get("tokenizer.ggml.merges", [])]
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
    return tok


# Gemma's chat turns (its GGUFs often carry no template): a system message joins the first user turn;
# no bos_token here, the tokenizer adds it (add_bos_token).
GEMMA_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] | trim + '\n\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def end_of_turn_ids(metadata: dict) -> list[int]:
    """The end-of-sequence token and, when the vocabulary has one, the chat end-of-turn token."""
    tokens = metadata["tokenizer.ggml.tokens"]
    ids = [int(metadata.get("tokenizer.ggml.eos_token_id", 0))]
    eot = metadata.get("tokenizer.ggml.eot_token_id")
    if eot is None and "<end_of_turn>" in tokens:
        eot = list(tokens).index("<end_of_turn>")
    return ids + ([int(eot)] if eot is not None and int(eot) not in ids else [])


def chat_template(metadata: dict) -> str | None:
    template = metadata.get("tokenizer.chat_template")
    if template is None and "<start_of_turn>" in metadata["tokenizer.ggml.tokens"]:
        return GEMMA_TEMPLATE
    return template


def tokenizer_config(metadata: dict) -> dict:
    tokens = metadata["tokenizer.ggml.tokens"]

    def name(key: str):
        i = metadata.get(key)
        return tokens[int(i)] if i is not None and 0 <= int(i) < len(tokens) else None

    types = metadata.get("tokenizer.ggml.token_type", [])
    return {
        "tokenizer_class": "GemmaTokenizer" if metadata.get("tokenizer.ggml.model") == "llama" else "GPT2Tokenizer",
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": False,
        "bos_token": name("tokenizer.ggml.bos_token_id"),
        "eos_token": name("tokenizer.ggml.eos_token_id"),
        "unk_token": name("tokenizer.ggml.unknown_token_id"),
        "pad_token": name("tokenizer.ggml.padding_token_id"),
        "additional_special_tokens": [tokens[i] for i, t in enumerate(types) if t == CONTROL],
        "chat_template": chat_template(metadata),
        "clean_up_tokenization_spaces": False,
        "model_max_length": None,
    }
