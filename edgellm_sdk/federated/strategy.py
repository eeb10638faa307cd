"""Flower strategies for LoRA rounds: refused nodes left out, bad replies dropped, exact aggregation.

Flower's FedAvg trusts every reply: one reply with other tensor names makes it raise (and the
ServerApp exit), and a wrong shape that numpy broadcasts is averaged in silently. ``check_replies``
drops error replies (a node that left mid-round) and malformed ones (``aggregation.check_adapter``),
logging each with its node id, so the round goes on with the others. ``LoraFedAvg`` /
``LoraFedProx`` then aggregate by the run's mode (svd: product average re-factored; fixed-a and
naive: FedAvg). ``CheckedDP`` is Flower's central-DP wrapper (client-side fixed clipping, noise
on the server, RDP accountant) around a plain FedAvg on B, with the same reply checks first.
"""

from __future__ import annotations

from collections.abc import Iterable
from logging import WARNING

from flwr.app import Array, ArrayRecord, ConfigRecord, Message
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedProx

from .aggregation import aggregate, check_adapter


def reply_problem(msg: Message, expected: dict[str, tuple[int, ...]]) -> str | None:
    if msg.has_error():
        return f"error reply: {msg.error.reason}"
    arrays, metrics = list(msg.content.array_records.values()), list(msg.content.metric_records.values())
    if len(arrays) != 1 or len(metrics) != 1 or "num-examples" not in metrics[0]:
        return "not one adapter and one metric record with num-examples"
    return check_adapter({k: a.numpy() for k, a in arrays[0].items()}, expected)


def check_replies(replies: Iterable[Message], expected: dict[str, tuple[int, ...]]) -> list[Message]:
    """The usable replies; every other one is logged with its node id and why it was rejected."""
    good = []
    for msg in replies:
        problem = reply_problem(msg, expected)
        if problem is None:
            good.append(msg)
        else:
            log(WARNING, "node %s: adapter rejected, %s", msg.metadata.src_node_id, problem)
    if not good:
        log(WARNING, "no usable adapter this round: the global adapter stays as it was")
    return good


class NodeFilter:
    """Messages only to the nodes the handshake accepted (``allowed``; None = all), and what the
    last round received (``last_round``: adapters used, replies rejected, bytes per adapter)."""

    allowed: set[int] | None = None
    last_round: dict[str, float] | None = None

    def keep(self, messages: Iterable[Message]) -> list[Message]:
        return [m for m in messages if self.allowed is None or m.metadata.dst_node_id in self.allowed]

    def checked(self, replies: Iterable[Message], expected: dict[str, tuple[int, ...]]) -> list[Message]:
        replies = list(replies)
        good = check_replies(replies, expected)
        sizes = [next(iter(m.content.array_records.values())).count_bytes() for m in good]
        self.last_round = {
            "adapters": len(good),
            "rejected": len(replies) - len(good),
            "bytes-per-device": sum(sizes) / len(sizes) if sizes else 0.0,
        }
        return good


class LoraFedAvg(NodeFilter, FedAvg):
    def __init__(self, *, mode: str, expected: dict[str, tuple[int, ...]], **kwargs):
        super().__init__(**kwargs)
        self.mode, self.expected = mode, expected

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        return self.keep(super().configure_train(server_round, arrays, config, grid))

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        return self.keep(super().configure_evaluate(server_round, arrays, config, grid))

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        good = self.checked(replies, self.expected)
        if not good:
            return None, None
        _, metrics = super().aggregate_train(server_round, good)  # Flower's weighted metrics
        adapters = [{k: a.numpy() for k, a in next(iter(m.content.array_records.values())).items()} for m in good]
        weights = [float(next(iter(m.content.metric_records.values()))["num-examples"]) for m in good]  # type: ignore[arg-type]
        merged = aggregate(adapters, weights, self.mode)
        return ArrayRecord({k: Array(v) for k, v in merged.items()}), metrics


class LoraFedProx(LoraFedAvg, FedProx):
    """FedProx: sends ``proximal-mu`` in the train config; the device adds the proximal term."""


class CheckedDP(NodeFilter, DifferentialPrivacyClientSideFixedClipping):
    """Flower's DP wrapper (its accountant needs a plain FedAvg inside) with our reply checks."""

    expected: dict[str, tuple[int, ...]] | None = None  # set by the ServerApp

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        return self.keep(super().configure_train(server_round, arrays, config, grid))

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        good = self.checked(replies, self.expected or {})
        return super().aggregate_train(server_round, good) if good else (None, None)
