"""A tiny random llama written as a real GGUF file, and a numpy reference forward pass."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_vocab() -> tuple[list[str], list[str]]:
    """GPT-2 byte-level vocab: specials, 256 byte symbols, and a few merges."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "t h", "Ġ th", "Ġth e"]
    tokens = SPECIALS + alphabet + [m.replace(" ", "") for m in merges]
    return tokens, merges


def write_tiny_gguf(
    path: Path,
    *,
    qtype: str = "F32",
    seed: int = 0,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    ffn: int = 96,
) -> dict:
    """Write a llama GGUF with random weights; return HF-layout fp32 weights for the reference."""
    rng = np.random.default_rng(seed)
    tokens, merges = byte_vocab()
    vocab = len(tokens)
    head_dim = hidden // heads
    qt = gguf.GGMLQuantizationType[qtype]

    def mat(out: int, inp: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal((out, inp)) * scale).astype(np.float32)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (vocab - len(SPECIALS)))
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def permute(m: np.ndarray, n_head: int) -> np.ndarray:  # HF -> llama.cpp row order
        return m.reshape(n_head, 2, m.shape[0] // n_head // 2, *m.shape[1:]).swapaxes(1, 2).reshape(m.shape)

    def unpermute(m: np.ndarray, n_head: int) -> np.ndarray:
        return m.reshape(n_head, m.shape[0] // n_head // 2, 2, *m.shape[1:]).swapaxes(1, 2).reshape(m.shape)

    def add(name: str, m: np.ndarray, quantize: bool = True) -> np.ndarray:
        """Store m; return what a reader will dequantize (so the reference sees the same values)."""
        if quantize and qt != gguf.GGMLQuantizationType.F32:
            raw = gguf.quants.quantize(m, qt)
            w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qt)
            return gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(m.shape)
        w.add_tensor(name, m)
        return m

    ref = {
        "config": {
            "layers": layers,
            "hidden": hidden,
            "heads": heads,
            "kv_heads": kv_heads,
            "ffn": ffn,
            "vocab": vocab,
            "theta": 10000.0,
            "eps": 1e-5,
        },
        "layers": [],
    }
    embed_q = gguf.GGMLQuantizationType.Q8_0 if qt != gguf.GGMLQuantizationType.F32 else qt
    embed = mat(vocab, hidden, 0.5)
    if embed_q == gguf.GGMLQuantizationType.F32:
        w.add_tensor("token_embd.weight", embed)
    else:
        raw = gguf.quants.quantize(embed, embed_q)
        w.add_tensor("token_embd.weight", raw, raw_shape=raw.shape, raw_dtype=embed_q)
        embed = gguf.quants.dequantize(raw, embed_q).astype(np.float32).reshape(embed.shape)
    ref["embed"] = embed
    for i in range(layers):
        p = f"blk.{i}."
        q_hf, k_hf = mat(hidden, hidden), mat(kv_heads * head_dim, hidden)
        layer = {
            "attn_norm": add(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32), False),
            # quantize in llama.cpp order, then undo the permutation for the HF-layout reference
            "q": unpermute(add(p + "attn_q.weight", permute(q_hf, heads)), heads),
            "k": unpermute(add(p + "attn_k.weight", permute(k_hf, kv_heads)), kv_heads),
            "v": add(p + "attn_v.weight", mat(kv_heads * head_dim, hidden)),
            "o": add(p + "attn_output.weight", mat(hidden, hidden)),
            "ffn_norm": add(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32), False),
            "gate": add(p + "ffn_gate.weight", mat(ffn, hidden)),
            "up": add(p + "ffn_up.weight", mat(ffn, hidden)),
            "down": add(p + "ffn_down.weight", mat(hidden, ffn)),
        }
        ref["layers"].append(layer)
    ref["final_norm"] = add("output_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32), False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return ref


def reference_logits(ref: dict, ids: list[int]) -> np.ndarray:
    """Plain numpy llama forward (HF semantics: rotate-half RoPE, GQA, SwiGLU, tied head)."""
    c = ref["config"]
    hidden, heads, kv_heads = c["hidden"], c["heads"], c["kv_heads"]
    hd = hidden // heads
    x = ref["embed"][ids].astype(np.float64)
    n = len(ids)
    inv_freq = 1.0 / (c["theta"] ** (np.arange(0, hd, 2) / hd))
    ang = np.outer(np.arange(n), inv_freq)
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rms(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + c["eps"]) * g

    def rope(t):  # [h, n, hd]
        rot = np.concatenate([-t[..., hd // 2 :], t[..., : hd // 2]], -1)
        return t * cos + rot * sin

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for L in ref["layers"]:
        h = rms(x, L["attn_norm"])
        q = rope((h @ L["q"].T).reshape(n, heads, hd).transpose(1, 0, 2))
        k = rope((h @ L["k"].T).reshape(n, kv_heads, hd).transpose(1, 0, 2))
        v = (h @ L["v"].T).reshape(n, kv_heads, hd).transpose(1, 0, 2)
        rep = heads // kv_heads
        k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(n, hidden)
        x = x + o @ L["o"].T
        h = rms(x, L["ffn_norm"])
        g = h @ L["gate"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ L["up"].T)) @ L["down"].T
    return (rms(x, ref["final_norm"]) @ ref["embed"].T).astype(np.float32)
