"""Quantization-aware training: the decoder's linear weights seen through the int4 grid.

During QAT every linear weight is replaced, in the forward pass, by what the int4 export
stores for it: per row, blocks of ``block`` input columns, 16 levels from the block's
minimum to its maximum (``quantspec``'s float-offset int4 with no clip). Gradients pass
straight through to the fp32 weights (STE), so training moves them towards values that
survive rounding. ``finish_qat`` leaves the weights on the grid: the int4 export then
reproduces them exactly and the int4 variant computes what the fp32 one does.
``train_on_grid`` runs such steps after a distillation or a (merged) LoRA fine-tune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from torch import nn
from torch.nn.utils import parametrize

from ..errors import ToolchainError
from .torch_llama import TorchLlama, torch
from .train import QUANTIZE, Progress, Sample, TrainConfig, TrainResult, lm_loss, train

QAT_LR = 0.25  # quantization-aware steps run at this fraction of the training's learning rate

LINEARS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


def fake_quant_int4(w: torch.Tensor, block: int) -> torch.Tensor:
    """``w`` [out, in] rounded to 16 levels between each block's min and max."""
    rows, cols = w.shape
    blocks = w.reshape(rows, cols // block, block)
    lo, hi = blocks.amin(-1, keepdim=True), blocks.amax(-1, keepdim=True)
    step = torch.where(hi > lo, (hi - lo) / 15, torch.ones_like(hi))
    q = torch.clamp(torch.round((blocks - lo) / step), 0, 15)
    return (q * step + lo).reshape(rows, cols)


class _StraightThrough(nn.Module):
    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (fake_quant_int4(w, self.block) - w).detach()


def _linears(net: TorchLlama):
    for i, layer in enumerate(net.layers):
        for name in LINEARS:
            yield f"layers.{i}.{name}", getattr(layer, name)


def apply_qat(net: TorchLlama, block: int = 32) -> None:
    """Train ``net``'s decoder linears through the int4 grid (the embedding / head stays as it is)."""
    for name, linear in _linears(net):
        if linear.in_features % block:
            raise ToolchainError(
                f"{name} has {linear.in_features} inputs, not a multiple of the int4 block "
                f"{block}; quantization-aware training needs whole blocks"
            )
        parametrize.register_parametrization(linear, "weight", _StraightThrough(block))


def finish_qat(net: TorchLlama) -> None:
    """Put the weights on the grid for good and drop the training-time wrapper."""
    for _, linear in _linears(net):
        if parametrize.is_parametrized(linear, "weight"):
            parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)


def train_on_grid(
    net: TorchLlama,
    samples: Sequence[Sample],
    cfg: TrainConfig,
    work_dir: Path,
    *,
    steps: int,
    after: TrainResult,
    loss_fn: Callable = lm_loss,
    fingerprint: dict | None = None,
    resume: bool = True,
    on_step: Callable[[Progress], None] | None = None,
) -> TrainResult:
    """``steps`` quantization-aware steps of ``net``'s trainable weights (``cfg`` at QAT_LR of its
    learning rate, no warmup), which end on the int4 grid. They follow the training run ``after``;
    checkpoints go to ``work_dir``/qat-after-<its steps>, so a run trained longer gets its own."""
    apply_qat(net, QUANTIZE["int4"].block)
    try:
        return train(
            net,
            samples,
            replace(cfg, steps=steps, lr=cfg.lr * QAT_LR, warmup=0),
            Path(work_dir) / f"qat-after-{after.steps}",
            loss_fn=loss_fn,
            fingerprint=fingerprint,
            resume=resume,
            on_step=on_step,
        )
    finally:
        finish_qat(net)
