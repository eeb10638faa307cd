"""Federated LoRA: which aggregation, measured on real LoRA updates of the default model.

Part 1 (``--aggregation``, in one process, no Flower): 4 devices, each holding a non-IID slice of
the robot-command train set (split by command type: each robot hears its own kinds of request),
run R rounds from the same global adapter with the very functions the Flower apps call
(``federated.local.train_round`` on the device, ``federated.aggregation.aggregate`` on the
server). Per round and per mode (svd, fixed-a, naive): the relative error of the global update
against the mean of the devices' products (what FedAvg of full weights would give), the
held-out loss and exact-match accuracy (teacher-forced greedy) on task_commands_test.jsonl, and
the bytes a device uploads. Also each device trained alone for the same number of steps, and
centralized training on all slices (the upper bound).

Part 2 (``--demo``, the multi-process demonstration): `edgellm federated server` (a SuperLink,
`flwr run`, the ServerApp) and one `edgellm federated client` (a SuperNode) per device, all real
processes on loopback, the devices holding the same non-IID slices as JSONL files (PII redaction
on, as by default). Runs: svd; fixed-a with DP off and on (the same aggregation, so the pair
isolates what DP costs). Per round: the server's held-out accuracy and loss, bytes each device
uploads, seconds per round. Baselines from the same files, redacted the same way: each device
alone, and centralized training on all slices with as many steps as the federated model took
(rounds x local steps) and with the federation's whole compute (x devices).

    .venv/bin/python benchmarks/bench_federated.py --rounds 3 --steps 8 --test 48
    .venv/bin/python benchmarks/bench_federated.py --demo --rounds 8 --steps 8 --test 48
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # federated_rig: the CLI processes
from machine import describe, machine

from edgellm_sdk.federated import aggregation
from edgellm_sdk.federated.local import adapted_model, exact_match, initial_adapter, train_round
from edgellm_sdk.federated.plan import RoundPlan
from edgellm_sdk.models.store import ModelStore
from edgellm_sdk.toolchain.data import read_examples
from edgellm_sdk.toolchain.finetune import task_samples
from edgellm_sdk.toolchain.train import mean_loss, target_samples

DATA = Path(__file__).parent / "data"
RESULTS = Path(__file__).parent / "results"
SLICES = [
    ("move", "stop"),
    ("turn", "grip", "report_status"),
    ("lights", "set_thermostat"),
    ("set_speed", "not_understood"),
]


def slice_examples(per_device: int) -> list[list]:
    """Each device's examples: its command types only (non-IID), at most ``per_device``."""
    by_kind = defaultdict(list)
    for ex in read_examples(DATA / "task_commands_train.jsonl", need_target=True):
        by_kind[json.loads(ex.target)["command"]].append(ex)
    out = []
    for i, kinds in enumerate(SLICES):
        mine = [ex for k in kinds for ex in by_kind[k]]
        out.append([mine[j] for j in np.random.default_rng(i).permutation(len(mine))[:per_device]])
    return out


def device_slices(base, seq_len: int, per_device: int):
    return [target_samples(base.root, mine, seq_len) for mine in slice_examples(per_device)]


def write_slices(work: Path, per_device: int, test: int) -> tuple[list[Path], Path]:
    """The devices' slices and the held-out file, as task JSONL files (what a device holds)."""
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for i, mine in enumerate(slice_examples(per_device)):
        files.append(work / f"device{i}.jsonl")
        rows = [json.dumps({"messages": list(ex.messages), "target": ex.target}) + "\n" for ex in mine]
        files[-1].write_text("".join(rows))
    held = work / "held_out.jsonl"
    held.write_text("\n".join((DATA / "task_commands_test.jsonl").read_text().splitlines()[:test]) + "\n")
    return files, held


def demo_run(name: str, base, files, held, work: Path, args, extra: list[str]) -> dict:
    """One federated run as real processes: the server and one client per device file."""
    from federated_rig import Fleet

    from edgellm_sdk.federated.runtime import free_port

    out, port = work / name, free_port()
    fleet = Fleet(work)
    settings = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--lr", str(args.lr),
                "--seq-len", str(args.seq_len), "--batch", "4", "--node-wait", "300"]  # fmt: skip
    t0 = time.perf_counter()
    try:
        fleet.server(f"{name}-server", port, out, base.root, "--min-clients", str(len(files)), "--eval", str(held),
                     *settings, *extra)  # fmt: skip
        for i, f in enumerate(files):
            fleet.client(f"{name}-device{i}", port, base.root, f, "--threads", str(args.client_threads))
        code = fleet.wait(f"{name}-server", 4 * 3600)
    finally:
        fleet.close()
    if code != 0:
        raise SystemExit(f"{name}: the server failed:\n{fleet.log(f'{name}-server')[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    keep = ("round", "held-out-accuracy", "held-out-loss", "adapters", "rejected", "bytes-per-device", "round-seconds")
    history = [{k: h[k] for k in keep if k in h} for h in summary["history"]]
    for h in history:
        print(name, h, flush=True)
    return {"history": history, "privacy": summary.get("privacy"), "seconds": round(time.perf_counter() - t0, 1)}


def demo(base, args, info) -> dict:
    from edgellm_sdk.federated.device import load_samples

    work = Path(args.work)
    files, held = write_slices(work / "data", args.per_device, args.test)
    devices = [load_samples(base, f, args.seq_len, redact_pii=True) for f in files]  # as the clients read them
    test = task_samples(base, held, args.seq_len)
    report: dict = {"machine": info, "settings": vars(args) | {"out": str(args.out)}, "runs": {}}
    dp = ["--dp", "--noise-multiplier", str(args.noise_multiplier), "--clipping-norm", str(args.clipping_norm)]
    runs = {"svd": ["--aggregation", "svd"], "fixed-a": ["--aggregation", "fixed-a"],
            "fixed-a+dp": ["--aggregation", "fixed-a", *dp]}  # fmt: skip
    for name in args.runs.split(","):
        report["runs"][name] = demo_run(name, base, files, held, work, args, runs[name])
        args.out.write_text(json.dumps(report, indent=1))
    steps = args.rounds * args.steps
    report["alone"], report["central"] = baselines(base, devices, test, steps, args.lr, args.seq_len)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text(demo_markdown(report))
    return report


def demo_markdown(report: dict) -> str:
    st = report["settings"]
    lines = [
        "# bench_federated --demo: SuperLink + SuperNodes as real processes (SmolLM2-135M, robot commands)",
        "",
        (
            f"Machine: {describe(report['machine'])}. {len(SLICES)} devices x {st['per_device']} non-IID examples, "
            f"{st['rounds']} rounds x {st['steps']} local steps, rank 8, lr {st['lr']}; held-out: first {st['test']} "
            "of task_commands_test.jsonl (exact match, teacher-forced greedy)."
        ),
        "",
        "| run | round | held-out accuracy | held-out loss | upload / device | s / round |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in report["runs"].items():
        for h in run["history"]:
            lines.append(
                f"| {name} | {h['round']} | {100 * h['held-out-accuracy']:.1f} % | {h['held-out-loss']:.4f} | "
                f"{h.get('bytes-per-device', 0) / 1e6:.2f} MB | {h.get('round-seconds', 0):.1f} |"
            )
        if run.get("privacy"):
            eps = run["privacy"]["epsilon"]
            lines.append(f"| {name}: privacy spent | | epsilon {eps:.2f} at delta {run['privacy']['delta']} | | | |")
    lines += ["", "| baseline | steps | held-out loss | accuracy |", "|---|---|---|---|"]
    for a in report["alone"]:
        lines.append(f"| device {a['device']} alone | {a['steps']} | {a['loss']:.4f} | {100 * a['accuracy']:.1f} % |")
    mean = float(np.mean([a["accuracy"] for a in report["alone"]]))
    lines.append(f"| mean of the devices alone | | | {100 * mean:.1f} % |")
    for label, c in report["central"].items():
        lines.append(
            f"| centralized, all slices ({label}) | {c['steps']} | {c['loss']:.4f} | {100 * c['accuracy']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def baselines(base, devices, test, steps: int, lr: float, seq_len: int) -> tuple[list, dict]:
    """Each device alone for ``steps``; all slices together for ``steps`` and for devices x ``steps``."""
    plan = RoundPlan(
        base_hash="bench", aggregation="svd", rank=8, alpha=16.0, steps=steps, lr=lr, batch=4, seq_len=seq_len
    )
    start = initial_adapter(base, plan)
    alone = []
    for i, s in enumerate(devices):
        alone.append(
            {
                "device": i,
                "steps": steps,
                **evaluate(base, plan, train_round(base, s, plan, start, seed=1).tensors, test),
            }
        )
        print("alone", alone[-1], flush=True)
    everything = [x for s in devices for x in s]
    central = {}  # as many updates as the federated model got; as much compute as all devices spent
    for label, n in (("same-steps", steps), ("same-compute", steps * len(devices))):
        p = RoundPlan(
            base_hash="bench", aggregation="svd", rank=8, alpha=16.0, steps=n, lr=lr, batch=4, seq_len=seq_len
        )
        central[label] = {
            "steps": n,
            **evaluate(base, p, train_round(base, everything, p, start, seed=1).tensors, test),
        }
        print("central", label, central[label], flush=True)
    return alone, central


def evaluate(base, plan, adapter, test) -> dict:
    net = adapted_model(base, plan, adapter)
    return {"loss": round(mean_loss(net, test, limit=len(test)), 4), "accuracy": round(exact_match(net, test), 4)}


def run_mode(base, mode, devices, test, args) -> list[dict]:
    plan = RoundPlan(base_hash="bench", aggregation=mode, rank=8, alpha=16.0, steps=args.steps, lr=args.lr,
                     batch=4, seq_len=args.seq_len)  # fmt: skip
    glob = initial_adapter(base, plan)
    a_of = None
    if mode == "fixed-a":
        net = adapted_model(base, plan)
        a_of = {n.rsplit(".", 1)[0]: p.detach().numpy() for n, p in net.named_parameters() if n.endswith("lora_a")}
    history = [{"round": 0, **evaluate(base, plan, glob, test)}]
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        results = [train_round(base, s, plan, glob, seed=r) for s in devices]
        updates, weights = [res.tensors for res in results], [res.examples for res in results]
        glob = aggregation.aggregate(updates, weights, mode)
        err = aggregation.product_error(glob, updates, weights, a_of=(a_of.get if a_of else None))
        nbytes = sum(v.nbytes for v in updates[0].values())
        history.append({"round": r, "product_error": round(err, 4), "upload_bytes": nbytes,
                        "seconds": round(time.perf_counter() - t0, 1), **evaluate(base, plan, glob, test)})  # fmt: skip
        print(mode, history[-1], flush=True)
    return history


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8, help="local steps per round")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--per-device", type=int, default=64)
    p.add_argument("--test", type=int, default=48, help="held-out examples evaluated")
    p.add_argument("--modes", default="svd,fixed-a,naive")
    p.add_argument("--out", type=Path, help="default: results/bench_federated.json (--demo: ..._demo.json)")
    p.add_argument("--demo", action="store_true", help="part 2: the multi-process run (SuperLink + SuperNodes)")
    p.add_argument("--runs", default="svd,fixed-a,fixed-a+dp", help="--demo: which runs")
    p.add_argument("--noise-multiplier", type=float, default=1.0, help="--demo DP run")
    p.add_argument("--clipping-norm", type=float, default=1.0, help="--demo DP run")
    p.add_argument("--client-threads", type=int, default=1, help="--demo: torch threads per device process")
    p.add_argument("--work", default="/tmp/bench_federated_demo", help="--demo: data files, runs, logs")
    args = p.parse_args()
    args.out = args.out or RESULTS / ("bench_federated_demo.json" if args.demo else "bench_federated.json")
    base = ModelStore().resolve(args.model)
    info = machine()
    print(f"machine: {describe(info)}", flush=True)
    if args.demo:
        demo(base, args, info)
        return 0
    devices = device_slices(base, args.seq_len, args.per_device)
    test = task_samples(base, DATA / "task_commands_test.jsonl", args.seq_len)[: args.test]
    report = {
        "machine": info,
        "settings": vars(args) | {"out": str(args.out)},
        "modes": {},
        "alone": [],
        "central": None,
    }
    for mode in args.modes.split(","):
        report["modes"][mode] = run_mode(base, mode, devices, test, args)
        args.out.write_text(json.dumps(report, indent=1))
    report["alone"], report["central"] = baselines(base, devices, test, args.steps * args.rounds, args.lr, args.seq_len)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
