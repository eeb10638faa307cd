"""The Flower ServerApp: handshake, LoRA rounds, checkpoints, held-out evaluation, export.

Run by Flower (``flwr run`` submits it to the SuperLink, which starts it in ``flwr-serverapp``),
never imported by the SDK. Its run config (``app/pyproject.toml``, overridden by ``flwr run -c``,
which ``edgellm federated server`` writes) names the base model, the output directory and the
round plan. A run:

1. waits (bounded) for ``min-clients`` nodes, then asks each for its base-model hash: a node whose
   hash differs is logged as REFUSED and gets no round (it also refuses a plan with another hash);
2. resumes from ``<out>/state.json`` when an earlier run of the same plan was interrupted;
3. runs the rounds left (device training only: evaluation is centralized, on the held-out file);
   after each, the global adapter is checkpointed and evaluated;
4. writes ``<out>/adapter.pt``, ``<out>/model`` (the exported model) and ``<out>/summary.json``.
"""

from __future__ import annotations

import json
import time
from logging import INFO, WARNING
from pathlib import Path

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx

from ..errors import ToolchainError
from ..models.store import ModelStore
from .checkpoints import RoundStore
from .local import base_hash, evaluate_adapter, export_adapter, initial_adapter
from .plan import RoundPlan
from .strategy import CheckedDP, LoraFedAvg, LoraFedProx

app = ServerApp()
HANDSHAKE = "query.handshake"


def plan_from(run_config, hash_: str) -> RoundPlan:
    keys = ("aggregation", "rank", "alpha", "targets", "a-seed", "steps", "lr", "batch", "seq-len")
    values = {k: run_config[k] for k in keys if k in run_config}
    mu = float(run_config.get("proximal-mu", 0.0)) if run_config.get("strategy") == "fedprox" else 0.0
    return RoundPlan.from_config({**values, "base-hash": hash_, "proximal-mu": mu})


def wait_for_nodes(grid: Grid, wanted: int, timeout_s: float) -> list[int]:
    """The connected node ids once ``wanted`` are there; a clear error after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while len(nodes := list(grid.get_node_ids())) < wanted:
        if time.monotonic() > deadline:
            raise ToolchainError(
                f"only {len(nodes)} of --min-clients {wanted} devices connected within {timeout_s:.0f} s; "
                "start more `edgellm federated client`s or lower --min-clients"
            )
        time.sleep(0.5)
    return nodes


def handshake(grid: Grid, nodes: list[int], hash_: str, timeout_s: float) -> set[int]:
    """The nodes whose base model is the server's; every other one is logged as REFUSED."""
    asks = [
        Message(RecordDict({"handshake": ConfigRecord({"base-hash": hash_})}), dst_node_id=n, message_type=HANDSHAKE)
        for n in nodes
    ]
    accepted = set()
    for reply in grid.send_and_receive(asks, timeout=timeout_s):
        node = reply.metadata.src_node_id
        theirs = None if reply.has_error() else reply.content["handshake"].get("base-hash")
        if theirs == hash_:
            accepted.add(node)
        else:
            why = reply.error.reason if reply.has_error() else f"base model hash {theirs!s} != server {hash_}"
            log(WARNING, "REFUSED node %s: %s; the device must run the server's base model", node, why)
    return accepted


def strategy_for(rc, plan: RoundPlan, expected: dict, min_clients: int):
    common: dict = {"fraction_evaluate": 0.0, "min_train_nodes": 1, "min_available_nodes": 1}  # our wait did K
    if not rc.get("dp", False):
        kind = LoraFedProx if plan.proximal_mu > 0 else LoraFedAvg
        extra = {"proximal_mu": plan.proximal_mu} if plan.proximal_mu > 0 else {}
        return kind(mode=plan.aggregation, expected=expected, **common, **extra)
    if plan.aggregation == "svd":
        raise ToolchainError("--dp needs --aggregation fixed-a: Flower's accountant covers only a plain FedAvg")
    from flwr.serverapp import NeighboringRelation, PrivacyConfig, RdpAccountant, SamplingMethod

    inner = FedProx(proximal_mu=plan.proximal_mu, **common) if plan.proximal_mu > 0 else FedAvg(**common)
    privacy = PrivacyConfig(
        target_delta=float(rc.get("target-delta", 1e-5)),
        population_size=min_clients,
        neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
        sampling_method=SamplingMethod.NO_AMPLIFICATION,
    )
    dp = CheckedDP(
        inner,
        float(rc["noise-multiplier"]),
        float(rc["clipping-norm"]),
        min_clients,
        accountant=RdpAccountant(privacy),
    )
    dp.expected = expected
    return dp


def as_numpy(arrays: ArrayRecord) -> dict:
    return {k: a.numpy() for k, a in arrays.items()}


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    t0 = time.monotonic()
    base = ModelStore().resolve(str(rc["model"]))
    out, rounds, min_clients = Path(str(rc["out"])), int(rc["rounds"]), int(rc["min-clients"])
    plan = plan_from(rc, base_hash(base))
    store = RoundStore(out, plan)
    done, adapter = store.last()
    if done:
        log(INFO, "resuming after round %d of %d (checkpoint in %s)", done, rounds, out)
    adapter = adapter if adapter is not None else initial_adapter(base, plan)
    expected = {k: tuple(v.shape) for k, v in adapter.items()}
    held_out = None
    if str(rc.get("eval", "")):
        from .device import load_samples

        held_out = load_samples(base, str(rc["eval"]), plan.seq_len, redact_pii=False)

    nodes = wait_for_nodes(grid, min_clients, float(rc.get("node-wait-s", 60)))
    accepted = handshake(grid, nodes, plan.base_hash, float(rc.get("round-timeout", 600)))
    log(INFO, "handshake: %d device(s) accepted, %d refused", len(accepted), len(nodes) - len(accepted))
    if not accepted:
        raise ToolchainError("no device runs the server's base model: nothing to train")
    strategy = strategy_for(rc, plan, expected, min(min_clients, len(accepted)))
    strategy.allowed = accepted

    round_start = [time.monotonic()]

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        metrics = evaluate_adapter(base, plan, as_numpy(arrays), held_out) if held_out else {}
        if server_round > 0:
            metrics.update(strategy.last_round or {})
            metrics["round-seconds"] = time.monotonic() - round_start[0]
            store.save(done + server_round, as_numpy(arrays), metrics)
        log(INFO, "round %d: %s", done + server_round, metrics)
        round_start[0] = time.monotonic()
        return MetricRecord(dict(metrics))  # type: ignore[arg-type]

    result = None
    if done < rounds:
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord({k: Array(v) for k, v in adapter.items()}),
            num_rounds=rounds - done,
            timeout=float(rc.get("round-timeout", 600)),
            train_config=ConfigRecord({**plan.to_config(), "first-round": done}),
            evaluate_fn=evaluate,
        )
    final = as_numpy(result.arrays) if result is not None and len(result.arrays) else store.last()[1] or adapter
    source = {"federated_from": base.name, "rounds": rounds, "aggregation": plan.aggregation, "devices": len(accepted)}
    export_adapter(base, plan, final, out, name=str(rc.get("name", "")) or f"{base.name}-federated", source=source)
    summary = {"rounds": rounds, "resumed_after": done, "devices": sorted(accepted), "history": store.history()}
    if isinstance(strategy, CheckedDP):
        spent = strategy.privacy_spent()
        summary["privacy"] = None if spent is None else {"epsilon": spent.epsilon, "delta": spent.delta}
        log(INFO, "privacy spent: %s", summary["privacy"])
    summary["seconds"] = time.monotonic() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    log(INFO, "done: global adapter and model in %s (%.1f s)", out, summary["seconds"])
