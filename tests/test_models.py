"""Model store: pull, idempotence, integrity, bad names, foreign layouts, converters."""

import json
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from edgellm_sdk import Engine, ModelCorrupt, ModelNotFound, PullError, VocabularyMismatch
from edgellm_sdk.models import converters
from edgellm_sdk.models.manifest import Manifest
from edgellm_sdk.models.store import DEFAULT_MODEL, ModelStore


def test_pull_writes_the_transformers_js_layout(tiny_store):
    root = tiny_store.path("tiny")
    for rel in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "onnx/model.onnx",
        "onnx/model_quantized.onnx",
        "onnx/model_q4.onnx",
        "manifest.json",
    ):
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
    with pytest.raises(ModelNotFound, match="unknown model 't'"):
        Engine.load("t", store=store)


def test_unknown_name_lists_known_models(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelNotFound, match=f"known models: .*{DEFAULT_MODEL}"):
        store.resolve("no-such-model")
    with pytest.raises(ModelNotFound, match=f"not installed.*edgellm pull {DEFAULT_MODEL}"):
        store.resolve(DEFAULT_MODEL)
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
    shutil.copy(default_store.path(DEFAULT_MODEL) / "tokenizer.json", bad / "tokenizer.json")
    with pytest.raises(VocabularyMismatch, match="49152 tokens but the model's logits cover 271"):
        Engine.load(bad)


def test_a_pull_that_must_convert_without_a_converter_says_what_to_install(tmp_path, tiny_gguf, monkeypatch):
    monkeypatch.setattr(converters, "entry_points", lambda **select: [])  # no toolchain installed
    store = ModelStore(tmp_path)
    with pytest.raises(
        PullError,
        match=r"tiny-llama.gguf \(GGUF weights\) must be converted to ONNX, and no 'gguf' "
        r"converter is available: install the toolchain \(pip install "
        r"'edgellm-sdk\[tools\]'\) .* or pass converters=edgellm_sdk.toolchain",
    ):
        store.pull(tiny_gguf[0], name="t")
    with pytest.raises(PullError, match=rf"{DEFAULT_MODEL} \(gguf weights\) must be converted"):
        store.pull(DEFAULT_MODEL)  # refused before anything is downloaded
    assert [p.name for p in tmp_path.joinpath("models").iterdir()] == []
    broken = EntryPoint("gguf", "no_such_toolchain.convert:convert_gguf", converters.ENTRY_POINTS)
    monkeypatch.setattr(converters, "entry_points", lambda **select: [broken])
    with pytest.raises(
        PullError,
        match=r"the 'gguf' converter cannot be imported \(No module named "
        r"'no_such_toolchain'\); install the toolchain",
    ):
        store.pull(tiny_gguf[0], name="t")


def test_pull_uses_the_converters_it_is_given(tmp_path, tiny_gguf, monkeypatch):
    from edgellm_sdk.toolchain.convert import CONVERTERS

    monkeypatch.setattr(converters, "entry_points", lambda **select: [])
    calls = []

    def gguf(src, out, **kwargs):
        calls.append((src, kwargs["name"]))
        return CONVERTERS["gguf"](src, out, variants=("fp32",), default_variant="fp32", **kwargs)

    manifest = ModelStore(tmp_path).pull(tiny_gguf[0], name="t", converters={"gguf": gguf})
    assert calls == [(tiny_gguf[0], "t")] and manifest.variants == {"fp32": "onnx/model.onnx"}


def test_the_runtime_never_imports_the_toolchain(default_store):
    """Loading and pulling an installed model: no toolchain module in sys.modules."""
    code = (
        "import sys; from edgellm_sdk import Engine; from edgellm_sdk.models.store import DEFAULT_MODEL, ModelStore;"
        "ModelStore().pull(DEFAULT_MODEL); Engine.load(DEFAULT_MODEL, prefix_cache=False).close();"
        "print([m for m in sys.modules if m.startswith('edgellm_sdk.toolchain')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
