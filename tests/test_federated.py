"""Federated LoRA fine-tuning on Flower: aggregation maths, then real runs on loopback.

The runs are the real thing, as CI runs them on 2 cores: `edgellm federated server` (a SuperLink,
`flwr run`, the ServerApp) and `edgellm federated client`s (SuperNodes, one ClientApp process per
message) on the tiny model, 2 rounds of a few steps. One TLS run carries the wire capture, a
device sending wrong-shape tensors and a device with another base model; one plain run has a
device dropping out mid-round and the server restarted between the rounds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("torch")

from federated_rig import Fleet, rig_app, write_tasks
from tiny_llama import write_tiny_gguf

from edgellm_sdk.errors import MissingDependency, ToolchainError
from edgellm_sdk.federated import aggregation
from edgellm_sdk.federated.checkpoints import RoundStore
from edgellm_sdk.federated.commands import ClientOptions, join, tls_for
from edgellm_sdk.federated.plan import RoundPlan
from edgellm_sdk.federated.runtime import free_port, key_values

COMMANDS = [
    ("turn left", {"cmd": "left"}),
    ("turn right", {"cmd": "right"}),
    ("stop now", {"cmd": "stop"}),
    ("go forward", {"cmd": "go"}),
    ("go back", {"cmd": "back"}),
    ("hello", {"cmd": "hi"}),
]
SECRET = "call Ann Lee at ann.lee@example.com"  # local text that must never leave a device
FAST = ("--steps", "3", "--seq-len", "128", "--batch", "2", "--rounds", "2", "--node-wait", "90")


@pytest.fixture(scope="module")
def models(tiny_store, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "other.gguf"
    write_tiny_gguf(other, qtype="F32", seed=7)
    return tiny_store.resolve("tiny"), tiny_store.pull(other, name="other-base")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("fed-data")
    slices = [COMMANDS[:3], COMMANDS[3:]]
    files = [write_tasks(d / f"device{i}.jsonl", [(f"{p}, {SECRET}", t) for p, t in s]) for i, s in enumerate(slices)]
    return files, write_tasks(d / "held_out.jsonl", COMMANDS)


# --- aggregation (numpy) ---------------------------------------------------------------------
def lora(rng, out=12, r=2, width=16, scale=1.0):
    return {"l.lora_a": rng.normal(size=(r, width)).astype(np.float32), "l.lora_b": scale * rng.normal(size=(out, r))}


def test_svd_is_the_mean_of_the_products_and_naive_is_not():
    rng = np.random.default_rng(0)
    devices = [lora(rng) for _ in range(3)]
    w = [1.0, 2.0, 3.0]
    svd, naive = aggregation.aggregate(devices, w, "svd"), aggregation.aggregate(devices, w, "naive")
    # 3 rank-2 products have rank <= 6 > r = 2: svd is the best rank-2 approximation, naive is far off
    assert aggregation.product_error(svd, devices, w) < aggregation.product_error(naive, devices, w)
    one = [devices[0], devices[0]]  # identical devices: the mean product has rank r, svd is exact
    assert aggregation.product_error(aggregation.aggregate(one, [1, 1], "svd"), one, [1, 1]) < 1e-6
    assert np.allclose(np.linalg.norm(svd["l.lora_a"], axis=1), aggregation.ROW_NORM, atol=1e-6)


def test_fixed_a_fedavg_on_b_is_exact():
    rng = np.random.default_rng(1)
    a = aggregation.shared_a(3, "l", 2, 16)
    assert np.array_equal(a, aggregation.shared_a(3, "l", 2, 16))  # every device draws the same A
    devices = [{"l.lora_b": rng.normal(size=(12, 2)).astype(np.float32)} for _ in range(4)]
    glob = aggregation.aggregate(devices, [1, 1, 1, 1], "fixed-a")
    assert aggregation.product_error(glob, devices, [1, 1, 1, 1], a_of=lambda n: a) < 1e-6


def test_check_adapter_names_what_is_wrong():
    expected = {"l.lora_a": (2, 16), "l.lora_b": (12, 2)}
    good = {"l.lora_a": np.zeros((2, 16), np.float32), "l.lora_b": np.zeros((12, 2), np.float32)}
    assert aggregation.check_adapter(good, expected) is None
    assert "shape (1, 2)" in aggregation.check_adapter({**good, "l.lora_b": np.zeros((1, 2))}, expected)
    assert "NaN" in aggregation.check_adapter({**good, "l.lora_a": np.full((2, 16), np.nan)}, expected)
    assert "names differ" in aggregation.check_adapter({"l.lora_a": good["l.lora_a"]}, expected)


def test_plan_round_trips_through_a_config_and_checkpoints_refuse_another_run(tmp_path):
    plan = RoundPlan(base_hash="abc", aggregation="fixed-a", rank=4, alpha=8.0, steps=3)
    assert RoundPlan.from_config(plan.to_config()) == plan
    with pytest.raises(ValueError, match="aggregation"):
        RoundPlan(base_hash="abc", aggregation="mean")
    RoundStore(tmp_path, plan).save(1, {"x": np.ones(2, np.float32)}, {"loss": 1.0})
    assert RoundStore(tmp_path, plan).last()[0] == 1
    with pytest.raises(ToolchainError, match="different run"):
        RoundStore(tmp_path, RoundPlan(base_hash="other")).last()


def test_node_config_is_toml():
    assert key_values({"model": "/m", "redact": True, "n": 2}) == 'model="/m" redact=true n=2'


# --- bad input ---------------------------------------------------------------------------------
def test_plain_http_is_refused_off_loopback(tmp_path):
    assert tls_for("127.0.0.1", None, False) is None
    with pytest.raises(ToolchainError, match="needs TLS"):
        tls_for("0.0.0.0", None, True)
    with pytest.raises(ToolchainError, match="root-certificates"):
        join(ClientOptions(model="x", data=tmp_path / "d.jsonl", server="10.1.2.3:9092"))


def test_missing_flower_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flwr", None)
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[federated\].*3\.11"):
        join(ClientOptions(model="x", data="d.jsonl", server="127.0.0.1:1"))


def test_bad_client_settings_are_refused_before_anything_starts(tmp_path):
    opts = ClientOptions(model="x", data=tmp_path / "d.jsonl", server="127.0.0.1:1")
    with pytest.raises(ToolchainError, match=r"--nice must be 0\.\.19"):
        join(replace(opts, nice=25))
    with pytest.raises(ToolchainError, match="--threads must be >= 0"):
        join(replace(opts, threads=-1))


def test_client_reports_bad_lines_before_connecting(models, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "target": "b"}\nnot json\n{"prompt": "c"}\n')
    with pytest.raises(ToolchainError, match=r"2 bad line\(s\)[\s\S]*line 2[\s\S]*line 3"):
        join(ClientOptions(model=str(models[0].root), data=bad, server="127.0.0.1:1"))


def test_unreachable_server_gives_up_with_a_clear_error(models, data, capsys):
    opts = ClientOptions(
        model=str(models[0].root), data=data[0][0], server=f"127.0.0.1:{free_port()}", max_retries=2, max_wait_s=5
    )
    with pytest.raises(ToolchainError, match="cannot reach the federated server"):
        join(opts)


# --- real runs -------------------------------------------------------------------------------------
def test_tls_run_refuses_another_base_rejects_bad_tensors_and_sends_only_adapters(models, data, tmp_path):
    from edgellm_sdk import Engine
    from edgellm_sdk.federated.tls import make_certificates
    from edgellm_sdk.toolchain.finetune import task_samples

    tiny, other = models
    certs = make_certificates(tmp_path / "certs")
    port, out, capture = free_port(), tmp_path / "run", tmp_path / "capture.jsonl"
    fleet = Fleet(tmp_path)
    try:
        app = rig_app(tmp_path / "app")
        fleet.server("server", port, out, tiny.root, "--min-clients", "3", "--eval", str(data[1]), *FAST,
                     "--tls-dir", str(certs.ca.parent), "--app", str(app))  # fmt: skip
        ca = ("--root-certificates", str(certs.ca))
        fleet.client("good", port, tiny.root, data[0][0], *ca, env={"EDGELLM_FED_CAPTURE": str(capture)})
        fleet.client("bad-shape", port, tiny.root, data[0][1], *ca, env={"EDGELLM_FED_FAULT": "bad-shape"})
        fleet.client("other-base", port, other.root, data[0][1], *ca)
        assert fleet.wait("server", 240) == 0, fleet.log("server")[-3000:]
    finally:
        fleet.close()
    log = fleet.log("server")
    assert "REFUSED node" in log and "base model hash" in log
    assert log.count("adapter rejected") == 2 and "has shape (1, " in log  # both rounds, the round went on
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 2 and len(summary["devices"]) == 2
    assert [h["round"] for h in summary["history"]] == [1, 2]
    assert all((h["adapters"], h["rejected"]) == (1, 1) for h in summary["history"])
    assert all(0.0 <= h["held-out-accuracy"] <= 1.0 for h in summary["history"])

    # what left the good device: the handshake's hash, then per round LoRA tensors and three numbers
    replies = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [r["type"] for r in replies] == ["query.handshake", "train", "train"]
    assert set(replies[0]["configs"]["handshake"]) == {"base-hash"} and not replies[0]["arrays"]
    for r in replies[1:]:
        assert list(r["arrays"]) == ["arrays"] and not r["configs"]
        assert all(n.endswith((".lora_a", ".lora_b")) for n in r["arrays"]["arrays"])
        assert set(r["metrics"]["metrics"]) == {"train-loss", "num-examples", "train-seconds"}
    payload = capture.with_name(capture.name + ".bin").read_bytes()
    samples = task_samples(tiny, data[0][0], 128)
    for text in (SECRET, "ann.lee@example.com", "turn left", "Ann Lee"):
        assert text.encode() not in payload
    for s in samples:  # no token-id sequence of the local data, in any integer width
        for dtype in (np.int64, np.int32, np.int16):
            assert s.ids[:8].astype(dtype).tobytes() not in payload

    with Engine.load(out / "model", max_context=64, threads=1) as engine:  # the export loads unchanged
        assert engine.complete("turn left", max_tokens=3).usage.completion_tokens >= 1
    assert (out / "adapter.pt").is_file()


def test_dropout_mid_round_and_server_restart_resume(models, data, tmp_path):
    tiny, _ = models
    port, out, mark = free_port(), tmp_path / "run", tmp_path / "stalled"
    state = out / "state.json"
    app = rig_app(tmp_path / "app")
    args = (*FAST, "--round-timeout", "120", "--app", str(app), "--state", "disk")  # running devices reconnect
    fleet = Fleet(tmp_path)
    try:
        fleet.server("server", port, out, tiny.root, "--min-clients", "3", *args)
        fleet.client("a", port, tiny.root, data[0][0])
        fleet.client("b", port, tiny.root, data[0][1])
        stall = {"EDGELLM_FED_FAULT": "stall", "EDGELLM_FED_MARK": str(mark)}
        fleet.client("leaver", port, tiny.root, data[0][1], env=stall)
        fleet.wait_for(mark.exists, 150, "the leaving device to start round 1")
        fleet.stop("leaver")  # gone mid-round: its SuperNode and ClientApp are killed
        fleet.wait_for(state.exists, 150, "round 1 to complete without the device that left")
        fleet.stop("server")  # restarted after round 1: the new run resumes from its checkpoint
        assert json.loads(state.read_text())["round"] in (1, 2)
        fleet.server("server2", port, out, tiny.root, "--min-clients", "2", *args)
        assert fleet.wait("server2", 200) == 0, fleet.log("server2")[-3000:]
    finally:
        fleet.close()
    assert "resuming after round" in fleet.log("server2")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_after"] >= 1 and [h["round"] for h in summary["history"]] == [1, 2]
    assert len(summary["devices"]) == 2
    first = summary["history"][0]
    assert (first["adapters"], first["rejected"]) == (2, 1), first  # the leaver's error reply, dropped


def test_dp_run_reports_epsilon_from_flowers_accountant(models, data, tmp_path):
    tiny, _ = models
    port, out = free_port(), tmp_path / "run"
    dp = ("--aggregation", "fixed-a", "--dp", "--noise-multiplier", "1.0", "--clipping-norm", "1.0")
    fleet = Fleet(tmp_path)
    try:
        fleet.server("server", port, out, tiny.root, "--min-clients", "2", *FAST, *dp)
        for i, d in enumerate(data[0]):
            fleet.client(f"device{i}", port, tiny.root, d)
        assert fleet.wait("server", 200) == 0, fleet.log("server")[-3000:]
    finally:
        fleet.close()
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["privacy"]["epsilon"] < 20 and summary["privacy"]["delta"] == 1e-5
    assert all(h["adapters"] == 2 for h in summary["history"])
    assert all(k.endswith(".lora_b") for k in np.load(out / "rounds" / "round2.npz").files)  # fixed-a: B only


def test_simulation_runtime_runs_the_same_apps_one_virtual_device_per_file(models, data, tmp_path):
    pytest.importorskip("ray")
    tiny, _ = models
    out = tmp_path / "run"
    files = [str(d) for d in data[0]]
    fleet = Fleet(tmp_path)
    try:
        argv = ["simulate", "--model", str(tiny.root), "--data", *files, files[0], "--eval", str(data[1])]
        fleet.start("sim", [*argv, "--out", str(out), "--port", str(free_port()), *FAST])
        assert fleet.wait("sim", 300) == 0, fleet.log("sim")[-3000:]
    finally:
        fleet.close()
    log = fleet.log("sim")
    assert "simulation runtime, 3 virtual devices" in log and "(3 simulated SuperNodes)" in log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 2 and len(summary["devices"]) == 3
    assert all((h["adapters"], h["rejected"]) == (3, 0) for h in summary["history"])
    assert (out / "model" / "manifest.json").is_file() and (out / "adapter.pt").is_file()


def test_simulation_reports_a_bad_data_file_before_starting(models, tmp_path):
    from edgellm_sdk.federated.commands import ServerOptions, simulate

    tiny, _ = models
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\nnot json\n')
    with pytest.raises(ToolchainError, match="line"):
        simulate(ServerOptions(model=str(tiny.root), out=tmp_path / "run"), [bad])
    with pytest.raises(ToolchainError, match="one --data file"):
        simulate(ServerOptions(model=str(tiny.root), out=tmp_path / "run"), [])
