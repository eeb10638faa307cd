"""Training toolchain (torch): the torch llama against the ONNX graph, LoRA, the shared loop
(resume, memory guard), finetune and distill end to end on the tiny model, and the CLI."""

from __future__ import annotations

import argparse
import builtins
import hashlib
import json
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny_llama import write_tiny_gguf

from edgellm_sdk import Engine
from edgellm_sdk.errors import MissingDependency, ToolchainError
from edgellm_sdk.models.manifest import Manifest
from edgellm_sdk.models.store import ModelStore
from edgellm_sdk.tokenizer import Tokenizer
from edgellm_sdk.toolchain import cli_train
from edgellm_sdk.toolchain.checkpoint import dense, load_weights, parameter_count
from edgellm_sdk.toolchain.data import read_examples
from edgellm_sdk.toolchain.distill import answer_samples, distill
from edgellm_sdk.toolchain.finetune import finetune
from edgellm_sdk.toolchain.gguf_llama import LlamaConfig
from edgellm_sdk.toolchain.lora import apply_lora, load_adapter, merge_lora, save_adapter
from edgellm_sdk.toolchain.prune import prune
from edgellm_sdk.toolchain.qat import fake_quant_int4
from edgellm_sdk.toolchain.quantspec import dequantize_weight, quantize_weight
from edgellm_sdk.toolchain.torch_llama import (
    TorchLlama,
    block_influence,
    config_parameters,
    init_student,
    student_config,
)
from edgellm_sdk.toolchain.train import IGNORE, TrainConfig, estimate_memory, make_sample, train

COMMANDS = [
    ("turn left", {"cmd": "left"}),
    ("turn right", {"cmd": "right"}),
    ("stop now", {"cmd": "stop"}),
    ("go forward", {"cmd": "go"}),
    ("go back", {"cmd": "back"}),
    ("hello", {"cmd": "hi"}),
]
SMOLLM2 = LlamaConfig(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_layers=30,
    num_heads=9,
    num_kv_heads=3,
    rope_theta=100000.0,
    rms_eps=1e-5,
    max_position=8192,
)


def ort_logits(manifest, ids: np.ndarray, variant: str = "fp32", graph=None) -> np.ndarray:
    """All-position logits of a model's graph (a variant, or ``graph`` path), run directly with onnxruntime."""
    import onnxruntime as ort

    cfg = json.loads((manifest.root / "config.json").read_text())
    path = graph or manifest.variant_path(variant)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "position_ids": np.arange(ids.shape[1])[None],
        "num_logits_to_keep": np.array(0, np.int64),
    }
    empty = np.zeros((1, cfg["num_key_value_heads"], 0, cfg["head_dim"]), np.float32)
    for i in range(cfg["num_hidden_layers"]):
        feeds[f"past_key_values.{i}.key"] = feeds[f"past_key_values.{i}.value"] = empty
    return session.run(["logits"], feeds)[0]


@pytest.fixture(scope="module")
def tiny(tiny_store):
    return tiny_store.resolve("tiny")


@pytest.fixture(scope="module")
def tiny_weights(tiny):
    return load_weights(tiny)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "task.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "target": t, "match": "json"}) + "\n" for p, t in COMMANDS))
    return path


@pytest.fixture(scope="module")
def finetuned(tiny, task_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "tiny-robot"
    return finetune(tiny.root, task_file, out, steps=25, lr=1e-2, batch=4, seq_len=64, resume=False)


def test_torch_forward_matches_onnx_fp32_graph(tiny, tiny_weights):
    ids = np.array([[1, 50, 60, 70, 80, 90, 100, 3, 4, 5, 200, 150, 2, 7]], np.int64)
    with torch.no_grad():
        logits = TorchLlama.from_weights(tiny_weights)(torch.from_numpy(ids)).numpy()
    assert np.abs(logits - ort_logits(tiny, ids)).max() < 1e-4


def test_to_weights_round_trip(tiny_weights):
    back = TorchLlama.from_weights(tiny_weights).to_weights()
    assert back.config == tiny_weights.config
    np.testing.assert_array_equal(back.embed.dense(), tiny_weights.embed.dense())
    np.testing.assert_array_equal(back.final_norm, tiny_weights.final_norm)
    for a, b in zip(back.layers, tiny_weights.layers):
        for part in ("q", "k", "v", "o", "gate", "up", "down"):
            np.testing.assert_array_equal(getattr(a, part).dense(), getattr(b, part).dense())
        np.testing.assert_array_equal(a.attn_norm, b.attn_norm)


def test_lora_zero_init_is_identity_and_merge_equals_unmerged(tiny_weights, tmp_path):
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])
    model = TorchLlama.from_weights(tiny_weights).eval()
    with torch.no_grad():
        base = model(ids)
        names = apply_lora(model, rank=4)
        assert len(names) == 4 * len(tiny_weights.layers)
        assert torch.equal(model(ids), base)  # B starts at zero
        for name, p in model.named_parameters():
            assert p.requires_grad == (".lora_" in name)
            if name.endswith("lora_b"):
                p.normal_(std=0.05)
        unmerged = model(ids)
        save_adapter(model, tmp_path / "adapter.pt", rank=4, alpha=8.0, targets=("qkv", "o", "gate_up", "down"))
        reloaded = TorchLlama.from_weights(tiny_weights).eval()
        load_adapter(reloaded, tmp_path / "adapter.pt")
        assert torch.allclose(reloaded(ids), unmerged, atol=1e-6)
        merged = merge_lora(model)(ids)
    assert not torch.allclose(unmerged, base, atol=1e-3)
    assert torch.allclose(merged, unmerged, atol=1e-4)


def test_finetune_lowers_task_loss_and_exports_int4(finetuned):
    assert finetuned.loss_after < 0.3 * finetuned.loss_before
    assert finetuned.train.steps == 25 and finetuned.train.tokens_per_s > 0
    m = finetuned.manifest
    assert set(m.variants) == {"fp32", "q8", "int4"} and m.default_variant == "int4"
    assert m.source["finetuned_from"] == "tiny"
    for variant in ("int4", "fp32"):
        with Engine.load(m.root, variant=variant, max_context=64) as engine:
            assert engine.variant == variant
            assert engine.complete([{"role": "user", "content": "turn left"}], max_tokens=8).usage.completion_tokens


def test_exported_graph_computes_the_merged_model(finetuned, tiny):
    ids = np.array([[1, 60, 61, 62, 63, 64]], np.int64)
    net = TorchLlama.from_weights(load_weights(tiny))
    load_adapter(net, finetuned.adapter)
    with torch.no_grad():
        logits = net(torch.from_numpy(ids)).numpy()
    assert np.abs(logits - ort_logits(finetuned.manifest, ids)).max() < 1e-4


def test_unmerged_adapter_in_the_graph_computes_the_adapted_model(tiny, tiny_weights, tmp_path):
    from edgellm_sdk.toolchain.checkpoint import write_variant
    from edgellm_sdk.toolchain.lora import adapter_arrays

    ids = np.array([[1, 60, 61, 62, 63, 64]], np.int64)
    torch.manual_seed(3)
    net = TorchLlama.from_weights(tiny_weights)
    apply_lora(net, rank=4, targets=("qkv", "gate_up", "down"))
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("lora_b"):
                p.normal_(0, 0.05)  # a trained-looking adapter (B starts at zero)
        expected = net(torch.from_numpy(ids)).numpy()
    write_variant(tiny_weights, tmp_path, "adapted.onnx", "fp32", adapters=adapter_arrays(net))
    got = ort_logits(tiny, ids, graph=tmp_path / "adapted.onnx")
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got - ort_logits(tiny, ids)).max() > 1e-2  # the adapter does change the output


def test_int4_export_keeps_the_adapter_unmerged(finetuned, tiny, tiny_weights, tmp_path):
    """Merged weights re-quantized to 4 bits can round back onto the base's grid and lose the
    fine-tune; the int4 variant is the base in 4 bits + the adapter in fp32 instead."""
    import onnx

    from edgellm_sdk.toolchain.checkpoint import write_variant
    from edgellm_sdk.toolchain.train import QUANTIZE

    m = finetuned.manifest
    info = m.source["variants"]["int4"]["lora_adapter"]
    assert info["rank"] == 8 and info["precision"] == "fp32"
    assert m.source["variants"]["int4"]["offsets"] is True  # the `edgellm quantize` default, not zero points
    graph = onnx.load(str(m.variant_path("int4")), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    n_layers = tiny_weights.config.num_layers
    assert ops.count("MatMulNBits") >= 4 * n_layers
    assert sum(n.name.endswith(".lora_a") for n in graph.node) == 4 * n_layers
    ids = np.array([[1, 60, 61, 62, 63, 64]], np.int64)
    merged = ort_logits(m, ids)  # fp32, merged
    write_variant(tiny_weights, tmp_path, "base_int4.onnx", QUANTIZE["int4"])
    base_int4 = ort_logits(m, ids, graph=tmp_path / "base_int4.onnx")
    adapted_int4 = ort_logits(m, ids, variant="int4")
    assert np.abs(adapted_int4 - merged).mean() < 0.5 * np.abs(base_int4 - merged).mean()


def test_finetune_with_qat_exports_the_merged_model_as_exact_int4(finetuned, tiny, task_file, tmp_path):
    """With --qat-steps the merged weights are trained onto the int4 grid: the int4 variant is the
    merged model itself (no adapter branch, the base's speed) and computes what fp32 does."""
    import onnx

    r = finetune(tiny.root, task_file, tmp_path / "qat", steps=25, lr=1e-2, batch=4, seq_len=64, qat_steps=4)
    assert r.loss_after < 0.3 * r.loss_before and r.manifest.source["qat_steps"] == 4 and r.qat.steps == 4
    assert (tmp_path / "qat.train" / "qat-after-25" / "checkpoint.pt").is_file()
    assert "lora_adapter" not in r.manifest.source["variants"]["int4"]
    graph = onnx.load(str(r.manifest.variant_path("int4")), load_external_data=False).graph
    assert not any(n.name.endswith(".lora_a") for n in graph.node)
    for layer in load_weights(r.manifest).layers:  # the fp32 variant's weights lie on the grid
        for m in (layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down):
            w = m.dense()
            np.testing.assert_allclose(dequantize_weight(quantize_weight(w, 4, 32, offsets=True)), w, atol=1e-5)
    ids = np.array([[1, 60, 61, 62, 63, 64]], np.int64)

    def int4_error(m) -> float:
        fp32, int4 = ort_logits(m, ids, "fp32"), ort_logits(m, ids, "int4")
        return float(np.abs(int4 - fp32).max() / np.abs(fp32).max())

    assert int4_error(r.manifest) < 0.25 * int4_error(finetuned.manifest)  # vs base int4 + unmerged adapter
    with pytest.raises(ValueError, match="merge"):
        finetune(tiny.root, task_file, tmp_path / "x", steps=1, qat_steps=2, merge=False)


def _lora_run(weights, samples, work, **kw):
    torch.manual_seed(0)
    model = TorchLlama.from_weights(weights)
    apply_lora(model, rank=4, dropout=0.1)  # dropout: the restored RNG matters
    cfg = TrainConfig(steps=6, batch=3, seq_len=64, lr=5e-3, checkpoint_every=2)
    return model, train(model, samples, cfg, work, **kw)


def test_resume_after_interruption_gives_identical_weights(tiny_weights, tmp_path):
    samples = [make_sample([1, 20 + i, 30 + i], [40 + i, 50, 60, 2], 64) for i in range(5)]
    straight, _ = _lora_run(tiny_weights, samples, tmp_path / "a")

    def stop_at_3(p):
        if p.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _lora_run(tiny_weights, samples, tmp_path / "b", on_step=stop_at_3)
    resumed, result = _lora_run(tiny_weights, samples, tmp_path / "b")
    assert result.resumed_from == 2 and result.steps == 6 and len(result.losses) == 6
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ToolchainError, match="different run"):  # same work dir, other hyperparameters
        train(resumed, samples, TrainConfig(steps=6, batch=2, checkpoint_every=2), tmp_path / "b")


def test_more_steps_continue_a_finished_run_and_fewer_are_refused(tiny_weights, tmp_path):
    samples = [make_sample([1, 20 + i, 30 + i], [40 + i, 50, 60, 2], 64) for i in range(5)]
    model, first = _lora_run(tiny_weights, samples, tmp_path)
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    cfg = TrainConfig(steps=9, batch=3, seq_len=64, lr=5e-3, checkpoint_every=2)
    longer = train(model, samples, cfg, tmp_path)
    assert longer.resumed_from == 6 and longer.steps == 9 and longer.losses[:6] == first.losses
    assert len(longer.losses) == 9 and all(np.isfinite(longer.losses))
    assert any(not torch.equal(p, trained[n]) for n, p in model.named_parameters() if p.requires_grad)
    with pytest.raises(ToolchainError, match="at step 9, beyond --steps 6"):
        train(model, samples, replace(cfg, steps=6), tmp_path)


def test_max_time_stops_with_a_checkpoint(tiny_weights, tmp_path):
    samples = [make_sample([1, 20, 30], [40, 50, 2], 64)]
    model = TorchLlama.from_weights(tiny_weights)
    result = train(model, samples, TrainConfig(steps=50, batch=1, max_time_s=1e-6), tmp_path)
    assert result.stopped == "time" and result.steps == 1
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1


def test_malformed_jsonl_reports_the_line(tiny, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "turn left", "target": "left"}\n{"prompt": "stop", "target": \n')
    with pytest.raises(ToolchainError, match="line 2"):
        finetune(tiny.root, bad, tmp_path / "out", steps=1)


def test_memory_estimate_refuses_before_training(tiny, task_file, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELLM_MAX_RSS_MB", "200")
    with pytest.raises(ToolchainError, match=r"try --batch 2 .*EDGELLM_MAX_RSS_MB=<MB>"):
        finetune(tiny.root, task_file, tmp_path / "out", steps=1, batch=4, seq_len=64)
    assert not (tmp_path / "out.train" / "checkpoint.pt").exists()
    # long sequences: the attention weights and activations of batch x seq are what does not fit
    monkeypatch.setenv("EDGELLM_MAX_RSS_MB", "600")
    model = TorchLlama.from_weights(load_weights(tiny))
    long = [make_sample([1] * 10, [5] * 1100, 1024)] * 4
    with pytest.raises(ToolchainError, match=r"batch 16 x 1024 tokens.*try --batch 8 or --seq-len 512"):
        train(model, long, TrainConfig(steps=1, batch=16, seq_len=1024), tmp_path / "long")


def test_memory_estimate_grows_with_batch_and_sequence(tiny_weights):
    model = TorchLlama.from_weights(tiny_weights)
    small, big = estimate_memory(model, 1, 64), estimate_memory(model, 8, 256)
    assert big.activations_mb > 8 * small.activations_mb and big.weights_mb == small.weights_mb
    assert small.optimizer_mb == pytest.approx(1.5 * small.weights_mb)  # all trainable: grads + 2 moments


def test_student_presets_on_the_smollm2_config():
    teacher = config_parameters(SMOLLM2)
    assert teacher == 134_515_008  # SmolLM2-135M, tied embedding counted once
    small, tiny = student_config(SMOLLM2, "small"), student_config(SMOLLM2, "tiny")
    assert config_parameters(small) <= 0.40 * teacher
    assert 0.20 <= config_parameters(tiny) / teacher <= 0.26
    assert (small.hidden_size, small.vocab_size) == (576, 49152)
    assert student_config(SMOLLM2, {"num_layers": 8, "intermediate_size": 1024}).num_layers == 8
    with pytest.raises(ToolchainError, match="hidden size"):
        student_config(SMOLLM2, {"hidden_size": 256})
    with pytest.raises(ToolchainError, match="multiple of 32"):
        student_config(SMOLLM2, {"intermediate_size": 1000})
    with pytest.raises(ToolchainError, match="small, tiny"):
        student_config(SMOLLM2, "medium")


def test_student_starts_from_the_teachers_most_influential_layers(tiny_weights):
    # a 6-layer teacher from the tiny one's layers; layer 2 writes nothing back (attention and
    # FFN outputs zeroed): an identity on the residual stream that a student must not spend a layer on
    def silent(layer):
        return replace(layer, o=dense(np.zeros_like(layer.o.dense())), down=dense(np.zeros_like(layer.down.dense())))

    a, b = tiny_weights.layers
    layers = [a, b, silent(a), b, a, b]
    teacher = replace(tiny_weights, config=replace(tiny_weights.config, num_layers=6), layers=layers)
    ids = [np.arange(3, 40), np.arange(50, 70)]
    influence = block_influence(TorchLlama.from_weights(teacher), ids)
    assert len(influence) == 6 and influence[2] == pytest.approx(0, abs=1e-6)
    assert min(influence[:2] + influence[3:]) > 1e-3
    cfg = replace(teacher.config, num_layers=5)
    assert init_student(teacher, cfg, influence=influence).metadata["student_layers"] == [0, 1, 3, 4, 5]
    assert init_student(teacher, cfg).metadata["student_layers"] == [0, 1, 2, 4, 5]  # evenly spaced: keeps it
    two = replace(cfg, num_layers=2)
    assert init_student(teacher, two, influence=influence).metadata["student_layers"] == [0, 5]


def test_distill_small_student_exports_and_resumes(tiny, tmp_path, monkeypatch):
    import edgellm_sdk.toolchain.distill as distill_module

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p, _ in COMMANDS))
    kw = {"steps": 6, "lr": 5e-3, "batch": 3, "seq_len": 48, "max_new_tokens": 12, "top_k": 8}
    student = {"num_layers": 1, "intermediate_size": 64}
    r = distill(tiny.root, student, prompts, tmp_path / "student", **kw)
    assert r.student_parameters < 0.6 * r.teacher_parameters
    assert r.train.steps == 6 and all(np.isfinite(r.train.losses))
    assert r.manifest.default_variant == "int4" and r.manifest.source["distilled_from"] == "tiny"
    assert r.manifest.source["data_sha256"] == hashlib.sha256(prompts.read_bytes()).hexdigest()
    with Engine.load(r.manifest.root, max_context=64) as engine:
        assert engine.variant == "int4"
        engine.complete("hello", max_tokens=4)
    answers = (tmp_path / "student.train" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == len(COMMANDS)
    # cached answers, soft targets and layer picks (no teacher forward pass), finished checkpoint: export only
    monkeypatch.setattr(distill_module, "block_influence", lambda *a: pytest.fail("block influence measured again"))
    again = distill(tiny.root, student, prompts, tmp_path / "student", quantize=None, **kw)
    assert again.train.resumed_from == 6 and again.train.losses == r.train.losses
    assert again.manifest.source["teacher_layers"] == r.manifest.source["teacher_layers"]
    assert (tmp_path / "student.train" / "answers.jsonl").read_text().splitlines() == answers


def test_distill_learns_the_data_targets_with_the_teachers_soft_targets(tiny, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": p, "target": t} for p, t in COMMANDS[:4]] + [{"prompt": "hello"}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kw = {"steps": 8, "lr": 5e-3, "batch": 5, "seq_len": 48, "max_new_tokens": 12, "top_k": 8, "quantize": None}
    r = distill(tiny.root, {"num_layers": 1, "intermediate_size": 64}, prompts, tmp_path / "student", **kw)
    assert r.from_targets == 4 and r.manifest.source["answers_from_targets"] == 4
    asked = [json.loads(x) for x in (tmp_path / "student.train" / "answers.jsonl").read_text().splitlines()]
    assert [a["line"] for a in asked] == [5]  # the teacher answered only the line without a target
    assert r.ce_after < r.ce_before

    samples = answer_samples(
        tiny,
        read_examples(prompts, need_target=False),
        tmp_path / "unused.jsonl",
        use_targets=True,
        seq_len=48,
        max_new_tokens=12,
    )
    tokenizer = Tokenizer.from_dir(tiny.root)
    for sample, (_, target) in zip(samples, COMMANDS[:4]):
        labeled = sample.labels[sample.labels != IGNORE].tolist()
        assert labeled[-1] in tokenizer.eos_ids and json.loads(tokenizer.decode(labeled[:-1])) == target
    teacher_only = distill(
        tiny.root, {"num_layers": 1, "intermediate_size": 64}, prompts, tmp_path / "imitate", answers="teacher", **kw
    )
    assert teacher_only.from_targets == 0
    assert len((tmp_path / "imitate.train" / "answers.jsonl").read_text().splitlines()) == len(rows)
    with pytest.raises(ValueError, match="auto"):
        distill(tiny.root, "small", prompts, tmp_path / "x", answers="gold")


def test_fake_quant_is_the_int4_grid_the_export_writes():
    w = torch.randn(48, 96) * torch.linspace(0.01, 2.0, 96)  # blocks of very different ranges
    w[3, :32] = 0.5  # a constant block
    exported = dequantize_weight(quantize_weight(w.numpy(), 4, 32, offsets=True, method="rtn"))
    np.testing.assert_allclose(fake_quant_int4(w, 32).numpy(), exported, rtol=0, atol=1e-6)
    on_grid = fake_quant_int4(w, 32)
    np.testing.assert_allclose(fake_quant_int4(on_grid, 32).numpy(), on_grid.numpy(), rtol=0, atol=1e-6)


def test_distill_with_qat_makes_int4_compute_what_fp32_does(tiny, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in COMMANDS))
    kw = {"steps": 4, "lr": 5e-3, "batch": 3, "seq_len": 48, "top_k": 8}
    student = {"num_layers": 1, "intermediate_size": 64}
    plain = distill(tiny.root, student, prompts, tmp_path / "plain", **kw)
    qat = distill(tiny.root, student, prompts, tmp_path / "qat", qat_steps=3, **kw)
    assert qat.manifest.source["qat_steps"] == 3 and plain.manifest.source["qat_steps"] == 0
    assert (tmp_path / "qat.train" / "qat-after-4" / "checkpoint.pt").is_file()
    for layer in load_weights(qat.manifest).layers:  # the fp32 variant's weights lie on the grid
        for m in (layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down):
            w = m.dense()
            np.testing.assert_allclose(dequantize_weight(quantize_weight(w, 4, 32, offsets=True)), w, atol=1e-5)
    ids = np.array([[1, 5, 9, 13, 2, 7, 11, 3]], np.int64)

    def int4_error(r) -> float:
        fp32, int4 = ort_logits(r.manifest, ids, "fp32"), ort_logits(r.manifest, ids, "int4")
        return float(np.abs(int4 - fp32).max() / np.abs(fp32).max())

    assert int4_error(qat) < 0.25 * int4_error(plain)
    longer = distill(tiny.root, student, prompts, tmp_path / "qat", qat_steps=3, **{**kw, "steps": 6})
    assert longer.train.resumed_from == 4 and longer.train.steps == 6  # trained longer: the QAT starts over
    assert longer.qat.resumed_from == 0 and longer.qat.steps == 3 and longer.manifest.source["steps"] == 6


def test_distill_continues_a_pruned_teacher_as_its_recovery(tiny, tmp_path, tmp_path_factory):
    calib = tmp_path / "calib.txt"
    calib.write_text(" ".join(p for p, _ in COMMANDS) * 20)
    prune(tiny, calib, tmp_path / "pruned", ratio=0.5)
    pruned = Manifest.load(tmp_path / "pruned")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in COMMANDS))
    kw = {"steps": 6, "lr": 5e-3, "batch": 3, "seq_len": 48, "top_k": 8, "quantize": None}
    r = distill(tiny.root, str(pruned.root), prompts, tmp_path / "recovered", **kw)
    assert r.manifest.source["student_from"] == "pruned"
    assert r.student_parameters == parameter_count(load_weights(pruned)) < r.teacher_parameters
    assert [layer.gate.rows for layer in load_weights(r.manifest).layers] == [
        layer.gate.rows for layer in load_weights(pruned).layers
    ]  # the pruned widths, trained
    assert r.ce_after < r.ce_before

    other = tmp_path_factory.mktemp("narrow") / "narrow.gguf"
    write_tiny_gguf(other, hidden=32)
    narrow = ModelStore(tmp_path / "home").pull(other, name="narrow")
    with pytest.raises(ToolchainError, match="hidden_size=32"):
        distill(tiny.root, str(narrow.root), prompts, tmp_path / "x", **kw)


def test_cli_finetune(tiny, task_file, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli_train.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "finetune",
            str(tiny.root),
            "--data",
            str(task_file),
            "--out",
            str(tmp_path / "m"),
            "--steps",
            "3",
            "--batch",
            "2",
            "--seq-len",
            "64",
            "--quantize",
            "none",
            "--qat-steps",
            "2",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "trained 3 steps" in out.out and "then 2 steps" in out.out and "quantization-aware" in out.out
    assert "default: q8" in out.out and "step 3/3" in out.err


def test_missing_torch_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    for mod in ("torch_llama", "lora", "train", "finetune", "distill"):
        monkeypatch.delitem(sys.modules, f"edgellm_sdk.toolchain.{mod}", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(MissingDependency, match=r"pip install 'edgellm-sdk\[train\]'"):
        import edgellm_sdk.toolchain.finetune  # noqa: F401


@pytest.mark.model
def test_torch_matches_ort_on_the_default_model(default_store):
    manifest = default_store.resolve("smollm2-135m")
    ids = np.array([[1, 9690, 198, 2683, 359, 253, 5356, 2, 198, 1, 4093, 198, 19556, 17, 2]], np.int64)
    with torch.no_grad():
        logits = TorchLlama.from_weights(load_weights(manifest))(torch.from_numpy(ids)).numpy()
    ref = ort_logits(manifest, ids)
    assert np.abs(logits - ref).max() < 1e-3
