"""The Flower ClientApp: a device's side of a round (started by its SuperNode, one process per message).

The SuperNode's node config says where the device's things are: ``model`` (a store name or model
directory), ``data-path`` (its task JSONL) and ``redact`` (true unless ``--no-redact``). The
reply of a train message holds the adapter tensors and three numbers (train-loss, num-examples,
train-seconds); nothing else leaves the device. When the server runs central DP it sends a
clipping norm, and Flower's ``fixedclipping_mod`` clips the update before it is sent.
"""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from ..models.store import ModelStore
from .device import check_plan, load_samples
from .local import base_hash, train_round
from .plan import RoundPlan

CLIPPING_NORM = "clipping_norm"  # the key Flower's DP wrapper puts in the train config


def clip_when_asked(msg: Message, context: Context, call_next) -> Message:
    """Flower's fixed clipping, only for a server that runs DP (the mod fails without the key)."""
    configs = list(msg.content.config_records.values())
    if configs and CLIPPING_NORM in configs[0]:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def device_model(context: Context):
    return ModelStore().resolve(str(context.node_config["model"]))


def handshake(msg: Message, context: Context) -> Message:
    own = base_hash(device_model(context))
    return Message(RecordDict({"handshake": ConfigRecord({"base-hash": own})}), reply_to=msg)


def train(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    plan = RoundPlan.from_config(config)
    base = device_model(context)
    check_plan(plan, base_hash(base))
    redact = bool(context.node_config.get("redact", True))
    samples = load_samples(base, str(context.node_config["data-path"]), plan.seq_len, redact_pii=redact)
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
