"""Does the request support the command parsed from it? Checked in code, before it executes.

A parsed command is

- **refused** when the request states a value no argument can take (the refusal names the
  limit), states a value the command does not use, names an enum value it does not carry,
  or holds a word that belongs to the out-of-domain pool and to no command ("doors", "music");
- **sure** when the request names it (its name, a keyword, an alias of one of its values, or
  a value in one of its units), or is close to its labelled examples and clearly closer to
  them than to the out-of-domain pool, with no word the command set does not know;
- **unsure** when it is only somewhat closer: ``CommandParser.parse(confirm=...)`` asks, and
  without a confirmation it is refused with the command as a suggestion.

Thresholds are cosines of all-MiniLM-L6-v2 (or character-bigram Dice for Chinese and without
an embedder), chosen on benchmarks/data/commands_dev.jsonl and commands_adversarial.jsonl, and
scored once on the held-out commands_heldout2.jsonl (benchmarks/bench_commands.py).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from .out_of_domain import GENERIC_OUT_OF_DOMAIN, META_WORDS
from .quantities import NUMBER_WORD, Quantity, unit_words
from .retrieval import ExampleIndex, bigrams, has_cjk
from .spec import NOT_UNDERSTOOD, Command, CommandSet, names_in, stem
from .units import ALL_UNIT_WORDS

# (similarity to the command's examples, its margin over the out-of-domain pool)
SURE = {"cosine": (0.6, 0.1), "bigram": (0.45, 0.1)}
UNSURE = {"cosine": (0.45, 0.0), "bigram": (0.3, 0.0)}
NAMED_MARGIN = 0.35  # a named command with new words: this much closer to its examples than to out-of-domain
MIN_EXAMPLES = 2  # per command, for its similarity to count as "sure"

STOPWORDS = frozenset(  # function words, politeness, generic verbs: they say nothing about the command
    """a an the to of in on at by for from with and or but please can could would will you your me
    my i we us our it its this that these those is are be been am do does did now then just
    right up down some any all there here what how it's i'd i'm let's robot hey ok okay kindly
    want need like should must may might so very bit little again more less too also doing going
    get got put make set change take give keep start show tell let use try help thank thanks
    hello sorry cheers""".split()  # noqa: SIM905
)
# A negated, hypothetical or partly read request is never "sure": "you don't need to open the
# gripper", "if I asked you to set the speed to 1 m/s...", "one and a quarter metres" (read as 1).
NEGATION = re.compile(
    r"\b(?:don'?t|do not|no need|needn'?t|never|not|can'?t|cannot|won'?t|shouldn'?t)\b|不要|不用|别|没必要|不需要"
)
NEGATED_MOTION = re.compile(r"\b(?:don'?t|do not|never)\s+(?:move|go|drive)\b|(?:不要|别)(?:动|走|移动)")  # = stop
HYPOTHETICAL = re.compile(r"\b(?:if|suppose|imagine|hypothetically)\b|如果|假如|要是")
UNREAD_AMOUNT = re.compile(r"\b(?:quarters?|thirds?|dozens?|couple|few|several|turns|revolutions|laps)\b|[半圈]")
QUOTED = re.compile(r"[\"“「『][^\"”」』]+[\"”」』]|(?<![a-z])'[^']+'(?![a-z])")
ZH_NUMERALS = "零一二两三四五六七八九十百点"
CJK_FILLER_CHARS = "的了吗呢吧啊呀请帮我你把给一下个们是在这那就再"
CJK_FILLER = re.compile(f"[{CJK_FILLER_CHARS}]")
# pronouns, conjunctions, "set to"/"change to", urgency and politeness: never new to a command set,
# but kept in the bigrams (设置闹钟 must still look like an alarm clock)
CJK_GENERIC_CHARS = "它他她有没和以为设成到麻烦立刻紧急"


class CommandSetWarning(UserWarning):
    """The command set's example pool is too small to calibrate the support check."""


@dataclass(frozen=True)
class Support:
    level: str  # "sure" | "unsure" | "refuse"
    reason: str
    similarity: float | None = None  # to the command's closest example


def content_words(text: str) -> list[str]:
    """The words that say what is asked: not function words, generic verbs or numbers."""
    words = re.findall(r"[a-z]+", text.lower())
    return [stem(w) for w in words if len(w) > 2 and w not in STOPWORDS and not NUMBER_WORD.fullmatch(w)]


def cjk_grams(text: str) -> set[str]:
    return {g for g in bigrams(CJK_FILLER.sub("", text)) if all("\u3000" <= ch <= "\u9fff" for ch in g)}


class SupportCheck:
    """The check for one CommandSet: ``unreachable`` before the model, ``check`` after it."""

    def __init__(
        self,
        commands: CommandSet,
        embedder=None,
        out_of_domain: Sequence[str] = GENERIC_OUT_OF_DOMAIN,
        examples: ExampleIndex | None = None,  # commands.examples already indexed (CommandParser's)
    ):
        self.commands = commands
        self.by_name = {c.name: c for c in commands.commands}
        in_domain = [(t, e["command"]) for t, e in commands.examples if e["command"] != NOT_UNDERSTOOD]
        refused = [t for t, e in commands.examples if e["command"] == NOT_UNDERSTOOD]
        pool = [*out_of_domain, *commands.out_of_domain, *refused]
        indexed = examples if examples is not None else ExampleIndex(commands.examples, embedder)
        self.in_domain = indexed.subset(lambda label: label["command"] != NOT_UNDERSTOOD)
        self.out_of_domain = ExampleIndex([(t, NOT_UNDERSTOOD) for t in pool], embedder)
        self.labels = [c for _, c in in_domain]
        known, known_cjk = set(content_words(" ".join(ALL_UNIT_WORDS))), set()
        for c in commands.commands:
            words = [c.name, c.description, *c.keywords]
            for a in c.args:
                words += [a.name, *a.choices, *unit_words(a.unit), *(w for _, ws in a.aliases for w in ws)]
            for w in words:
                known.update(content_words(w.replace("_", " ")))
                known_cjk.update(cjk_grams(w))
        for t, _ in in_domain:
            known.update(content_words(t))
            known_cjk.update(cjk_grams(t))
        self.known = known
        self.foreign = ({w for t in pool for w in content_words(t)} | {w for w in META_WORDS if w.isascii()}) - known
        self.foreign_cjk = {g for t in pool for g in cjk_grams(t)} - known_cjk
        self.meta_cjk = [w for w in META_WORDS if not w.isascii()]
        self.known_cjk_chars = set("".join(known_cjk)) | set(CJK_FILLER_CHARS + CJK_GENERIC_CHARS + ZH_NUMERALS)
        self.calibrated = {c.name for c in commands.commands if self.labels.count(c.name) >= MIN_EXAMPLES}
        self._warn_if_small(refused)

    def _warn_if_small(self, refused) -> None:
        few = [c.name for c in self.commands.commands if c.name not in self.calibrated]
        if few:
            warnings.warn(
                f"commands {few} have fewer than {MIN_EXAMPLES} labelled examples: add requests for each so "
                "their similarity can be trusted; until then they execute only when the request names them",
                CommandSetWarning,
                stacklevel=3,
            )
        if not refused and not self.commands.out_of_domain:
            warnings.warn(
                "the command set has no out-of-domain examples: add requests this robot must refuse "
                "(labelled not_understood, or CommandSet(out_of_domain=...)); only the generic pool is used",
                CommandSetWarning,
                stacklevel=3,
            )

    # --- before the model ---------------------------------------------------------------------
    def unreachable(self, stated: Sequence[Quantity]) -> str | None:
        """Why a value the request states (with a unit) fits an argument but no argument can take it."""
        for q in stated:
            if q.unit_word is None:
                continue
            fitting = [a for c in self.commands.commands for a in c.args if a.numeric and q.fits(a.unit)]
            problems = [a.check(q.in_unit(a.unit)) for a in fitting]
            if fitting and all(problems):
                return "not allowed: " + "; ".join(dict.fromkeys(p for p in problems if p))
        return None

    # --- after the model ----------------------------------------------------------------------
    def check(self, text: str, command: Command, stated: Sequence[Quantity], query_vector=None) -> Support:
        spec = self.by_name[command.name]
        for arg in spec.args:
            value = command.args[arg.name]
            if arg.type == "enum" and arg.stated and value not in arg.mentioned(text):
                return Support("refuse", f"the request does not name {arg.name}={value}")
        conflicting = [a.mentioned(text) for a in spec.args if a.type == "enum" and len(a.mentioned(text)) > 1]
        for q in stated:
            if (q.unit_word is not None or q.in_digits) and not self._consumes(command, q):
                unit = f" {q.unit_word}" if q.unit_word else ""
                return Support("refuse", f"the request states {q.value:g}{unit}, which {command.name} does not take")
        foreign = self._foreign_words(text)
        if foreign:
            return Support("refuse", f"{', '.join(repr(w) for w in foreign)}: not something this robot has or does")
        if QUOTED.search(text):
            return Support("refuse", "the request quotes a command rather than giving it")
        if caveat := self._caveat(text.lower(), command):
            return Support("unsure", caveat)
        unknown = self._unknown_words(text)
        best, margin, kind = self._closeness(text, command, query_vector)
        closeness = f"{kind} {best:.2f} to its examples, margin {margin:+.2f} over out-of-domain"
        new = f"{', '.join(repr(w) for w in unknown)} new to this command set" if unknown else ""
        if conflicting:
            return Support("unsure", f"the request names both {' and '.join(conflicting[0])}; {closeness}", best)
        named = self._named(text, command, stated)
        if named == "by name":  # one new word is fine, more only when clearly closer to the command
            few_new = len(unknown) == 1 and (margin >= 0 or kind == "bigram")
            if not unknown or few_new or (kind == "cosine" and margin >= NAMED_MARGIN):
                return Support("sure", f"named; {closeness}", best)
        if named == "by value" and (not unknown or (kind == "cosine" and margin >= NAMED_MARGIN)):
            return Support("sure", f"named by a value; {closeness}", best)
        if named:
            return Support("unsure", f"named, but {new}; {closeness}", best)
        (sure_at, sure_margin), (unsure_at, unsure_margin) = SURE[kind], UNSURE[kind]
        named_other = any(c.named_in(text) for c in self.commands.commands if c.name != command.name)
        trusted = command.name in self.calibrated and not named_other and not unknown
        if trusted and best >= sure_at and margin >= sure_margin:
            return Support("sure", closeness, best)
        if best >= unsure_at and margin >= unsure_margin:
            return Support("unsure", f"{closeness}{'; ' + new if new else ''}", best)
        return Support("refuse", f"{command.name} is not named; {closeness}", best)

    @staticmethod
    def _caveat(lowered: str, command: Command) -> str | None:
        """Why a request that matches ``command`` may still not ask for it, or None."""
        if NEGATION.search(lowered) and not (command.name == "stop" and NEGATED_MOTION.search(lowered)):
            return "the request is negated"
        if HYPOTHETICAL.search(lowered):
            return "the request is hypothetical or conditional"
        if m := UNREAD_AMOUNT.search(lowered):
            return f"'{m.group()}' is an amount this parser does not read"
        return None

    def _closeness(self, text: str, command: Command, query_vector) -> tuple[float, float, str]:
        """Similarity to the command's closest example, its margin over the out-of-domain pool,
        and the measure used ("cosine" or "bigram")."""
        scores, semantic = self.in_domain.similarities(text, query_vector)
        own = [float(s) for s, label in zip(scores, self.labels) if label == command.name]
        best = max(own, default=0.0)
        outside, _ = self.out_of_domain.similarities(text, query_vector)
        margin = best - float(outside.max()) if len(outside) else best
        return best, margin, "cosine" if semantic else "bigram"

    def _consumes(self, command: Command, q: Quantity) -> bool:
        spec = self.by_name[command.name]
        return any(a.numeric and q.in_unit(a.unit) == command.args[a.name] for a in spec.args)

    def _named(self, text: str, command: Command, stated: Sequence[Quantity]) -> str | None:
        """ "by name" (its name or a keyword), "by value" (an alias of one of its values, or a
        value in one of its units), or None."""
        spec = self.by_name[command.name]
        if spec.named_in(text):
            return "by name"
        for arg in spec.args:
            value = command.args[arg.name]
            if arg.type == "enum" and names_in(text, dict(arg.aliases).get(value, ())):
                return "by value"
            if arg.numeric and arg.unit and any(q.unit_word and q.in_unit(arg.unit) == value for q in stated):
                return "by value"
        return None

    def _foreign_words(self, text: str) -> list[str]:
        if has_cjk(text):
            return sorted(cjk_grams(text) & self.foreign_cjk) + [w for w in self.meta_cjk if w in text]
        return [w for w in dict.fromkeys(content_words(text)) if w in self.foreign]

    def _unknown_words(self, text: str) -> list[str]:
        """Words (Chinese: characters) of the request that no command or in-domain example uses."""
        if has_cjk(text):
            return [ch for ch in dict.fromkeys(text) if "\u4e00" <= ch <= "\u9fff" and ch not in self.known_cjk_chars]
        return [w for w in dict.fromkeys(content_words(text)) if w not in self.known]
