"""Activation statistics of a model on calibration text, from its fp32 graph under onnxruntime.

The graph is loaded with extra outputs ("taps") on the input of every linear layer and on
the residual stream between layers, and run on windows of the calibration text with an
empty KV cache. Collected:

- ``mean_sq[name]`` [K]: E[x^2] per input column of each linear layer (activation-aware
  quantization weighs the error of column k by it; pruning ranks FFN neurons by it);
- ``layer_influence[i]``: 1 - mean cos(h_in, h_out) of layer i on the residual stream
  ("block influence", ShortGPT): how much the layer changes the hidden state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ToolchainError
from ..models.manifest import Manifest

LINEARS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass
class ActivationStats:
    tokens: int = 0
    mean_sq: dict[str, np.ndarray] = field(default_factory=dict)
    layer_influence: list[float] = field(default_factory=list)


def activation_stats(
    manifest: Manifest,
    text: str,
    *,
    max_tokens: int = 4096,
    window: int = 256,
    threads: int | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> ActivationStats:
    import onnxruntime as ort

    from ..tokenizer import Tokenizer

    ids = Tokenizer.from_dir(manifest.root).encode(text)[:max_tokens]
    if len(ids) < 16:
        raise ToolchainError(
            f"the calibration text has {len(ids)} tokens; give at least a few hundred "
            "(text from the domain the model will run on)"
        )
    model = onnx.load(str(manifest.variant_path("fp32")))
    graph = model.graph
    nodes = {n.name: n for n in graph.node}
    taps, layer_inputs = {}, []
    i = 0
    while f"layers.{i}.attn_norm" in nodes:
        for lin in LINEARS:
            node = nodes.get(f"layers.{i}.{lin}")
            if node is None or node.op_type != "MatMul":
                raise ToolchainError(
                    f"{manifest.root}: layer {i} has no fp32 {lin}; not a graph from edgellm's converter"
                )
            taps[f"layers.{i}.{lin}"] = node.input[0]
        layer_inputs.append(list(nodes[f"layers.{i}.attn_norm"].input[: 1 if i == 0 else 2]))
        i += 1
    layer_inputs.append(list(nodes["final_norm"].input[:2]))
    names = sorted(set(taps.values()) | {n for pair in layer_inputs for n in pair})
    for name in names:
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    del model, graph

    feeds_base = {}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values."):
            kv_heads, head_dim = inp.shape[1], inp.shape[3]
            feeds_base[inp.name] = np.zeros((1, kv_heads, 0, head_dim), np.float32)
    out_names = [o.name for o in session.get_outputs()]
    wanted = [out_names.index(n) for n in names]
    stats = ActivationStats()
    sums = {lin: 0.0 for lin in taps}
    influence = np.zeros(len(layer_inputs) - 1)
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        n = len(chunk)
        feeds = {
            **feeds_base,
            "input_ids": np.array([chunk], np.int64),
            "attention_mask": np.ones((1, n), np.int64),
            "position_ids": np.arange(n, dtype=np.int64)[None],
            "num_logits_to_keep": np.array(1, np.int64),
        }
        values = session.run([out_names[j] for j in wanted], feeds)
        got = {name: v.reshape(-1, v.shape[-1]).astype(np.float64) for name, v in zip(names, values)}
        for lin, tensor in taps.items():
            sums[lin] = sums[lin] + (got[tensor] ** 2).sum(axis=0)
        streams = [sum(got[t] for t in pair) for pair in layer_inputs]
        for layer, (h_in, h_out) in enumerate(pairwise(streams)):
            cos = (h_in * h_out).sum(-1) / (np.linalg.norm(h_in, axis=-1) * np.linalg.norm(h_out, axis=-1) + 1e-12)
            influence[layer] += (1 - cos).sum()
        stats.tokens += n
        progress(f"calibration: {stats.tokens}/{len(ids)} tokens")
    stats.mean_sq = {lin: np.asarray(s / stats.tokens, dtype=np.float32) for lin, s in sums.items()}
    stats.layer_influence = [float(v / stats.tokens) for v in influence]
    return stats
