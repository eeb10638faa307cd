"""What the server and every device must agree on for a run, sent in each round's config.

The server builds a ``RoundPlan`` from its command line and sends it as a flat dict of
scalars (Flower's ConfigRecord takes no nesting); a device rebuilds it with ``from_config``.
A device refuses a plan whose base-model hash is not its own (see ``device.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..toolchain.lora import TARGETS
from .aggregation import MODES

STRATEGIES = ("fedavg", "fedprox")


@dataclass(frozen=True)
class RoundPlan:
    base_hash: str  # sha256 of the base model's fp32 weights (train.weights_id)
    aggregation: str = "svd"  # aggregation.MODES
    rank: int = 8
    alpha: float = 16.0
    targets: str = ",".join(TARGETS)  # comma separated (a ConfigRecord holds scalars)
    a_seed: int = 0  # the initial (and, in fixed-a mode, the only) A of every layer
    steps: int = 20  # local training steps per round
    lr: float = 1e-3
    batch: int = 4
    seq_len: int = 256
    proximal_mu: float = 0.0  # FedProx: mu/2 * ||w - w_global||^2 added to the local loss

    def __post_init__(self) -> None:
        if self.aggregation not in MODES:
            raise ValueError(f"aggregation must be one of {', '.join(MODES)}, got {self.aggregation!r}")
        if self.proximal_mu < 0:
            raise ValueError(f"proximal_mu must be >= 0, got {self.proximal_mu}")
        bad = [t for t in self.target_names if t not in TARGETS]
        if bad:
            raise ValueError(f"LoRA targets must be among {', '.join(TARGETS)}, got {', '.join(bad)}")

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(t for t in self.targets.split(",") if t)

    @property
    def trains_a(self) -> bool:
        return self.aggregation != "fixed-a"

    def to_config(self) -> dict:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @classmethod
    def from_config(cls, config) -> RoundPlan:
        """From a received config (unknown keys ignored; a missing one takes its default)."""
        known = {f.name: f.type for f in fields(cls)}
        values = {k: config[k.replace("_", "-")] for k in known if k.replace("_", "-") in config}
        if "base_hash" not in values:
            raise ValueError("the round's config has no base-hash: is the server an edgellm federated server?")
        return cls(**values)
