"""LoRA: low-rank adapters on the linear layers, trained while the base weights stay frozen.

    y = x W^T + (alpha / rank) * dropout(x) A^T B^T      A [rank, in], B [out, rank]

A starts Kaiming-uniform and B at zero, so a fresh adapter changes nothing. Targets name the
graph's linear layers (``qkv``, ``o``, ``gate_up``, ``down``). ``merge_lora`` folds B A into W:
the exported model runs at the base model's speed. Merging is lossy under 4-bit quantization
(a small delta rounds back onto the base's grid), so an int4 export keeps the adapter unmerged:
``adapter_arrays`` gives the graph builder A and scale * B per linear (two small fp32 MatMuls
beside each quantized one). ``load_adapter`` applies a saved adapter to a TorchLlama.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ToolchainError
from .torch_llama import TorchLlama, nn, torch

TARGETS = ("qkv", "o", "gate_up", "down")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        base.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    @property
    def weight(self) -> torch.Tensor:
        """The merged weight W + scale * B A."""
        return self.base.weight + self.scale * (self.lora_b @ self.lora_a)


def apply_lora(
    model: TorchLlama,
    *,
    rank: int = 8,
    alpha: float | None = None,
    dropout: float = 0.0,
    targets: tuple[str, ...] = TARGETS,
) -> list[str]:
    """Freeze every parameter of ``model`` and wrap the target linears; returns their names."""
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1, got {rank!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout!r}")
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"LoRA targets must be among {', '.join(TARGETS)}, got {', '.join(targets) or 'none'}")
    model.requires_grad_(False)
    names = []
    for i, block in enumerate(model.blocks):
        for t in targets:
            setattr(block, f"{t}_proj", LoRALinear(getattr(block, f"{t}_proj"), rank, alpha or 2.0 * rank, dropout))
            names.append(f"layers.{i}.{t}_proj")
    return names


def merge_lora(model: TorchLlama) -> TorchLlama:
    """Replace each LoRALinear by a plain Linear holding its merged weight (in place)."""
    for block in model.blocks:
        for name, child in list(block.named_children()):
            if isinstance(child, LoRALinear):
                merged = nn.Linear(child.base.in_features, child.base.out_features, bias=False)
                with torch.no_grad():
                    merged.weight.copy_(child.weight)
                setattr(block, name, merged)
    return model


def adapter_arrays(model: TorchLlama) -> dict:
    """{"layers.3.qkv_proj": (A [rank, in], scale * B [out, rank])} of every LoRALinear, as float32 numpy."""
    out = {}
    for i, block in enumerate(model.blocks):
        for name, child in block.named_children():
            if isinstance(child, LoRALinear):
                a = child.lora_a.detach().float().numpy().copy()
                b = (child.lora_b.detach().float() * child.scale).numpy().copy()
                out[f"layers.{i}.{name}"] = (a, b)
    return out


def adapter_state(model: TorchLlama) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" in n}


def save_adapter(
    model: TorchLlama, path: str | Path, *, rank: int, alpha: float, targets: tuple[str, ...], **meta
) -> Path:
    """Write the adapter (A and B of every wrapped linear, and how to re-apply it) with torch.save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": 1,
            "rank": rank,
            "alpha": alpha,
            "targets": list(targets),
            "meta": meta,
            "state": adapter_state(model),
        },
        path,
    )
    return path


def load_adapter(model: TorchLlama, path: str | Path) -> dict:
    """Apply a saved adapter to ``model`` (unmerged: call merge_lora to fold it in); returns its header."""
    try:
        saved = torch.load(Path(path), weights_only=True)
        state = saved["state"]
        apply_lora(model, rank=int(saved["rank"]), alpha=float(saved["alpha"]), targets=tuple(saved["targets"]))
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        raise ToolchainError(f"cannot load the adapter {path}: {e}") from e
    missing = [n for n in missing if ".lora_" in n]
    if missing or unexpected:
        raise ToolchainError(
            f"adapter {path} does not fit this model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); was it trained on another model?"
        )
    return {k: v for k, v in saved.items() if k != "state"}
