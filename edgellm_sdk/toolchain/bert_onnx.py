"""Sentence-embedding BERT (sentence-transformers layout, safetensors) -> one ONNX graph.

Inputs input_ids, attention_mask [B,S] int64; output ``sentence_embedding`` [B,H]: the
attention-masked mean of the last hidden states, L2-normalized (what all-MiniLM-L6-v2's
pooling + Normalize modules do). Plain ONNX ops; onnxruntime fuses the attention.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from ..errors import ConversionError
from .onnx_graph import OnnxGraph

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            data = f.read()
    except (OSError, ValueError, struct.error) as e:
        raise ConversionError(f"{path} is not a readable safetensors file: {e}") from e
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ConversionError(f"{path.name}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def build_bert_onnx(weights: dict[str, np.ndarray], config: dict):
    g = OnnxGraph()
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    eps, hd = float(config.get("layer_norm_eps", 1e-12)), hidden // heads

    def get(name: str) -> np.ndarray:
        if name not in w:
            raise ConversionError(f"missing tensor {name}")
        return np.ascontiguousarray(w[name], dtype=np.float32)

    consts: dict[str, str] = {}

    def const(name: str, value) -> str:
        if name not in consts:
            consts[name] = g.init(name, np.asarray(value))
        return consts[name]

    def dense(x: str, prefix: str) -> str:
        y = g.op("MatMul", x, g.init(prefix + ".weight", get(prefix + ".weight").T.copy()))
        return g.op("Add", y, g.init(prefix + ".bias", get(prefix + ".bias")))

    def layer_norm(x: str, prefix: str) -> str:
        return g.op(
            "LayerNormalization",
            x,
            g.init(prefix + ".weight", get(prefix + ".weight")),
            g.init(prefix + ".bias", get(prefix + ".bias")),
            axis=-1,
            epsilon=eps,
        )

    seq = g.op("Shape", "input_ids", start=1, end=2)
    positions = g.op(
        "Slice",
        g.init("position_embeddings", get("embeddings.position_embeddings.weight")),
        const("zero", np.array([0], np.int64)),
        seq,
        const("axis0", np.array([0], np.int64)),
    )
    x = g.op(
        "Add",
        g.op("Gather", g.init("word_embeddings", get("embeddings.word_embeddings.weight")), "input_ids"),
        g.op("Add", positions, const("token_type_0", get("embeddings.token_type_embeddings.weight")[0])),
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", const("one", np.float32(1)), mask), const("neg", np.float32(-1e4)))
    bias = g.op("Unsqueeze", bias, const("axes12", np.array([1, 2], np.int64)))  # [B,1,1,S]
    split_heads = const("split_heads", np.array([0, 0, heads, hd], np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, hidden], np.int64))
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def project(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            return g.op("Transpose", g.op("Reshape", dense(x, p + "attention.self." + name), split_heads), perm=perm)

        q, k, v = project("query", [0, 2, 1, 3]), project("key", [0, 2, 3, 1]), project("value", [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), const("scale", np.float32(1 / np.sqrt(hd)))), bias)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), merge_heads)
        x = layer_norm(g.op("Add", dense(ctx, p + "attention.output.dense"), x), p + "attention.output.LayerNorm")
        h = g.op("Gelu", dense(x, p + "intermediate.dense"))
        x = layer_norm(g.op("Add", dense(h, p + "output.dense"), x), p + "output.LayerNorm")
    m = g.op("Unsqueeze", mask, const("axis2", np.array([2], np.int64)))
    axis1 = const("axis1", np.array([1], np.int64))
    summed = g.op("ReduceSum", g.op("Mul", x, m), axis1, keepdims=0)
    count = g.op("Max", g.op("ReduceSum", m, axis1, keepdims=0), const("tiny", np.float32(1e-9)))
    mean = g.op("Div", summed, count)
    norm = g.op(
        "Max",
        g.op("ReduceL2", mean, const("axis_last", np.array([-1], np.int64)), keepdims=1),
        const("eps_norm", np.float32(1e-12)),
    )
    g.node("Div", [mean, norm], outputs=["sentence_embedding"])
    graph = helper.make_graph(
        g.nodes,
        "sentence_bert",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="edgellm_sdk")
    model.ir_version = 10
    return model


def reference_embedding(weights: dict[str, np.ndarray], config: dict, ids: list[int]) -> np.ndarray:
    """numpy forward pass (one unpadded sequence) for tests."""
    from math import erf, sqrt

    w = {k.removeprefix("bert."): np.asarray(v, np.float64) for k, v in weights.items()}
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    eps, hd, n = config.get("layer_norm_eps", 1e-12), hidden // heads, len(ids)
    verf = np.vectorize(erf)

    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = ln(x, "embeddings.LayerNorm")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (
            lin(x, p + f"attention.self.{t}").reshape(n, heads, hd).transpose(1, 0, 2)
            for t in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 2, 1) / sqrt(hd)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(n, hidden)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + verf(h / sqrt(2)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    mean = x.mean(0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)
