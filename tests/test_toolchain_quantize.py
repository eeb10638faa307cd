"""quantize / calibrate / prune on the tiny model (real onnxruntime graphs), and the CLI."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgellm_sdk import Engine
from edgellm_sdk.backends.ort import OrtBackend
from edgellm_sdk.errors import ToolchainError
from edgellm_sdk.models.manifest import Manifest
from edgellm_sdk.toolchain.calibrate import activation_stats
from edgellm_sdk.toolchain.checkpoint import load_weights, parameter_count, save_model
from edgellm_sdk.toolchain.prune import prune, prune_weights
from edgellm_sdk.toolchain.quantize import quantize
from edgellm_sdk.toolchain.quantspec import dequantize_weight, quantize_weight

TEXT = (
    "The robot moves forward two meters, turns left and reports the battery level. "
    "Temperature is 21 degrees; humidity is 40 percent. "
) * 12


@pytest.fixture()
def model_copy(tiny_store, tmp_path):
    """A private copy of the tiny model (tests add variants to it)."""
    src = tiny_store.resolve("tiny").root
    shutil.copytree(src, tmp_path / "tiny")
    return Manifest.load(tmp_path / "tiny")


def logits(model_dir, variant, ids):
    backend = OrtBackend(Manifest.load(model_dir).variant_path(variant), max_context=64, threads=1)
    try:
        return backend.forward(ids, all_logits=True).copy()
    finally:
        backend.close()


IDS = [5, 70, 71, 80, 33, 101, 9, 44, 250, 17]


@pytest.mark.parametrize(
    "bits,block,symmetric,offsets",
    [(4, 32, False, False), (4, 64, True, False), (4, 32, False, True), (8, 16, False, False), (8, 128, True, False)],
)
def test_quantize_weight_error_is_bounded_by_half_a_step(bits, block, symmetric, offsets):
    rng = np.random.default_rng(bits + block)
    w = rng.normal(size=(48, 96)).astype(np.float32)  # 96 is not a multiple of 64/128: padded
    p = quantize_weight(w, bits, block, symmetric=symmetric, offsets=offsets, method="rtn")
    assert p.k == 96 and p.block == block
    err = np.abs(dequantize_weight(p) - w)
    step = np.repeat(p.scales, block, axis=1)[:, :96]
    assert (err <= step * 0.5 + 1e-5).all()


def test_mse_search_never_worse_than_round_to_nearest():
    w = np.random.default_rng(3).standard_t(3, size=(64, 128)).astype(np.float32)  # heavy tails: clipping helps
    e_rtn = ((dequantize_weight(quantize_weight(w, 4, 32, method="rtn")) - w) ** 2).sum()
    e_mse = ((dequantize_weight(quantize_weight(w, 4, 32, method="mse")) - w) ** 2).sum()
    assert e_mse < e_rtn


def test_activation_weighting_lowers_the_error_where_the_activations_are():
    rng = np.random.default_rng(4)
    w = rng.standard_t(3, size=(64, 64)).astype(np.float32)
    imp = np.ones(64, np.float32)
    imp[:8] = 100.0  # the domain uses the first 8 input columns
    plain = dequantize_weight(quantize_weight(w, 4, 32))
    aware = dequantize_weight(quantize_weight(w, 4, 32, importance=imp))
    weighted = lambda d: (((d - w) ** 2) * imp).sum()
    assert weighted(aware) < weighted(plain)


def test_offsets_reproduce_a_q4_1_grid_exactly():
    rng = np.random.default_rng(5)
    d = rng.uniform(0.01, 0.1, size=(16, 4, 1)).astype(np.float32)
    m = rng.uniform(-1, 0, size=(16, 4, 1)).astype(np.float32)
    q = rng.integers(0, 16, size=(16, 4, 32))
    q[..., 0], q[..., 1] = 0, 15  # every block spans its whole grid
    w = (d * q + m).reshape(16, 128).astype(np.float32)
    assert np.abs(dequantize_weight(quantize_weight(w, 4, 32, offsets=True)) - w).max() < 1e-5


def test_fp32_weights_read_back_rebuild_the_same_graph(model_copy, tmp_path):
    w = load_weights(model_copy)
    assert parameter_count(w) > 0
    save_model(w, tmp_path / "copy", tokenizer_from=model_copy.root, name="copy", variants=("fp32",))
    np.testing.assert_array_equal(logits(model_copy.root, "fp32", IDS), logits(tmp_path / "copy", "fp32", IDS))


# tolerance: max |logit error| / max |logit| (the preset q8 variant's is ~0.8 % on this model)
@pytest.mark.parametrize(
    "to,kwargs,tolerance",
    [
        ("int8", {}, 0.015),
        ("int4", {}, 0.08),
        ("int4", {"block": 64, "symmetric": True}, 0.1),
        ("int8", {"exclude": ("lm_head", "layers.0.*")}, 0.015),
    ],
)
def test_quantized_variant_loads_and_stays_close_to_fp32(model_copy, to, kwargs, tolerance):
    manifest, variant, info = quantize(model_copy, to, **kwargs)
    assert variant in manifest.variants and manifest.default_variant == "q4"  # not made default
    manifest.verify()
    assert info["file_mb"] < info["fp32_mb"]
    ref, got = logits(model_copy.root, "fp32", IDS), logits(model_copy.root, variant, IDS)
    assert np.abs(ref - got).max() < tolerance * np.abs(ref).max()
    with Engine.load(model_copy.root, variant=variant, max_context=64, threads=1) as engine:
        assert engine.complete("hello", max_tokens=4).usage.completion_tokens == 4


def test_quantize_refuses_an_existing_name_and_bad_options(model_copy):
    quantize(model_copy, "int8", name="mine")
    with pytest.raises(ToolchainError, match="already has a variant 'mine'"):
        quantize(model_copy, "int8", name="mine")
    with pytest.raises(ValueError, match="--to must be one of"):
        quantize(model_copy, "int3")
    with pytest.raises(ValueError, match="block must be one of"):
        quantize(model_copy, "int4", block=48)
    with pytest.raises(ValueError, match="letters, digits"):
        quantize(model_copy, "int4", name="../evil")


def test_calibration_statistics_match_a_numpy_forward(model_copy):
    stats = activation_stats(model_copy, TEXT, max_tokens=200, window=64)
    assert stats.tokens == 200
    assert set(stats.mean_sq) == {
        f"layers.{i}.{n}" for i in range(2) for n in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
    }
    assert stats.mean_sq["layers.0.down_proj"].shape == (96,)
    assert all((v >= 0).all() and np.isfinite(v).all() for v in stats.mean_sq.values())
    # The input of layer 0's qkv is RMSNorm(embedding) * gamma: check E[x^2] independently.
    from edgellm_sdk.tokenizer import Tokenizer

    w = load_weights(model_copy)
    ids = Tokenizer.from_dir(model_copy.root).encode(TEXT)[:200]
    x = w.embed.dense()[ids]
    h = x / np.sqrt((x**2).mean(-1, keepdims=True) + w.config.rms_eps) * w.layers[0].attn_norm
    np.testing.assert_allclose(stats.mean_sq["layers.0.qkv_proj"], (h**2).mean(0), rtol=1e-3)
    assert len(stats.layer_influence) == 2 and all(0 <= v <= 2 for v in stats.layer_influence)


def test_calibration_text_too_short_is_refused(model_copy):
    with pytest.raises(ToolchainError, match="at least a few hundred"):
        activation_stats(model_copy, "hi")


def test_prune_removes_the_least_used_neurons(model_copy):
    w = load_weights(model_copy)
    stats = activation_stats(model_copy, TEXT, max_tokens=200, window=64)
    stats.mean_sq["layers.1.down_proj"][:32] = 0.0  # neurons 0..31 of layer 1 never fire
    pruned, report = prune_weights(w, stats, ratio=0.4)
    assert report.ffn_before == [96, 96] and report.ffn_after == [64, 64]  # 57.6 -> 64 (multiple of 32)
    assert report.parameters_after < report.parameters_before
    assert report.inactive_neurons >= 32
    kept_rows = {tuple(r) for r in pruned.layers[1].gate.dense().round(6)}
    dead_rows = {tuple(r) for r in w.layers[1].gate.dense()[:32].round(6)}
    assert not kept_rows & dead_rows  # none of the silent neurons survived
    with pytest.raises(ValueError, match="ratio"):
        prune_weights(w, stats, ratio=1.0)


def test_pruning_silent_neurons_does_not_change_the_output(model_copy, tmp_path):
    """Neurons whose activation is exactly zero on every token contribute nothing: removing them is exact."""
    w = load_weights(model_copy)
    for layer in w.layers:  # make neurons 64.. dead: zero gate and up rows -> SiLU(0) * 0 = 0
        layer.gate.raw[64:] = 0
        layer.up.raw[64:] = 0
    save_model(w, tmp_path / "dead", tokenizer_from=model_copy.root, name="dead", variants=("fp32",))
    dead = Manifest.load(tmp_path / "dead")
    pruned, report = prune_weights(w, activation_stats(dead, TEXT, max_tokens=128), ratio=1 / 3)
    assert report.ffn_after == [64, 64]
    save_model(pruned, tmp_path / "pruned", tokenizer_from=model_copy.root, name="pruned", variants=("fp32",))
    np.testing.assert_allclose(
        logits(tmp_path / "dead", "fp32", IDS), logits(tmp_path / "pruned", "fp32", IDS), atol=1e-4
    )


def test_prune_drops_the_least_influential_layer_and_loads(model_copy, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text(TEXT)
    report = prune(model_copy, calib, tmp_path / "small", ratio=0.3, drop_layers=1)
    assert report.dropped_layers == [1] and len(report.ffn_after) == 1  # layer 0 is never dropped
    small = Manifest.load(tmp_path / "small")
    assert small.default_variant == "int4" and set(small.variants) == {"fp32", "q8", "int4"}
    config = json.loads((small.root / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and config["intermediate_size"] == 64
    for variant in small.variants:
        with Engine.load(small.root, variant=variant, max_context=64, threads=1) as engine:
            assert engine.complete("hello", max_tokens=3).usage.completion_tokens == 3


def test_cli_quantize_and_prune(model_copy, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text(TEXT)
    cli = [sys.executable, "-m", "edgellm_sdk"]
    run = subprocess.run(
        cli
        + [
            "quantize",
            str(model_copy.root),
            "--to",
            "int4",
            "--block",
            "16",
            "--calibration",
            str(calib),
            "--json",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["variant"] == "int4-b16-aw" and info["activation_aware"] is True
    run = subprocess.run(
        cli
        + ["prune", str(model_copy.root), "--calibration", str(calib), "--ratio", "0.3", "--out", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "parameters" in run.stdout and (tmp_path / "p" / "manifest.json").is_file()
    run = subprocess.run(
        cli
        + ["prune", str(model_copy.root), "--calibration", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "q")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "calibration text" in run.stderr and "does not exist" in run.stderr


def test_model_id_changes_with_the_weights_not_only_the_graph(model_copy, tmp_path):
    """Response caches key on Engine.model_id: a re-trained model with the same name and graph must differ."""
    w = load_weights(model_copy)
    save_model(w, tmp_path / "a", tokenizer_from=model_copy.root, name="same", variants=("fp32",))
    w.layers[0].down.raw[0, 0] += 1.0
    save_model(w, tmp_path / "b", tokenizer_from=model_copy.root, name="same", variants=("fp32",))
    ids = []
    for d in ("a", "b"):
        with Engine.load(tmp_path / d, variant="fp32", max_context=32, threads=1) as engine:
            ids.append(engine.model_id)
    assert (tmp_path / "a/onnx/model.onnx").read_bytes() == (tmp_path / "b/onnx/model.onnx").read_bytes()
    assert ids[0] != ids[1]
