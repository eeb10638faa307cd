"""Sentence embeddings: the BERT converter against numpy, and the real all-MiniLM-L6-v2 from PyPI."""

import json
import struct

import numpy as np
import onnxruntime as ort
import pytest

from edgellm_sdk.embed import Embedder
from edgellm_sdk.errors import ConversionError, ModelError
from edgellm_sdk.toolchain.bert_onnx import build_bert_onnx, read_safetensors, reference_embedding

CONFIG = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-12,
    "vocab_size": 50,
    "max_position_embeddings": 16,
}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def tiny_bert(rng):
    h, f = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    t = {
        "embeddings.word_embeddings.weight": rng.standard_normal((50, h)),
        "embeddings.position_embeddings.weight": rng.standard_normal((16, h)) * 0.1,
        "embeddings.token_type_embeddings.weight": rng.standard_normal((2, h)) * 0.1,
        "embeddings.LayerNorm.weight": 1 + 0.1 * rng.standard_normal(h),
        "embeddings.LayerNorm.bias": 0.1 * rng.standard_normal(h),
    }
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, shape in [
            ("attention.self.query", (h, h)),
            ("attention.self.key", (h, h)),
            ("attention.self.value", (h, h)),
            ("attention.output.dense", (h, h)),
            ("intermediate.dense", (f, h)),
            ("output.dense", (h, f)),
        ]:
            t[p + name + ".weight"] = rng.standard_normal(shape) * 0.2
            t[p + name + ".bias"] = rng.standard_normal(shape[0]) * 0.1
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = 1 + 0.1 * rng.standard_normal(h)
            t[p + ln + ".bias"] = 0.1 * rng.standard_normal(h)
    return {k: np.asarray(v, np.float32) for k, v in t.items()}


def test_bert_graph_matches_numpy_reference_with_padding(tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, tiny_bert(np.random.default_rng(0)))
    weights = read_safetensors(path)
    session = ort.InferenceSession(build_bert_onnx(weights, CONFIG).SerializeToString())
    a, b = [1, 5, 7, 9, 2], [1, 11, 2]
    ids = np.array([a, b + [0, 0]])
    mask = np.array([[1] * 5, [1, 1, 1, 0, 0]])
    out = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(out[0], reference_embedding(weights, CONFIG, a), atol=1e-5)
    np.testing.assert_allclose(out[1], reference_embedding(weights, CONFIG, b), atol=1e-5)  # padding ignored


def test_unreadable_safetensors_is_a_conversion_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00")
    with pytest.raises(ConversionError, match="not a readable safetensors"):
        read_safetensors(bad)


def test_minilm_embeddings_rank_paraphrases_first(embedder):
    q, para, other = embedder.embed(["what's the temperature?", "how warm is it?", "drive to the charging dock"])
    assert embedder.dimension == 384
    assert abs(float(np.linalg.norm(q)) - 1) < 1e-5
    assert float(q @ para) > float(q @ other) + 0.2


def test_batch_equals_single(embedder):
    texts = ["turn on the kitchen lights", "a much longer sentence about the robot arm lifting a heavy box"]
    batch = embedder.embed(texts)
    for row, text in zip(batch, texts):
        np.testing.assert_allclose(row, embedder.embed(text), atol=1e-5)


def test_decoder_model_is_refused_as_embedder(default_store):
    with pytest.raises(ModelError, match="smollm2-135m is not a sentence-embedding model.*edgellm pull minilm-l6"):
        Embedder.load("smollm2-135m", store=default_store)
