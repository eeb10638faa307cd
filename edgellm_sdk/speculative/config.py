"""Speculative decoding settings (``speculative=`` of ``Engine.load`` / ``generate``)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Speculative:
    """Which draft sources run and how far they draft. ``"auto"`` is ``Speculative()``.

    The draft length adapts to the acceptance seen in the request and a fixed cost model of
    batched forwards (policy.py: the same request is always batched the same way); after a
    round in which nothing was accepted, ``cooldown`` plain steps follow (doubling on repeated
    misses), so text that is not copied is not slowed down.
    """

    constraint: bool = True  # fast-forward the tokens a schema / regex / grammar forces
    lookup: bool = True  # prompt lookup (n-grams of the prompt and the output so far)
    # n-grams of this Engine's recent answers (in memory only). Off by default: a repeated request
    # would then be drafted, and so batched, unlike the first time, and may differ at a near tie
    history: bool = False
    draft: bool = True  # the draft model, when the Engine was loaded with one
    max_draft: int = 8  # most tokens drafted per round, in [1, 32]
    ngram_max: int = 4  # longest n-gram matched, in [1, 8]
    ngram_min: int = 1  # shortest n-gram matched, in [1, ngram_max]
    cooldown: int = 1  # plain steps after a round with nothing accepted (doubling on repeats), in [0, 256]
    adaptive: bool = True  # False: always draft max_draft tokens when a source has them, no cooldown

    def __post_init__(self) -> None:
        for name in ("constraint", "lookup", "history", "draft", "adaptive"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(  # noqa: TRY004 - every bad setting is a ValueError with the allowed values
                    f"Speculative.{name} must be True or False, got {getattr(self, name)!r}"
                )
        _check_int("max_draft", self.max_draft, 1, 32)
        _check_int("ngram_max", self.ngram_max, 1, 8)
        _check_int("ngram_min", self.ngram_min, 1, self.ngram_max)
        _check_int("cooldown", self.cooldown, 0, 256)

    @property
    def enabled(self) -> bool:
        return self.constraint or self.lookup or self.history or self.draft


def _check_int(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"Speculative.{name} must be an int in [{low}, {high}], got {value!r}")


OFF = Speculative(constraint=False, lookup=False, history=False, draft=False)
AUTO = Speculative()


def resolve_speculative(value) -> Speculative:
    """``"auto"`` | ``"off"`` | True/False/None | a Speculative | a dict of its fields."""
    if value is None or value is True or value == "auto":
        return AUTO
    if value is False or value == "off":
        return OFF
    if isinstance(value, Speculative):
        return value
    if isinstance(value, dict):
        known = {f.name for f in fields(Speculative)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown speculative setting(s) {sorted(unknown)}; allowed: {sorted(known)}")
        return Speculative(**value)
    raise ValueError(f"speculative must be 'auto', 'off', a Speculative or a dict of its fields, got {value!r}")
