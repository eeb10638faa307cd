"""The server's round checkpoints: resume a run after a restart (Flower has no resume of its own).

After every aggregated round the global adapter goes to ``<out>/rounds/round{k}.npz`` and
``<out>/state.json`` records the round and the run's fingerprint (base hash, aggregation, LoRA
shape), both written aside and renamed in. A restarted server starts from the last round and
runs only the rounds left; a checkpoint of a different run is refused, not silently mixed in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolchainError
from .plan import RoundPlan

FINGERPRINT = ("base_hash", "aggregation", "rank", "alpha", "targets", "a_seed")


def fingerprint(plan: RoundPlan) -> dict:
    return {k: getattr(plan, k) for k in FINGERPRINT}


@dataclass
class RoundStore:
    out: Path
    plan: RoundPlan

    @property
    def state_path(self) -> Path:
        return self.out / "state.json"

    def last(self) -> tuple[int, dict[str, np.ndarray] | None]:
        """(the last checkpointed round, its global adapter), or (0, None) for a fresh run."""
        if not self.state_path.is_file():
            return 0, None
        state = json.loads(self.state_path.read_text())
        if state.get("fingerprint") != fingerprint(self.plan):
            raise ToolchainError(
                f"{self.out} holds the checkpoints of a different run ({state.get('fingerprint')}); "
                "pass another --out, or delete that directory to start over"
            )
        k = int(state["round"])
        with np.load(self.out / "rounds" / f"round{k}.npz") as saved:
            return k, {name: saved[name] for name in saved.files}

    def save(self, k: int, adapter: dict[str, np.ndarray], metrics: dict) -> None:
        rounds = self.out / "rounds"
        rounds.mkdir(parents=True, exist_ok=True)
        tmp = rounds / f"round{k}.tmp.npz"
        np.savez(tmp, **adapter)  # type: ignore[arg-type]  # numpy types **kwds as allow_pickle
        os.replace(tmp, rounds / f"round{k}.npz")
        history = self.history() + [{"round": k, **metrics}]
        state = {"round": k, "fingerprint": fingerprint(self.plan), "history": history}
        tmp_state = self.state_path.with_name("state.json.tmp")
        tmp_state.write_text(json.dumps(state, indent=1))
        os.replace(tmp_state, self.state_path)

    def history(self) -> list[dict]:
        if not self.state_path.is_file():
            return []
        return list(json.loads(self.state_path.read_text()).get("history", []))
