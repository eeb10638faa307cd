"""`edgellm eval`: perplexity, task accuracy, and agreement with a reference model.

- Perplexity: the text is cut into windows of ``window`` tokens that overlap by one token
  (every token but the first is predicted exactly once) and scored one token at a time, as
  decoding runs the model: quantized kernels round activations per call, so a batched
  prefill would measure a slightly different model than the one that generates.
- Reference: the reference model runs in lockstep over the same windows; per position we
  record top-1 agreement and KL(reference || model) in nats. Both models must share the
  tokenizer (checked: the text must encode to the same ids).
- Task: each JSONL example (``toolchain.data``) is answered greedily through ``Engine`` with
  the chat template and graded by its ``match`` (exact, JSON, or a free-form grader such as
  "contains" / "number" / "yesno" / "refusal"); failures keep their line numbers, and lines
  that name a ``category`` get an accuracy per category.
- Answer perplexity: the same examples teacher-forced: the prompt prefilled as ``Engine`` does,
  then the target's tokens and the end-of-turn token fed one at a time, NLL of each. It is the
  perplexity of what a task model is for (its answers, in chat format) and, unlike accuracy,
  moves with every small change of the model, so it shows what quantizing cost.

Needs only onnxruntime and numpy (no ``tools`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ContextOverflow, ToolchainError
from .data import answers_match, read_examples, read_text

Progress = Callable[[str, int, int], None]  # (stage, done, total)
MAX_FAILURES = 5
# The model and the reference take turns every LOCKSTEP_BLOCK tokens, not every token: onnxruntime's
# worker threads spin for a while after a run, and two sessions alternating per token fight over
# the cores (2x slower on 2 cores). A block keeps 32 reference distributions (~13 MB for 49k tokens).
LOCKSTEP_BLOCK = 32


@dataclass
class EvalReport:
    model: str
    variant: str
    ppl: float | None = None  # exp(mean NLL) over the scored tokens
    nll: float | None = None  # mean NLL, nats per token
    ppl_tokens: int = 0  # tokens scored
    ppl_text_tokens: int = 0  # tokens in the text (more than scored when max_ppl_tokens cut it)
    task_accuracy: float | None = None
    task_n: int = 0
    task_correct: int = 0
    task_categories: dict[str, dict] = field(default_factory=dict)  # category -> {"accuracy", "correct", "n"}
    answer_ppl: float | None = None  # exp(mean NLL) of the targets' tokens, teacher-forced after the prompt
    answer_nll: float | None = None
    answer_tokens: int = 0
    failures: list[dict] = field(default_factory=list)  # the first few: line, prompt, expected, got
    reference: str | None = None  # "model:variant"
    reference_ppl: float | None = None
    top1_agreement: float | None = None  # fraction of positions whose argmax equals the reference's
    kl_mean: float | None = None  # mean KL(reference || model), nats per token
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.model}:{self.variant}"]
        if self.ppl is not None:
            cut = f" of {self.ppl_text_tokens}" if self.ppl_text_tokens > self.ppl_tokens + 1 else ""
            lines.append(
                f"  perplexity      {self.ppl:.3f} (NLL {self.nll:.4f} nats/token, {self.ppl_tokens}{cut} tokens)"
            )
        if self.reference is not None and self.top1_agreement is not None:
            lines.append(
                f"  vs {self.reference}: top-1 agreement {100 * self.top1_agreement:.1f} %, "
                f"KL {self.kl_mean:.3g} nats/token, reference perplexity {self.reference_ppl:.3f}"
            )
        if self.task_accuracy is not None:
            lines.append(f"  task accuracy   {100 * self.task_accuracy:.1f} % ({self.task_correct}/{self.task_n})")
            for name, c in self.task_categories.items():
                lines.append(f"    {name:<14}{100 * c['accuracy']:5.1f} % ({c['correct']}/{c['n']})")
            for f in self.failures:
                lines.append(f"    line {f['line']}: expected {f['expected']!r}, got {f['got']!r}")
        if self.answer_ppl is not None:
            lines.append(
                f"  answer ppl      {self.answer_ppl:.3f} (NLL {self.answer_nll:.4f} nats/token, "
                f"{self.answer_tokens} tokens of the targets)"
            )
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)


def split_model(spec: str) -> tuple[str, str | None]:
    """ "MODEL:VARIANT" -> (MODEL, VARIANT); "MODEL" -> (MODEL, None); ":VARIANT" -> ("", VARIANT)."""
    model, sep, variant = spec.rpartition(":")
    if not sep or not variant or "/" in variant or "\\" in variant:
        return spec, None
    return model, variant


def evaluate(
    model: str | Path,
    variant: str | None = None,
    *,
    ppl_text: str | Path | None = None,
    task: str | Path | None = None,
    reference: str | Path | None = None,
    reference_variant: str | None = None,
    max_ppl_tokens: int = 1024,
    window: int = 512,
    max_answer_tokens: int | None = None,
    max_context: int | None = None,
    threads: int | None = None,
    store=None,
    progress: Progress | None = None,
) -> EvalReport:
    """Evaluate ``model`` (an installed name or a model directory) at ``variant``.

    ``ppl_text``: a UTF-8 text file scored for perplexity (at most ``max_ppl_tokens`` predicted
    tokens). ``task``: a JSONL task file. ``reference`` / ``reference_variant``: a model (default:
    ``model`` itself) to compare with on ``ppl_text``. ``max_answer_tokens``: the answer budget
    per task example (default: twice the target's tokens + 16).
    """
    from ..engine import Engine

    if ppl_text is None and task is None:
        raise ToolchainError("nothing to evaluate: give a text for perplexity (--ppl) and/or a task file (--task)")
    if (reference is not None or reference_variant is not None) and ppl_text is None:
        raise ToolchainError("comparing with a reference runs on the perplexity text: give --ppl text.txt too")
    if max_ppl_tokens < 1 or window < 2:
        raise ValueError(f"max_ppl_tokens must be >= 1 and window >= 2, got {max_ppl_tokens} and {window}")
    text = read_text(ppl_text, what="perplexity text") if ppl_text is not None else None
    examples = read_examples(task, need_target=True) if task is not None else None  # bad lines fail before loading
    t0 = time.perf_counter()
    manifest = _manifest(model, store)
    engine = Engine.load(manifest.root, variant=variant, max_context=max_context, threads=threads, prefix_cache=False)
    report = EvalReport(manifest.name, engine.variant or "?")
    try:
        if text is not None:
            ref_engine = None
            if reference is not None or reference_variant is not None:
                ref_manifest = _manifest(reference, store) if reference else manifest
                ref_engine = Engine.load(
                    ref_manifest.root,
                    variant=reference_variant,
                    max_context=max_context,
                    threads=threads,
                    prefix_cache=False,
                )
                report.reference = f"{ref_manifest.name}:{ref_engine.variant}"
            try:
                _score_text(engine, ref_engine, text, report, max_ppl_tokens, window, progress)
            finally:
                if ref_engine is not None:
                    ref_engine.close()
            engine.reset()
        if examples is not None:
            _run_task(engine, examples, report, max_answer_tokens, progress)
    finally:
        engine.close()
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _manifest(model, store):
    from ..models.store import ModelStore

    return (store or ModelStore()).resolve(model)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def windows(n_ids: int, window: int, max_predictions: int) -> list[tuple[int, int]]:
    """[start, end) spans of at most ``window`` ids overlapping by one, covering the first
    ``max_predictions`` predictions (every id after the first is a target exactly once)."""
    end_all = min(n_ids, max_predictions + 1)
    return [(s, min(s + window, end_all)) for s in range(0, end_all - 1, window - 1)]


def _score_text(
    engine, ref_engine, text: str, report: EvalReport, max_tokens: int, window: int, progress: Progress | None
) -> None:
    ids = engine.tokenizer.encode(text)
    if len(ids) < 2:
        raise ToolchainError("the perplexity text encodes to fewer than 2 tokens; give a longer text")
    if ref_engine is not None:
        ref_ids = ref_engine.tokenizer.encode(text)
        if ref_ids != ids:
            raise ToolchainError(
                f"the reference {report.reference} tokenizes the text differently from "
                f"{report.model}; KL and top-1 agreement need models that share a tokenizer"
            )
    window = min(window, engine.max_context, ref_engine.max_context if ref_engine else window)
    spans = windows(len(ids), window, max_tokens)
    total = sum(e - s - 1 for s, e in spans)
    nll, ref_nll, kl, agree, done = 0.0, 0.0, 0.0, 0, 0
    for start, end in spans:
        for e in (engine, ref_engine):
            if e is not None:
                e.reset()
        for block in range(start, end - 1, LOCKSTEP_BLOCK):
            positions = range(block, min(block + LOCKSTEP_BLOCK, end - 1))
            ref = [log_softmax(ref_engine.backend.forward([ids[i]])[0]) for i in positions] if ref_engine else None
            for k, i in enumerate(positions):
                logp = log_softmax(engine.backend.forward([ids[i]])[0])
                target = ids[i + 1]
                nll -= logp[target]
                if ref is not None:
                    ref_nll -= ref[k][target]
                    kl += float(np.dot(np.exp(ref[k]), ref[k] - logp))
                    agree += int(ref[k].argmax() == logp.argmax())
                done += 1
                if progress is not None and (done % 32 == 0 or done == total):
                    progress("perplexity", done, total)
    report.ppl_tokens, report.ppl_text_tokens = done, len(ids)
    report.nll = float(nll / done)
    report.ppl = float(np.exp(report.nll))
    if ref_engine is not None:
        report.reference_ppl = float(np.exp(ref_nll / done))
        report.kl_mean = max(0.0, kl / done)  # float rounding can leave -1e-17 for identical models
        report.top1_agreement = agree / done


def answer_ids(engine, messages: list, target: str, prompt: list[int]) -> list[int]:
    """The tokens a perfect answer to ``prompt`` generates: the target and the end of turn.

    Taken from the whole conversation rendered by the chat template, so the target is tokenized
    as it follows the prompt; up to and including the first end-of-sequence token.
    """
    whole = engine.tokenizer.encode(
        engine.render([*messages, {"role": "assistant", "content": target}], add_generation_prompt=False)
    )
    if whole[: len(prompt)] != prompt:  # a template that renders a past answer unlike a new one
        return engine.tokenizer.encode(target, add_bos=False)
    rest = whole[len(prompt) :]
    end = next((i for i, t in enumerate(rest) if t in engine.tokenizer.eos_ids), len(rest) - 1)
    return rest[: end + 1]


def answer_nll(engine, prompt: list[int], answer: list[int]) -> float:
    """Summed NLL (nats) of ``answer`` after ``prompt``: prefill in the Engine's chunks, then one
    token per call as decoding runs. Leaves the engine reset."""
    from ..prefill import feed

    engine.reset()
    try:
        logits = feed(engine.backend, prompt, engine.tokenizer.eos_ids)
        nll = 0.0
        for i, token in enumerate(answer):
            nll -= float(log_softmax(logits[-1])[token])
            if i + 1 < len(answer):
                logits = engine.backend.forward([token])
        return nll
    finally:
        engine.reset()


def _run_task(engine, examples, report: EvalReport, max_answer_tokens: int | None, progress: Progress | None) -> None:
    correct, nll, scored = 0, 0.0, 0
    categories: dict[str, list[int]] = {}  # category -> [correct, n]
    for n, ex in enumerate(examples, 1):
        prompt = engine.prompt_ids(list(ex.messages))
        answer = answer_ids(engine, list(ex.messages), ex.target, prompt)
        if len(prompt) + len(answer) > engine.max_context:
            raise ToolchainError(
                f"task line {ex.line}: the prompt and target are {len(prompt) + len(answer)} "
                f"tokens, more than the {engine.max_context}-token context; shorten them or "
                "raise --max-context"
            )
        if ex.match != "refusal":  # its target "refuse" is a label, not an answer
            nll += answer_nll(engine, prompt, answer)
            scored += len(answer)
        budget = max_answer_tokens or 2 * len(engine.tokenizer.encode(ex.target)) + 16
        budget = min(budget, engine.max_context - len(prompt))
        if budget < 1:
            raise ToolchainError(
                f"task line {ex.line}: the prompt is {len(prompt)} tokens, no room left in the "
                f"{engine.max_context}-token context; shorten it or raise --max-context"
            )
        try:
            answer = engine.complete(prompt, max_tokens=budget).text
        except ContextOverflow as e:  # pragma: no cover - the budget above prevents it
            raise ToolchainError(f"task line {ex.line}: {e}") from e
        ok = answers_match(answer, ex)
        if ex.category is not None:
            tally = categories.setdefault(ex.category, [0, 0])
            tally[0], tally[1] = tally[0] + ok, tally[1] + 1
        if ok:
            correct += 1
        elif len(report.failures) < MAX_FAILURES:
            user = next((m["content"] for m in reversed(ex.messages) if m["role"] == "user"), "")
            report.failures.append(
                {
                    "line": ex.line,
                    "prompt": user[:200],
                    "expected": ex.target,
                    "got": answer.strip()[:500],
                    "match": ex.match,
                }
            )
        if progress is not None:
            progress("task", n, len(examples))
    report.task_n, report.task_correct = len(examples), correct
    report.task_accuracy = correct / len(examples)
    report.task_categories = {k: {"accuracy": c / m, "correct": c, "n": m} for k, (c, m) in sorted(categories.items())}
    if scored:
        report.answer_tokens, report.answer_nll = scored, nll / scored
        report.answer_ppl = float(np.exp(report.answer_nll))
