"""Counters of drafted and accepted tokens, per draft source."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("constraint", "lookup", "history", "draft")


@dataclass
class SpeculationStats:
    drafted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    rounds: int = 0  # batched verify forwards

    def add(self, source: str, drafted: int, accepted: int) -> None:
        self.drafted[source] += drafted
        self.accepted[source] += accepted

    def merge(self, other: SpeculationStats) -> None:
        for s in SOURCES:
            self.add(s, other.drafted[s], other.accepted[s])
        self.rounds += other.rounds

    @property
    def total_drafted(self) -> int:
        return sum(self.drafted.values())

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def acceptance(self) -> float:
        return self.total_accepted / self.total_drafted if self.total_drafted else 0.0

    def summary(self) -> str:
        parts = [f"{s} {self.accepted[s]}/{self.drafted[s]}" for s in SOURCES if self.drafted[s]]
        if not parts:
            return "speculation: nothing drafted"
        return (
            f"speculation: {self.total_accepted}/{self.total_drafted} drafted tokens accepted "
            f"({100 * self.acceptance:.0f} %; {', '.join(parts)})"
        )
