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

Part 2 (the multi-process demonstration with SuperNodes) is not run by this script yet; see README.

    .venv/bin/python benchmarks/bench_federated.py --rounds 3 --steps 8 --test 48
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


def device_slices(base, seq_len: int, per_device: int):
    """Samples of each device: its command types only (non-IID), at most ``per_device``."""
    examples = read_examples(DATA / "task_commands_train.jsonl", need_target=True)
    by_kind = defaultdict(list)
    for ex in examples:
        by_kind[json.loads(ex.target)["command"]].append(ex)
    out = []
    for kinds in SLICES:
        mine = [ex for k in kinds for ex in by_kind[k]]
        rng = np.random.default_rng(len(out))
        mine = [mine[i] for i in rng.permutation(len(mine))[:per_device]]
        out.append(target_samples(base.root, mine, seq_len))
    return out


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
    p.add_argument("--out", type=Path, default=RESULTS / "bench_federated.json")
    args = p.parse_args()
    base = ModelStore().resolve(args.model)
    info = machine()
    print(f"machine: {describe(info)}", flush=True)
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
    # baselines: each device alone, and all data in one place, for the same total local steps
    plan = RoundPlan(base_hash="bench", aggregation="svd", rank=8, alpha=16.0, steps=args.steps * args.rounds,
                     lr=args.lr, batch=4, seq_len=args.seq_len)  # fmt: skip
    start = initial_adapter(base, plan)
    for i, s in enumerate(devices):
        report["alone"].append(
            {"device": i, **evaluate(base, plan, train_round(base, s, plan, start, seed=1).tensors, test)}
        )
        print("alone", report["alone"][-1], flush=True)
    everything = [x for s in devices for x in s]  # same compute as the federation: all devices' steps
    plan = RoundPlan(base_hash="bench", aggregation="svd", rank=8, alpha=16.0, steps=args.steps * args.rounds * 4,
                     lr=args.lr, batch=4, seq_len=args.seq_len)  # fmt: skip
    central = train_round(base, everything, plan, start, seed=1).tensors
    report["central"] = evaluate(base, plan, central, test)
    print("central", report["central"], flush=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
