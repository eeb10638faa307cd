"""A tiny random gemma3 written as a real GGUF file (the block types of a Q4_K_M file), and a
numpy reference forward pass with switches that turn single Gemma features off."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

Q = gguf.GGMLQuantizationType
CONTROL, UNKNOWN, NORMAL, BYTE = 3, 2, 1, 6
SPECIALS = [("<pad>", CONTROL), ("<eos>", CONTROL), ("<bos>", CONTROL), ("<unk>", UNKNOWN)]
SPECIALS += [("<start_of_turn>", CONTROL), ("<end_of_turn>", CONTROL)]
# SentencePiece BPE pieces, best score first (the merge order); every intermediate is a piece.
PIECES = ["he", "ll", "▁w", "or", "hell", "hello", "▁wor", "▁worl", "▁world", "▁hello", "▁h"]
CHARS = ["▁", "h", "e", "l", "o", "w", "r", "d", "a", "b", "c"]
WINDOW, LAYERS, GLOBAL_LAYER = 4, 6, 5  # layer 5 attends globally, 0-4 through the window
# Raw block layout per type: (bytes per block, values per block, offsets of fp16 fields, their scale).
BLOCKS = {
    Q.Q8_0: (34, 32, {0: 3e-3}),
    Q.Q5_0: (22, 32, {0: 8e-3}),
    Q.Q4_K: (144, 256, {0: 2e-4, 2: 1e-3}),
    Q.Q6_K: (210, 256, {208: 5e-5}),
}


def spm_vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = [t for t, _ in SPECIALS] + [f"<0x{b:02X}>" for b in range(256)] + PIECES + CHARS
    scores = [0.0] * (len(SPECIALS) + 256) + [-float(i + 1) for i in range(len(PIECES))] + [-100.0] * len(CHARS)
    types = [k for _, k in SPECIALS] + [BYTE] * 256 + [NORMAL] * (len(PIECES) + len(CHARS))
    return tokens, scores, types


def random_blocks(rng: np.random.Generator, qtype: Q, rows: int, cols: int) -> np.ndarray:
    """Random raw GGUF blocks with fp16 scale fields kept small (gguf-py cannot quantize k-quants)."""
    size, per_block, halves = BLOCKS[qtype]
    raw = rng.integers(0, 256, (rows, cols // per_block, size), dtype=np.uint8)
    for offset, scale in halves.items():
        d = (scale * (0.5 + rng.random(raw.shape[:2]))).astype(np.float16)
        raw[..., offset : offset + 2] = d.view(np.uint8).reshape(*raw.shape[:2], 2)
    return raw.reshape(rows, -1)


def write_tiny_gemma(path: Path, *, seed: int = 0, hidden: int = 256, heads: int = 4, kv_heads: int = 1,
                     head_dim: int = 64, ffn: int = 512) -> dict:  # fmt: skip
    """Write a gemma3 GGUF with random weights; return the dequantized weights for the reference."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = spm_vocab()
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_block_count(LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_sliding_window(WINDOW)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)

    def quantized(name: str, qtype: Q, rows: int, cols: int) -> np.ndarray:
        raw = random_blocks(rng, qtype, rows, cols)
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qtype)
        return gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(rows, cols)

    def norm(name: str, size: int) -> np.ndarray:  # llama.cpp stores Gemma's (1 + w)
        g = (1 + 0.2 * rng.standard_normal(size)).astype(np.float32)
        w.add_tensor(name, g)
        return g

    ref: dict = {"hidden": hidden, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "eps": 1e-6}
    ref["embed"] = quantized("token_embd.weight", Q.Q8_0, len(tokens), hidden)
    ref["layers"] = []
    for i in range(LAYERS):
        p = f"blk.{i}."
        first = i == 0  # Q4_K_M keeps some v / down matrices in higher precision
        ref["layers"].append({
            "attn_norm": norm(p + "attn_norm.weight", hidden),
            "q": quantized(p + "attn_q.weight", Q.Q5_0, heads * head_dim, hidden),
            "k": quantized(p + "attn_k.weight", Q.Q5_0, kv_heads * head_dim, hidden),
            "v": quantized(p + "attn_v.weight", Q.Q8_0 if first else Q.Q5_0, kv_heads * head_dim, hidden),
            "q_norm": norm(p + "attn_q_norm.weight", head_dim),
            "k_norm": norm(p + "attn_k_norm.weight", head_dim),
            "o": quantized(p + "attn_output.weight", Q.Q4_K, hidden, heads * head_dim),
            "post_attn_norm": norm(p + "post_attention_norm.weight", hidden),
            "ffn_norm": norm(p + "ffn_norm.weight", hidden),
            "gate": quantized(p + "ffn_gate.weight", Q.Q5_0, ffn, hidden),
            "up": quantized(p + "ffn_up.weight", Q.Q5_0, ffn, hidden),
            "down": quantized(p + "ffn_down.weight", Q.Q6_K if first else Q.Q4_K, hidden, ffn),
            "post_ffn_norm": norm(p + "post_ffw_norm.weight", hidden),
        })  # fmt: skip
    ref["final_norm"] = norm("output_norm.weight", hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return ref


def reference_logits(ref: dict, ids: list[int], *, window: bool = True, qk_norm: bool = True,
                     post_norms: bool = True) -> np.ndarray:  # fmt: skip
    """Plain numpy Gemma 3 forward (transformers' semantics); the switches drop one feature each."""
    hidden, heads, kv_heads, hd, eps = (ref[k] for k in ("hidden", "heads", "kv_heads", "head_dim", "eps"))
    n = len(ids)
    x = ref["embed"][ids].astype(np.float64) * np.sqrt(hidden)

    def rms(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * g

    def rope_tables(theta):
        ang = np.outer(np.arange(n), 1.0 / (theta ** (np.arange(0, hd, 2) / hd)))
        return np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(t, cos, sin):  # [h, n, hd], rotate-half
        return t * cos + np.concatenate([-t[..., hd // 2 :], t[..., : hd // 2]], -1) * sin

    pos = np.arange(n)
    causal = pos[None, :] <= pos[:, None]
    local = causal & (pos[:, None] - pos[None, :] < WINDOW)
    for i, L in enumerate(ref["layers"]):
        is_global = i == GLOBAL_LAYER
        cos, sin = rope_tables(1e6 if is_global else 1e4)
        h = rms(x, L["attn_norm"])
        q = (h @ L["q"].T).reshape(n, heads, hd).transpose(1, 0, 2)
        k = (h @ L["k"].T).reshape(n, kv_heads, hd).transpose(1, 0, 2)
        v = (h @ L["v"].T).reshape(n, kv_heads, hd).transpose(1, 0, 2)
        if qk_norm:
            q, k = rms(q, L["q_norm"]), rms(k, L["k_norm"])
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k, v = np.repeat(k, heads // kv_heads, 0), np.repeat(v, heads // kv_heads, 0)
        allowed = causal if is_global or not window else local
        att = np.where(allowed, q @ k.transpose(0, 2, 1) / np.sqrt(hd), -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(n, heads * hd) @ L["o"].T
        x = x + (rms(o, L["post_attn_norm"]) if post_norms else o)
        h = rms(x, L["ffn_norm"])
        g = h @ L["gate"].T
        gelu = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g**3)))
        f = (gelu * (h @ L["up"].T)) @ L["down"].T
        x = x + (rms(f, L["post_ffn_norm"]) if post_norms else f)
    return (rms(x, ref["final_norm"]) @ ref["embed"].T).astype(np.float32)
