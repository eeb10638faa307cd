"""The training loop shared by finetune and distill, and what both need around it.

A ``Sample`` is a token sequence with a label per position (the next token, or -100 where
no loss is taken: the prompt, the padding). Step ``s`` takes samples ``s*batch ...`` of a
seeded shuffle (epoch after epoch), right-pads them to the longest, and runs AdamW with
linear warmup and cosine decay (to 10 % of ``lr``) and gradient-norm clipping.

Every ``checkpoint_every`` steps, at the end, and when ``max_time_s`` runs out, the
trainable tensors, the optimizer state, the step and the torch RNG go to
``work_dir/checkpoint.pt`` (written aside and renamed in). A new run in the same work dir
resumes from there; since the batch order is a function of (seed, step) and the dropout
RNG is restored, a resumed run ends with exactly the weights of an uninterrupted one. A run
with more ``steps`` than a checkpoint's continues it (train longer): the schedule is then
the longer run's, so the learning rate rises again from where the shorter one had decayed.

Before the first step the memory a step needs (weights, gradients, Adam moments,
activations of batch x sequence, logits) is estimated and the run refused when that is
above the budget (``EDGELLM_MAX_RSS_MB`` / the profile, else 90 % of available memory).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import memory
from ..errors import ToolchainError
from .checkpoint import add_variant, save_model
from .gguf_llama import LlamaWeights
from .quantspec import EXPORT_SPECS
from .torch_llama import F, TorchLlama, torch

IGNORE = -100
CHECKPOINT = "checkpoint.pt"
TORCH_RUNTIME_MB = 350.0  # interpreter + torch + numpy + onnx imported, nothing allocated
QUANTIZE = EXPORT_SPECS


@dataclass
class Sample:
    ids: np.ndarray  # int64 [n]: the input tokens
    labels: np.ndarray  # int64 [n]: the token to predict at each position, IGNORE = no loss
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # one row per labeled position (distill: top-k)


def make_sample(prompt_ids: Sequence[int], answer_ids: Sequence[int], seq_len: int, *, line: int = 0) -> Sample:
    """Prompt + answer as one sequence of at most ``seq_len`` inputs, loss on the answer only
    (an answer longer than the room left is cut at its end)."""
    if len(prompt_ids) >= seq_len:
        raise ToolchainError(
            f"line {line}: the prompt is {len(prompt_ids)} tokens, which leaves no room for the "
            f"answer in --seq-len {seq_len}; raise --seq-len or shorten the prompt"
        )
    if not answer_ids:
        raise ToolchainError(f"line {line}: the answer is empty")
    tokens = np.asarray(list(prompt_ids) + list(answer_ids), np.int64)[: seq_len + 1]
    labels = tokens[1:].copy()
    labels[: len(prompt_ids) - 1] = IGNORE  # position t predicts token t+1: the first answer token is at len-1
    return Sample(tokens[:-1], labels)


def chat_sample(tokenizer, template, messages, answer: str, seq_len: int, *, line: int = 0) -> Sample:
    """A chat example rendered by the model's template; the answer ends with the template's
    end-of-turn token (the model's eos), which is what stops generation at run time."""
    from ..types import Message

    msgs = [Message(m["role"], m["content"]) for m in messages]
    prompt = template.render(msgs, add_generation_prompt=True)
    full = template.render([*msgs, Message("assistant", answer)], add_generation_prompt=False)
    tail = full[len(prompt) :] if full.startswith(prompt) else answer
    ids = tokenizer.encode(tail, add_bos=False)
    ends = [i for i, t in enumerate(ids) if t in tokenizer.eos_ids]
    if ends:
        ids = ids[: ends[0] + 1]  # drop what the template adds after the end of turn
    elif tokenizer.eos_ids:
        ids.append(min(tokenizer.eos_ids))
    return make_sample(tokenizer.encode(prompt), ids, seq_len, line=line)


def target_samples(model_root: Path, examples, seq_len: int) -> list[Sample]:
    """One chat sample per example with a ``target``: the model's template, loss on the target."""
    from ..chat import CHATML, ChatTemplate
    from ..tokenizer import Tokenizer

    tokenizer = Tokenizer.from_dir(model_root)
    template = ChatTemplate(tokenizer.chat_template or CHATML, tokenizer.special_tokens)
    return [chat_sample(tokenizer, template, ex.messages, ex.target, seq_len, line=ex.line) for ex in examples]


def collate(samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sample: ids [B, S], labels [B, S], extras concatenated row-wise
    (their rows follow the labeled positions in row-major order, as ``logits[labels != IGNORE]``)."""
    width = max(len(s.ids) for s in samples)
    ids = np.zeros((len(samples), width), np.int64)
    labels = np.full((len(samples), width), IGNORE, np.int64)
    for row, s in enumerate(samples):
        ids[row, : len(s.ids)], labels[row, : len(s.labels)] = s.ids, s.labels
    batch = {"ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels)}
    for key in samples[0].extra:
        batch[key] = torch.from_numpy(np.concatenate([s.extra[key] for s in samples]))
    return batch


def lm_loss(model: TorchLlama, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the labeled positions."""
    keep = batch["labels"] != IGNORE
    return F.cross_entropy(model(batch["ids"], keep), batch["labels"][keep])


@torch.no_grad()
def mean_loss(model: TorchLlama, samples: Sequence[Sample], loss_fn=lm_loss, batch: int = 8, limit: int = 64) -> float:
    """Token-weighted mean loss over ``samples`` (at most ``limit`` of them, evenly picked; no dropout)."""
    samples = list(samples)[:: max(1, -(-len(samples) // limit))]
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    for i in range(0, len(samples), batch):
        b = collate(samples[i : i + batch])
        n = int((b["labels"] != IGNORE).sum())
        total, count = total + float(loss_fn(model, b)) * n, count + n
    model.train(was_training)
    return total / max(count, 1)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 100
    batch: int = 4
    seq_len: int = 256
    lr: float = 2e-4
    warmup: int | None = None  # steps of linear warmup (default: 5 % of steps)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50
    max_time_s: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch", 1), ("seq_len", 2), ("checkpoint_every", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ValueError(f"max_time_s must be > 0 seconds or None, got {self.max_time_s!r}")

    def lr_at(self, step: int) -> float:
        warmup = self.warmup if self.warmup is not None else max(1, self.steps // 20)
        if step < warmup:
            return self.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, self.steps - warmup)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    def fingerprint(self) -> dict:
        """What a resumed run must share with the checkpoint (not the time limit or cadence)."""
        d = asdict(self)
        d.pop("max_time_s"), d.pop("checkpoint_every")
        return d


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    loss: float
    lr: float
    tokens_per_s: float
    elapsed_s: float
    eta_s: float

    def line(self) -> str:
        return (
            f"step {self.step}/{self.steps}  loss {self.loss:.4f}  lr {self.lr:.2e}  "
            f"{self.tokens_per_s:,.0f} tok/s  ETA {_clock(self.eta_s)}"
        )


@dataclass
class TrainResult:
    steps: int  # steps done in total (including those before a resume)
    resumed_from: int  # 0 = fresh start
    losses: list[float]  # one per step, from step 1
    tokens_per_s: float  # this process's training throughput (input tokens, no padding)
    elapsed_s: float
    stopped: str  # "done" | "time"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n: int, batch: int, seed: int, step: int) -> list[int]:
    """Sample indices of ``step``: a pure function of (n, batch, seed, step), so resumes agree."""
    return [int(_epoch_order(n, seed, pos // n)[pos % n]) for pos in range(step * batch, (step + 1) * batch)]


# --- memory ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryNeed:
    weights_mb: float
    optimizer_mb: float  # gradients + two Adam moments of the trainable parameters
    activations_mb: float
    runtime_mb: float

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.optimizer_mb + self.activations_mb + self.runtime_mb

    def describe(self) -> str:
        return (
            f"{self.total_mb:.0f} MB (weights {self.weights_mb:.0f}, gradients + Adam {self.optimizer_mb:.0f}, "
            f"activations {self.activations_mb:.0f}, runtime {self.runtime_mb:.0f})"
        )


def estimate_memory(model: TorchLlama, batch: int, seq: int, labeled: int | None = None) -> MemoryNeed:
    """Peak memory of a training step on ``batch`` sequences of ``seq`` tokens, ``labeled`` of
    them with a loss each. Per layer, backward keeps ~12 hidden-sized and 5 FFN-sized vectors
    per token plus two copies of the attention weights; the vocabulary projection keeps logits,
    their softmax and gradient (three vocab-sized vectors per labeled token). Weights count
    twice: the training copy plus what reading the fp32 graph leaves in the allocator, and
    activations get 20 % for the allocator's fragmentation (peaks vary by ~15 % run to run).
    Measured on SmolLM2-135M (LoRA batch 2-8 x 64-512 tokens, full training 4 x 128): peak
    RSS 75-100 % of this estimate."""
    cfg, mb = model.config, 4 / 2**20
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tokens, labeled = batch * seq, batch * seq if labeled is None else labeled
    per_layer = [
        tokens * (12 * cfg.hidden_size + 5 * b.ffn) + 2 * batch * cfg.num_heads * seq * seq for b in model.blocks
    ]
    acts = sum(per_layer) + tokens * 2 * cfg.hidden_size + labeled * 3 * cfg.vocab_size
    return MemoryNeed(2 * params * mb, trainable * 3 * mb, 1.2 * acts * mb, TORCH_RUNTIME_MB)


def memory_budget_mb() -> float:
    """EDGELLM_MAX_RSS_MB (or the profile) when set, else 90 % of this machine's available memory."""
    budget = memory.budget_mb()
    if budget:
        return budget
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
        return 0.9 * info["MemAvailable"] / 1024
    except (OSError, KeyError, ValueError):
        return float("inf")


def check_memory(need: MemoryNeed, batch: int, seq: int, budget: float | None = None) -> None:
    budget = memory_budget_mb() if budget is None else budget
    if need.total_mb <= budget:
        return
    hints = [f"--batch {batch // 2}"] if batch > 1 else []
    hints += [f"--seq-len {seq // 2}"] if seq >= 64 else []
    raise ToolchainError(
        f"training would need about {need.describe()} for batch {batch} x {seq} tokens, more than the budget of "
        f"{budget:.0f} MB; try {' or '.join(hints) or 'a smaller student / fewer LoRA targets'} "
        f"(or raise the budget: {memory.MAX_RSS_ENV}=<MB>, 0 = no limit)"
    )


# --- the loop ----------------------------------------------------------------------------
def train(
    model: TorchLlama,
    samples: Sequence[Sample],
    cfg: TrainConfig,
    work_dir: str | Path,
    *,
    loss_fn: Callable[[TorchLlama, dict], torch.Tensor] = lm_loss,
    fingerprint: dict | None = None,
    resume: bool = True,
    on_step: Callable[[Progress], None] | None = None,
    budget_mb: float | None = None,
) -> TrainResult:
    """Train the parameters of ``model`` that require grad; checkpoints in ``work_dir``."""
    if not samples:
        raise ToolchainError("no training samples")
    longest = max(len(s.ids) for s in samples)
    labeled = cfg.batch * max(int((s.labels != IGNORE).sum()) for s in samples)
    check_memory(estimate_memory(model, cfg.batch, longest, labeled), cfg.batch, longest, budget_mb)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / CHECKPOINT
    fingerprint = {**(fingerprint or {}), "train": cfg.fingerprint(), "samples": len(samples)}
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ToolchainError("the model has no trainable parameters")

    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    losses: list[float] = []
    if resume and ckpt.is_file():
        step, losses = _restore(ckpt, params, opt, fingerprint)
    start_step, t0, tokens = step, time.perf_counter(), 0
    model.train()
    stopped = "done"
    while step < cfg.steps:
        picked = [samples[i] for i in batch_indices(len(samples), cfg.batch, cfg.seed, step)]
        batch = collate(picked)
        lr = cfg.lr_at(step)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), cfg.grad_clip)
        opt.step()
        step += 1
        losses.append(loss.item())
        tokens += sum(len(s.ids) for s in picked)
        elapsed = time.perf_counter() - t0
        out_of_time = cfg.max_time_s is not None and elapsed >= cfg.max_time_s
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            _save(ckpt, step, params, opt, losses, fingerprint)
        if on_step is not None:
            done = step - start_step
            on_step(
                Progress(
                    step, cfg.steps, losses[-1], lr, tokens / elapsed, elapsed, elapsed / done * (cfg.steps - step)
                )
            )
        if out_of_time and step < cfg.steps:
            stopped = "time"
            break
    model.eval()
    elapsed = time.perf_counter() - t0
    return TrainResult(step, start_step, losses, tokens / elapsed if elapsed > 0 else 0.0, elapsed, stopped)


def _save(path: Path, step: int, params: dict, opt, losses: list[float], fingerprint: dict) -> None:
    state = {
        "step": step,
        "fingerprint": json.dumps(fingerprint, sort_keys=True),
        "losses": losses,
        "params": {n: p.detach().clone() for n, p in params.items()},
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _restore(path: Path, params: dict, opt, fingerprint: dict) -> tuple[int, list[float]]:
    try:
        state = torch.load(path, weights_only=True)
    except Exception as e:
        raise ToolchainError(f"cannot read the checkpoint {path} ({e}); delete it or pass --no-resume") from e
    saved, now = json.loads(state["fingerprint"]), json.loads(json.dumps(fingerprint, sort_keys=True))
    step, steps = int(state["step"]), now["train"]["steps"]
    if _without_steps(saved) != _without_steps(now):
        diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise ToolchainError(
            f"{path.parent} holds a checkpoint of a different run (differs in: {', '.join(diff)}); "
            "pass --no-resume to start over, or use another --work-dir"
        )
    if step > steps:
        raise ToolchainError(
            f"the checkpoint in {path.parent} is at step {step}, beyond --steps {steps}; pass "
            f"--steps {step} or more to continue it, or --no-resume to start over"
        )
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state["params"][n])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return step, list(state["losses"])


def _without_steps(fingerprint: dict) -> dict:
    """A run's fingerprint without its length: a longer run continues a shorter one's checkpoint."""
    return {**fingerprint, "train": {k: v for k, v in fingerprint["train"].items() if k != "steps"}}


# --- around the loop: inputs and outputs ------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_id(manifest, variant: str) -> str:
    """sha256 of a variant's weights (its external data file, else the graph): names a model's weights exactly."""
    rel = manifest.variants[variant]
    return manifest.files.get(rel + "_data", manifest.files.get(rel, {})).get("sha256", str(manifest.root / rel))


def export(
    weights: LlamaWeights,
    out: Path,
    *,
    tokenizer_from: Path,
    name: str,
    source: dict,
    quantize: str | None = "int4",
    progress: Callable[[str], None] = lambda msg: None,
    adapter: tuple[LlamaWeights, dict, dict] | None = None,
):
    """Write a model directory with fp32 + q8, plus ``quantize`` (int4 | int8) as the default variant.
    ``adapter`` = (base weights, adapter arrays, info): the int4 variant is then the quantized base
    with the LoRA adapter unmerged in fp32 (merged weights would round back onto the base's grid)."""
    if quantize not in (None, "none", *QUANTIZE):
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)} or none, got {quantize!r}")
    manifest = save_model(
        weights,
        out,
        tokenizer_from=tokenizer_from,
        name=name,
        variants=("fp32", "q8"),
        source=source,
        progress=progress,
    )
    if quantize in QUANTIZE:
        progress(f"quantizing to {quantize}" + (" (base) + unmerged adapter" if adapter and quantize == "int4" else ""))
        if adapter and quantize == "int4":
            base, arrays, info = adapter
            return add_variant(
                manifest,
                quantize,
                QUANTIZE[quantize],
                weights=base,
                adapters=arrays,
                adapter_info=info,
                make_default=True,
            )
        manifest = add_variant(manifest, quantize, QUANTIZE[quantize], weights=weights, make_default=True)
    return manifest
