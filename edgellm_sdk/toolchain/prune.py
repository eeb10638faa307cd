"""Structured pruning: drop MLP neurons that stay (near) inactive on the target domain, and
optionally whole layers that change the hidden state least.

Neuron j of a layer's MLP scores ``sqrt(E[a_j^2]) * ||W_down[:, j]||`` (its activation on the
calibration text times how much it writes back; Wanda-style), and the lowest ``ratio`` of
each layer's neurons are removed from gate, up and down. The kept count is rounded to a
multiple of 32 so every layer still packs into whole quantization blocks. Layers are ranked
by block influence (1 - cos(h_in, h_out), see calibrate.py); ``drop_layers`` removes the
least influential ones (never the first). The result is a plain model directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..models.manifest import Manifest
from .calibrate import ActivationStats, activation_stats
from .checkpoint import add_variant, dense, load_weights, model_dir, parameter_count, save_model
from .data import read_text
from .gguf_llama import LlamaWeights
from .quantspec import QuantSpec

ALIGN = 32


@dataclass
class PruneReport:
    parameters_before: int
    parameters_after: int
    ffn_before: list[int]
    ffn_after: list[int]
    dropped_layers: list[int]
    inactive_neurons: int  # neurons whose RMS activation is < 1 % of their layer's median
    calibration_tokens: int
    model_dir: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def prune_weights(
    w: LlamaWeights, stats: ActivationStats, *, ratio: float, drop_layers: int = 0
) -> tuple[LlamaWeights, PruneReport]:
    if not 0 <= ratio < 1:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    if not 0 <= drop_layers < len(w.layers):
        raise ValueError(f"drop_layers must be in [0, {len(w.layers) - 1}] (the first layer stays), got {drop_layers}")
    influence = stats.layer_influence
    dropped = sorted(sorted(range(1, len(w.layers)), key=lambda i: influence[i])[:drop_layers])
    layers, inactive = [], 0
    for i, layer in enumerate(w.layers):
        if i in dropped:
            continue
        act_rms = np.sqrt(stats.mean_sq[f"layers.{i}.down_proj"])
        inactive += int((act_rms < 0.01 * np.median(act_rms)).sum())
        down = layer.down.dense()
        score = act_rms * np.linalg.norm(down, axis=0)
        width = layer.gate.rows
        keep_n = max(ALIGN, round(width * (1 - ratio) / ALIGN) * ALIGN) if ratio else width
        keep = np.sort(np.argsort(-score, kind="stable")[: min(keep_n, width)])
        layers.append(
            replace(
                layer, gate=dense(layer.gate.dense()[keep]), up=dense(layer.up.dense()[keep]), down=dense(down[:, keep])
            )
        )
    cfg = replace(w.config, num_layers=len(layers), intermediate_size=max(ly.gate.rows for ly in layers))
    pruned = replace(w, config=cfg, layers=layers)
    report = PruneReport(
        parameter_count(w),
        parameter_count(pruned),
        [ly.gate.rows for ly in w.layers],
        [ly.gate.rows for ly in layers],
        dropped,
        inactive,
        stats.tokens,
    )
    return pruned, report


def prune(
    model: str | Path | Manifest,
    calibration: str | Path,
    out_dir: str | Path,
    *,
    ratio: float = 0.3,
    drop_layers: int = 0,
    max_tokens: int = 4096,
    name: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> PruneReport:
    """Prune ``model`` on ``calibration`` text into a new model directory (fp32, q8 and int4, default int4)."""
    manifest = model if isinstance(model, Manifest) else model_dir(model)
    text = read_text(calibration, what="calibration text")
    stats = activation_stats(manifest, text, max_tokens=max_tokens, progress=progress)
    pruned, report = prune_weights(load_weights(manifest), stats, ratio=ratio, drop_layers=drop_layers)
    out = Path(out_dir)
    source = {
        "pruned_from": manifest.name,
        "prune": {
            "ratio": ratio,
            "drop_layers": report.dropped_layers,
            "calibration": Path(calibration).name,
            "calibration_tokens": stats.tokens,
        },
    }
    new = save_model(
        pruned,
        out,
        tokenizer_from=manifest.root,
        name=name or out.name,
        variants=("fp32", "q8"),
        source=source,
        progress=progress,
    )
    progress("quantizing int4")
    add_variant(new, "int4", QuantSpec(bits=4), weights=pruned, make_default=True)
    report.model_dir = str(out)
    return report
