"""The llama decoder of ``onnx_llama.py`` in torch, for training (fine-tune, distill).

It computes what the fp32 ONNX graph computes (a test compares logits to 1e-4): RMSNorm
with the config's eps, a fused ``qkv_proj`` -> rotate-half RoPE (the config's theta) ->
causal grouped-query attention -> ``o_proj``, then a SwiGLU MLP through a fused
``gate_up_proj`` whose width may differ per layer (pruned and student models), and the
tied embedding as the output head. Module names are the graph's (``layers.{i}.qkv_proj``
...), so LoRA targets, QuantSpec excludes and checkpoints all speak the same names.
Batches are right-padded: with causal attention no real token ever sees the padding.

Students: ``student_config`` picks a smaller config (a preset or a dict / JSON file) and
``init_student`` fills it from the teacher (its most influential layers, strongest FFN neurons).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np

from ..errors import MissingDependency, ToolchainError
from .checkpoint import dense, require_llama
from .gguf_llama import LlamaConfig, LlamaLayer, LlamaWeights

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as e:  # exercised by a test that hides torch
    raise MissingDependency("torch", "train") from e


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on [B, heads, S, head_dim] (GroupQueryAttention's rotary_interleaved=0)."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Block(nn.Module):
    """One decoder layer; attribute names match the graph's node names."""

    def __init__(self, cfg: LlamaConfig, ffn: int):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q_dim, kv_dim = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
        self.split, self.ffn = [q_dim, kv_dim, kv_dim], ffn
        self.attn_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.qkv_proj = nn.Linear(cfg.hidden_size, q_dim + 2 * kv_dim, bias=False)
        self.o_proj = nn.Linear(q_dim, cfg.hidden_size, bias=False)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.gate_up_proj = nn.Linear(cfg.hidden_size, 2 * ffn, bias=False)
        self.down_proj = nn.Linear(ffn, cfg.hidden_size, bias=False)

    def attention(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        q, k, v = self.qkv_proj(x).split(self.split, dim=-1)
        q = q.view(B, S, self.heads, self.head_dim).transpose(1, 2)  # [B, heads, S, head_dim]
        k = k.view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        # query head h reads kv head h // (heads / kv_heads), scale 1/sqrt(head_dim)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, S, -1))

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.ffn_norm(x))


class TorchLlama(nn.Module):
    def __init__(self, cfg: LlamaConfig, ffn_sizes: Sequence[int] | None = None):
        super().__init__()
        self.config = cfg
        ffn_sizes = list(ffn_sizes or [cfg.intermediate_size] * cfg.num_layers)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, f) for f in ffn_sizes)
        self.final_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.register_buffer("cos", torch.empty(0), persistent=False)
        self.register_buffer("sin", torch.empty(0), persistent=False)
        self.init_rope()

    def init_rope(self) -> None:
        """RoPE tables exactly as the graph builds them: float64 angles, stored as float32."""
        cfg, hd = self.config, self.config.head_dim
        inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        angles = np.outer(np.arange(cfg.max_position, dtype=np.float64), inv_freq)
        self.cos = torch.from_numpy(np.cos(angles).astype(np.float32))
        self.sin = torch.from_numpy(np.sin(angles).astype(np.float32))

    def forward(self, ids: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, S] -> logits [B, S, vocab]; with a bool mask ``keep`` [B, S] only those
        positions' logits, [N, vocab] (the vocabulary projection is most of a step's memory)."""
        S = ids.shape[1]
        if S > self.config.max_position:
            raise ValueError(f"sequence of {S} tokens exceeds the model's {self.config.max_position} positions")
        cos, sin = self.cos[:S], self.sin[:S]
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        h = self.final_norm(x)
        if keep is not None:
            h = h[keep]
        return F.linear(h, self.embed.weight if self.lm_head is None else self.lm_head.weight)

    @property
    def blocks(self) -> list[Block]:
        """The decoder blocks, typed (``layers`` is the ModuleList that registers them)."""
        return cast("list[Block]", list(self.layers))

    @classmethod
    def from_weights(cls, w: LlamaWeights) -> TorchLlama:
        with torch.device("meta"):  # no random init of weights about to be overwritten
            model = cls(w.config, [layer.gate.rows for layer in w.layers])
        model.to_empty(device="cpu").init_rope()

        def put(param: torch.Tensor, *arrays: np.ndarray) -> None:
            param.copy_(torch.from_numpy(np.ascontiguousarray(np.concatenate(arrays), np.float32)))

        with torch.no_grad():
            put(model.embed.weight, w.embed.dense())
            if model.lm_head is not None:
                put(model.lm_head.weight, w.lm_head.dense())
            for block, src in zip(model.blocks, w.layers):
                put(block.attn_norm.weight, src.attn_norm)
                put(block.qkv_proj.weight, src.q.dense(), src.k.dense(), src.v.dense())
                put(block.o_proj.weight, src.o.dense())
                put(block.ffn_norm.weight, src.ffn_norm)
                put(block.gate_up_proj.weight, src.gate.dense(), src.up.dense())
                put(block.down_proj.weight, src.down.dense())
            put(model.final_norm.weight, w.final_norm)
        return model

    def to_weights(self, metadata: dict | None = None) -> LlamaWeights:
        """fp32 LlamaWeights (LoRA layers contribute their merged weight)."""

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().to(torch.float32).cpu().numpy().copy()

        layers = []
        for b in self.blocks:
            q, k, v = np.split(arr(b.qkv_proj.weight), np.cumsum(b.split)[:-1])
            gate, up = np.split(arr(b.gate_up_proj.weight), 2)
            layers.append(
                LlamaLayer(
                    attn_norm=arr(b.attn_norm.weight),
                    q=dense(q),
                    k=dense(k),
                    v=dense(v),
                    o=dense(arr(b.o_proj.weight)),
                    ffn_norm=arr(b.ffn_norm.weight),
                    gate=dense(gate),
                    up=dense(up),
                    down=dense(arr(b.down_proj.weight)),
                )
            )
        cfg = replace(self.config, num_layers=len(layers), intermediate_size=max(layer.gate.rows for layer in layers))
        embed = dense(arr(self.embed.weight))
        lm_head = embed if self.lm_head is None else dense(arr(self.lm_head.weight))
        return LlamaWeights(cfg, embed, layers, arr(self.final_norm.weight), lm_head, dict(metadata or {}))


# --- students ----------------------------------------------------------------------------
# preset -> (parameter budget as a fraction of the teacher's, FFN width kept). For SmolLM2-135M
# (134.5 M parameters, 28.3 M of them the tied embedding): small = 16 of 30 layers at FFN 384
# (53.1 M, 39.5 %), tiny = 3 layers at FFN 384 (33.0 M, 24.5 %). Depth over width: on the
# sensor narration (copying names and numbers from a long prompt) 16 x 384 reached a held-out
# cross-entropy of 0.47 after 120 steps where 11 x 768 (the same budget) was at 3.4.
STUDENT_PRESETS = {"small": (0.40, 0.25), "tiny": (0.25, 0.25)}
STUDENT_KEYS = ("num_layers", "num_hidden_layers", "intermediate_size")


def config_parameters(cfg: LlamaConfig, ffn_sizes: Sequence[int] | None = None) -> int:
    """Parameters of a model with this config (the tied embedding counted once), no weights needed."""
    h, q_dim, kv_dim = cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
    attn = h * (q_dim + 2 * kv_dim) + q_dim * h
    ffn_sizes = ffn_sizes or [cfg.intermediate_size] * cfg.num_layers
    embed = cfg.vocab_size * h * (1 if cfg.tie_embeddings else 2)
    return embed + h + sum(attn + 3 * h * f + 2 * h for f in ffn_sizes)


def config_from_dir(root: str | Path) -> LlamaConfig:
    """The LlamaConfig of a model directory's config.json (no weights read)."""
    path = Path(root) / "config.json"
    try:
        c = json.loads(path.read_text())
        require_llama(c, Path(root))
        return LlamaConfig(
            vocab_size=int(c["vocab_size"]),
            hidden_size=int(c["hidden_size"]),
            intermediate_size=int(c["intermediate_size"]),
            num_layers=int(c["num_hidden_layers"]),
            num_heads=int(c["num_attention_heads"]),
            num_kv_heads=int(c.get("num_key_value_heads", c["num_attention_heads"])),
            rope_theta=float(c.get("rope_theta", 10000.0)),
            rms_eps=float(c.get("rms_norm_eps", 1e-5)),
            max_position=int(c.get("max_position_embeddings", 2048)),
            tie_embeddings=bool(c.get("tie_word_embeddings", True)),
        )
    except (OSError, ValueError, KeyError) as e:
        raise ToolchainError(f"cannot read the model config {path}: {e}") from e


def student_config(teacher: LlamaConfig, spec: str | Path | dict) -> LlamaConfig:
    """A student config: a preset ("small" <= 40 %, "tiny" ~25 % of the teacher's parameters),
    or a dict / JSON file with ``num_layers`` and ``intermediate_size``. Same tokenizer,
    hidden size and heads as the teacher (the student starts from its embedding)."""
    if isinstance(spec, str) and spec in STUDENT_PRESETS:
        budget, width = STUDENT_PRESETS[spec]
        ffn = min(teacher.intermediate_size, max(32, round(teacher.intermediate_size * width / 32) * 32))
        limit = budget * config_parameters(teacher)
        layers = max(
            [
                n
                for n in range(1, teacher.num_layers + 1)
                if config_parameters(replace(teacher, num_layers=n, intermediate_size=ffn)) <= limit
            ]
            or [1]
        )
        return replace(teacher, num_layers=layers, intermediate_size=ffn)
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise ToolchainError(
                f"student config {spec!r} is neither a preset ({', '.join(STUDENT_PRESETS)}) nor a JSON file"
            )
        try:
            spec = json.loads(path.read_text())
        except ValueError as e:
            raise ToolchainError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(spec, dict):
        raise ToolchainError(
            f'a student config is a JSON object like {{"num_layers": 8, "intermediate_size": '
            f"768}}, got {type(spec).__name__}"
        )
    same = {
        "hidden_size": teacher.hidden_size,
        "num_attention_heads": teacher.num_heads,
        "num_key_value_heads": teacher.num_kv_heads,
        "vocab_size": teacher.vocab_size,
    }
    for key, value in spec.items():
        if key in same and value != same[key]:
            raise ToolchainError(
                f"student {key}={value} differs from the teacher's {same[key]}: the student keeps "
                "the teacher's hidden size, heads and vocabulary (it shares the embedding); "
                "change num_layers and intermediate_size instead"
            )
        if key not in same and key not in STUDENT_KEYS:
            raise ToolchainError(f"unknown student config key {key!r}; use {', '.join(STUDENT_KEYS[1:])}")
    layers = spec.get("num_layers", spec.get("num_hidden_layers", teacher.num_layers))
    ffn = spec.get("intermediate_size", teacher.intermediate_size)
    for key, value, top in (
        ("num_layers", layers, teacher.num_layers),
        ("intermediate_size", ffn, teacher.intermediate_size),
    ):
        if not isinstance(value, int) or not 1 <= value <= top:
            raise ToolchainError(f"student {key} must be an integer in [1, {top}] (the teacher's), got {value!r}")
    if ffn % 32:
        raise ToolchainError(
            f"student intermediate_size must be a multiple of 32 (the block of the int8/int4 variants), got {ffn}"
        )
    return replace(teacher, num_layers=layers, intermediate_size=ffn)


def block_influence(model: TorchLlama, samples: Sequence[np.ndarray], limit: int = 32) -> list[float]:
    """Each layer's mean 1 - cos(h_in, h_out) over the tokens of (at most ``limit``, evenly picked)
    token sequences: how much it changes the residual stream ("block influence", ShortGPT;
    calibrate.py measures the same on an ONNX model)."""
    samples = list(samples)[:: max(1, -(-len(samples) // limit))]
    total, tokens = torch.zeros(len(model.layers), dtype=torch.float64), 0

    def record(i: int):
        def hook(module, inputs, output) -> None:
            total[i] += (1 - F.cosine_similarity(inputs[0], output, dim=-1)).sum().double()

        return hook

    hooks = [b.register_forward_hook(record(i)) for i, b in enumerate(model.blocks)]
    try:
        with torch.no_grad():
            for ids in samples:  # one at a time: no padding to mask out
                model(torch.as_tensor(ids)[None], torch.zeros(1, len(ids), dtype=torch.bool))
                tokens += len(ids)
    finally:
        for h in hooks:
            h.remove()
    return (total / max(tokens, 1)).tolist()


def init_student(
    teacher: LlamaWeights,
    cfg: LlamaConfig,
    importance: Sequence[np.ndarray] | None = None,
    influence: Sequence[float] | None = None,
) -> LlamaWeights:
    """Student weights cut from the teacher: ``cfg.num_layers`` of its layers, each FFN narrowed
    to its ``cfg.intermediate_size`` strongest neurons, embedding and final norm shared.
    Layers: the first and the last, then the most influential of the rest (``influence``, per
    teacher layer, see block_influence), else evenly spaced. On SmolLM2-135M tuned for the tasks
    the most influential after the first and last are layers 1 and 24, both skipped by even
    spacing. A neuron's strength is its mean |activation| on the distillation data
    times |down column| when ``importance`` (per teacher layer) is given, else the weight norms
    |gate row| * |up row| * |down column|. On SmolLM2-135M, halving every FFN raises the
    cross-entropy on the teacher's answers from 0.61 to 2.4 with activations, to 14 with weight
    norms alone."""
    n = len(teacher.layers)
    if influence is None or cfg.num_layers < 2:
        picks = sorted({int(i) for i in np.round(np.linspace(0, n - 1, cfg.num_layers))})
    else:
        rest = sorted(range(1, n - 1), key=lambda i: -influence[i])[: cfg.num_layers - 2]
        picks = sorted({0, n - 1, *rest})
    layers = []
    for i in picks:
        src = teacher.layers[i]
        gate, up, down = src.gate.dense(), src.up.dense(), src.down.dense()
        strength = np.linalg.norm(gate, axis=1) * np.linalg.norm(up, axis=1) if importance is None else importance[i]
        score = strength * np.linalg.norm(down, axis=0)
        keep = np.sort(np.argsort(-score, kind="stable")[: min(cfg.intermediate_size, len(score))])
        layers.append(replace(src, gate=dense(gate[keep]), up=dense(up[keep]), down=dense(down[:, keep])))
    meta = {**teacher.metadata, "student_layers": picks}
    cfg = replace(cfg, num_layers=len(layers), intermediate_size=max(layer.gate.rows for layer in layers))
    return LlamaWeights(cfg, teacher.embed, layers, teacher.final_norm.copy(), teacher.lm_head, meta)
