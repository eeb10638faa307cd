"""The Flower ClientApp: a device's side of a round (started by its SuperNode, one process per message).

The SuperNode's node config says where the device's things are: ``model`` (a store name or model
directory), ``data-path`` (its task JSONL), ``redact`` (true unless ``--no-redact``) and
``threads`` (torch threads of the training; 0 = all cores) and ``nice`` (the training's
scheduling niceness: it yields the CPU to the device's own work). In
Flower's simulation runtime a virtual node has only its ``partition-id``: it takes the run
config's ``model`` and the ``partition-id``-th file of ``simulation-data`` instead. The
reply of a train message holds the adapter tensors and three numbers (train-loss, num-examples,
train-seconds); nothing else leaves the device. When the server runs central DP it sends a
clipping norm, and Flower's ``fixedclipping_mod`` clips the update before it is sent.
"""

from __future__ import annotations

import os

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from ..models.store import ModelStore
from .device import check_plan, load_samples
from .local import base_hash, train_round
from .plan import RoundPlan
from .runtime import SIMULATION_DATA_SEPARATOR

CLIPPING_NORM = "clipping_norm"  # the key Flower's DP wrapper puts in the train config


def clip_when_asked(msg: Message, context: Context, call_next) -> Message:
    """Flower's fixed clipping, only for a server that runs DP (the mod fails without the key)."""
    configs = list(msg.content.config_records.values())
    if configs and CLIPPING_NORM in configs[0]:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def device_settings(context: Context) -> tuple[str, str, bool]:
    """(model, data path, redact) of this device: its SuperNode's, or its simulation partition's."""
    node = context.node_config
    if "data-path" in node:
        return str(node["model"]), str(node["data-path"]), bool(node.get("redact", True))
    files = str(context.run_config.get("simulation-data", "")).split(SIMULATION_DATA_SEPARATOR)
    part = int(node.get("partition-id", -1))
    if not 0 <= part < len(files) or not files[part]:
        raise ValueError(f"node config {dict(node)} names no data file: start it with data-path (a SuperNode)")
    return str(context.run_config["model"]), files[part], bool(context.run_config.get("simulation-redact", True))


def yield_cpu(threads: int, nice: int) -> None:
    """Leave the device's cores and priority to its own work (this process trains one round)."""
    if nice > 0:
        os.nice(nice)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def device_model(context: Context):
    return ModelStore().resolve(device_settings(context)[0])


def handshake(msg: Message, context: Context) -> Message:
    own = base_hash(device_model(context))
    return Message(RecordDict({"handshake": ConfigRecord({"base-hash": own})}), reply_to=msg)


def train(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    plan = RoundPlan.from_config(config)
    model, data_path, redact = device_settings(context)
    base = ModelStore().resolve(model)
    check_plan(plan, base_hash(base))
    samples = load_samples(base, data_path, plan.seq_len, redact_pii=redact)
    yield_cpu(int(context.node_config.get("threads", 0)), int(context.node_config.get("nice", 0)))
    received = {k: a.numpy() for k, a in msg.content.array_records["arrays"].items()}
    result = train_round(base, samples, plan, received, seed=int(config.get("server-round", 0)))  # type: ignore[arg-type]
    # under DP every device weighs the same (Flower's accountant assumes it)
    examples = 1 if CLIPPING_NORM in config else result.examples
    metrics: dict[str, int | float] = {
        "train-loss": result.train_loss,
        "num-examples": examples,
        "train-seconds": result.seconds,
    }
    arrays = ArrayRecord({k: Array(v) for k, v in result.tensors.items()})
    return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(dict(metrics))}), reply_to=msg)  # type: ignore[arg-type]


def build(mods: list | None = None) -> ClientApp:
    """The ClientApp, with app-wide ``mods`` (tests add a wire capture or a fault this way)."""
    client = ClientApp(mods=mods or [])
    client.query("handshake")(handshake)
    client.train(mods=[clip_when_asked])(train)
    return client


app = build()
