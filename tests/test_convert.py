"""GGUF -> ONNX conversion checked against a numpy reference forward pass."""

import numpy as np
import pytest
from tiny_llama import reference_logits

from edgellm_sdk.backends.ort import OrtBackend
from edgellm_sdk.errors import ConversionError
from edgellm_sdk.toolchain.gguf_llama import read_gguf
from edgellm_sdk.toolchain.gguf_tokenizer import build_tokenizer
from edgellm_sdk.toolchain.onnx_llama import build_llama_onnx

IDS = [5, 40, 77, 100, 3, 9, 200, 150, 33, 61, 7, 250]


def _backend(tmp_path, weights, variant, accuracy_level=4, max_context=64):
    import onnx

    path = tmp_path / f"{variant}-{accuracy_level}.onnx"
    onnx.save(build_llama_onnx(weights, variant, accuracy_level), path)
    return OrtBackend(path, max_context=max_context, threads=1)


def test_reader_undoes_llama_cpp_permutation_and_reads_config(tiny_gguf):
    path, ref = tiny_gguf
    w = read_gguf(path)
    c = ref["config"]
    assert (w.config.num_layers, w.config.hidden_size, w.config.num_heads, w.config.num_kv_heads) == (
        c["layers"],
        c["hidden"],
        c["heads"],
        c["kv_heads"],
    )
    np.testing.assert_array_equal(w.layers[0].q.dense(), ref["layers"][0]["q"])
    np.testing.assert_array_equal(w.layers[1].k.dense(), ref["layers"][1]["k"])
    assert w.config.tie_embeddings


def test_fp32_graph_matches_numpy_reference(tmp_path, tiny_gguf):
    path, ref = tiny_gguf
    backend = _backend(tmp_path, read_gguf(path), "fp32")
    logits = backend.forward(IDS, all_logits=True)
    np.testing.assert_allclose(logits, reference_logits(ref, IDS), atol=1e-4, rtol=0)


def test_kv_cache_in_place_matches_full_forward(tmp_path, tiny_gguf):
    """Chunked prefill + single-token steps through the shared KV buffer == one full pass."""
    path, ref = tiny_gguf
    backend = _backend(tmp_path, read_gguf(path), "fp32")
    assert backend.inplace
    expected = reference_logits(ref, IDS)
    pieces = [backend.forward(IDS[:5], all_logits=True)]
    pieces += [backend.forward([t]).copy() for t in IDS[5:8]]
    pieces.append(backend.forward(IDS[8:], all_logits=True))
    np.testing.assert_allclose(np.concatenate(pieces), expected, atol=1e-4, rtol=0)
    backend.truncate(6)  # roll back and recompute a different continuation
    np.testing.assert_allclose(backend.forward(IDS[6:], all_logits=True), expected[6:], atol=1e-4, rtol=0)


def test_q4_variant_repacks_gguf_blocks_exactly(tmp_path, tiny_q4_gguf):
    """Q4_1/Q8_0 blocks -> MatMulNBits (+ min correction) is lossless at accuracy_level 0."""
    path, ref = tiny_q4_gguf
    backend = _backend(tmp_path, read_gguf(path), "q4", accuracy_level=0)
    np.testing.assert_allclose(backend.forward(IDS, all_logits=True), reference_logits(ref, IDS), atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", ["q4", "q8"])
def test_quantized_variants_agree_with_reference(tmp_path, tiny_q4_gguf, variant):
    path, ref = tiny_q4_gguf
    logits = _backend(tmp_path, read_gguf(path), variant).forward(IDS, all_logits=True)
    expected = reference_logits(ref, IDS)
    assert (logits.argmax(-1) == expected.argmax(-1)).mean() >= 0.9
    assert np.abs(logits - expected).max() < 0.1 * np.abs(expected).max()


def test_tokenizer_from_gguf_round_trips(tiny_gguf):
    path, _ = tiny_gguf
    tok = build_tokenizer(read_gguf(path).metadata)
    text = "<|im_start|>user\nhello world 123 你好 🤖<|im_end|>"
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.ids[0] == 1 and enc.ids[-1] == 2  # specials are single tokens
    assert tok.decode(enc.ids, skip_special_tokens=False) == text
    assert "hello" in tok.get_vocab()  # merges were applied
    assert tok.encode("hello", add_special_tokens=False).tokens == ["hello"]
    assert tok.encode("123", add_special_tokens=False).tokens == ["1", "2", "3"]  # digits split one by one


def test_unsupported_files_raise_conversion_error(tmp_path):
    bad = tmp_path / "not.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ConversionError, match="not a readable GGUF"):
        read_gguf(bad)
    with pytest.raises(ConversionError, match="not found"):
        read_gguf(tmp_path / "missing.gguf")


def test_non_llama_architecture_is_refused(tmp_path):
    import gguf

    path = tmp_path / "gpt2.gguf"
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ConversionError, match="architecture 'gpt2' is not supported"):
        read_gguf(path)


def test_growing_kv_mode_for_foreign_exports(tmp_path, tiny_gguf):
    """A graph without our in-place marker (like an Optimum export) runs with past -> present feedback."""
    import onnx

    path, ref = tiny_gguf
    model = build_llama_onnx(read_gguf(path), "fp32")
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "foreign.onnx")
    backend = OrtBackend(tmp_path / "foreign.onnx", max_context=64, threads=1)
    assert not backend.inplace
    pieces = [backend.forward(IDS[:7], all_logits=True)] + [backend.forward([t]).copy() for t in IDS[7:]]
    np.testing.assert_allclose(np.concatenate(pieces), reference_logits(ref, IDS), atol=1e-4, rtol=0)
    backend.truncate(3)
    np.testing.assert_allclose(backend.forward(IDS[3:], all_logits=True), reference_logits(ref, IDS)[3:], atol=1e-4)
