"""Model store: pull, idempotence, integrity, bad names, foreign layouts."""

import json
import shutil

import pytest

from edgellm_sdk import Engine, ModelCorrupt, ModelNotFound, VocabularyMismatch
from edgellm_sdk.models.manifest import Manifest
from edgellm_sdk.models.store import ModelStore


def test_pull_writes_the_transformers_js_layout(tiny_store):
    root = tiny_store.path("tiny")
    for rel in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                "onnx/model.onnx", "onnx/model_quantized.onnx", "onnx/model_q4.onnx", "manifest.json"):
        assert (root / rel).is_file(), rel
    manifest = Manifest.load(root)
    assert set(manifest.variants) == {"fp32", "q8", "q4"}
    assert set(manifest.files) >= {"onnx/model_q4.onnx", "tokenizer.json"}
    assert all(len(f["sha256"]) == 64 for f in manifest.files.values())
    assert "chat_template" in json.loads((root / "tokenizer_config.json").read_text())
    assert not [p for p in tiny_store.models_dir.iterdir() if p.name.startswith(".")]  # no leftovers


def test_pull_is_idempotent(tiny_store, tiny_gguf):
    root = tiny_store.path("tiny")
    before = (root / "onnx/model.onnx").stat().st_mtime_ns
    tiny_store.pull(tiny_gguf[0], name="tiny")
    assert (root / "onnx/model.onnx").stat().st_mtime_ns == before


def test_corrupt_file_is_reported_and_repaired_by_pull(tmp_path, tiny_gguf):
    store = ModelStore(tmp_path)
    store.pull(tiny_gguf[0], name="t")
    onnx_file = store.path("t") / "onnx/model_q4.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelCorrupt, match=r"model_q4.onnx does not match its sha256.*edgellm pull"):
        Engine.load("t", store=store)
    store.pull(tiny_gguf[0], name="t")  # detects the damage and rebuilds
    Engine.load("t", store=store).close()
    (store.path("t") / "tokenizer.json").unlink()
    with pytest.raises(ModelCorrupt, match="tokenizer.json is missing"):
        Engine.load("t", store=store)


def test_interrupted_pull_leaves_nothing_loadable(tmp_path, tiny_gguf, monkeypatch):
    store = ModelStore(tmp_path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edgellm_sdk.models.store.Manifest.load", crash)
    with pytest.raises(KeyboardInterrupt):
        store.pull(tiny_gguf[0], name="t")
    monkeypatch.undo()
    assert not store.path("t").exists()
    assert [p.name for p in tmp_path.joinpath("models").iterdir()] == []
    with pytest.raises(ModelNotFound):
        Engine.load("t", store=store)


def test_unknown_name_lists_known_models(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelNotFound, match="known models: .*smollm2-135m"):
        store.resolve("no-such-model")
    with pytest.raises(ModelNotFound, match="not installed.*edgellm pull smollm2-135m"):
        store.resolve("smollm2-135m")
    with pytest.raises(ModelNotFound, match="known models"):
        store.pull("no-such-model")


def test_unknown_variant_lists_available(tiny_store):
    with pytest.raises(ValueError, match="available: fp32, q4, q8"):
        Engine.load("tiny", store=tiny_store, variant="fp16")


def test_pull_directory_without_manifest(tmp_path, tiny_store):
    """An onnx-community style directory (no manifest) is accepted and gets one."""
    src = tmp_path / "community-model"
    shutil.copytree(tiny_store.path("tiny"), src)
    (src / "manifest.json").unlink()
    (src / "onnx/model_q4.onnx").unlink()
    (src / "onnx/model.onnx").unlink()
    with Engine.load(src, max_context=64) as engine:  # loads in place, too
        assert engine.variant == "q8"
    store = ModelStore(tmp_path / "home")
    manifest = store.pull(src, name="community")
    assert manifest.variants == {"q8": "onnx/model_quantized.onnx"}
    assert [m.name for m in store.installed()] == ["community"]


def test_vocabulary_mismatch_detected_at_load(tmp_path, tiny_store, default_store):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_store.path("tiny"), bad)
    (bad / "manifest.json").unlink()
    shutil.copy(default_store.path("smollm2-135m") / "tokenizer.json", bad / "tokenizer.json")
    with pytest.raises(VocabularyMismatch, match="49152 tokens but the model's logits cover 271"):
        Engine.load(bad)
