"""`edgellm distill`: train a smaller student on a teacher's answers and soft targets.

    prompts.jsonl -> answers: a line's own ``target`` when it has one (answers="auto"), else
                     the teacher's: greedy, the fast onnxruntime Engine on the teacher's
                     q4 (else int4, q8, the default) variant
                  -> teacher soft targets: top-k logits at every answer position, from the
                     torch fp32 teacher in one batched pass (cheaper than ORT with full logits)
    student = init_student(teacher, student_config)   the teacher's first, last and most
                     influential layers (block influence on 32 of the answers); the FFN
                     neurons most active on the answers (measured in the soft-target pass)
              or an existing model with the teacher's shape (a pruned teacher: distillation
                     is then its recovery training)
    loss = alpha * T^2 * KL(teacher_T || student_T) over the teacher's top-k
         + (1 - alpha) * cross-entropy on the answer's tokens
    -> checkpoints, resume -> [qat_steps more through the int4 grid, qat.py]
    -> model dir with fp32, q8 and int4 (the default variant)

The work dir (default ``<out>.train``) caches the answers (``answers.jsonl``, appended one
prompt at a time, so an interrupted generation resumes too) and the soft targets
(``soft_targets.pt``) and the teacher's block influence (``block_influence.json``), each keyed
by what they depend on. With a line's ``target`` as the answer the student learns the right
answer and, from the teacher's distribution at each of its tokens, what else the teacher
thought likely: it is not bound by the teacher's mistakes.
answers="teacher" ignores targets (pure imitation). The student's embedding (tied with its
output head) is the teacher's and stays frozen unless ``train_embeddings``: it is most of a
small model's parameters and Adam would need three times its size again.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import ModelNotFound, ToolchainError
from ..models.manifest import Manifest
from ..models.store import ModelStore
from .checkpoint import load_weights, output_dir, parameter_count, work_dir_for
from .data import read_examples
from .qat import train_on_grid
from .torch_llama import (
    STUDENT_PRESETS,
    F,
    TorchLlama,
    block_influence,
    config_from_dir,
    init_student,
    student_config,
    torch,
)
from .train import (
    IGNORE,
    Progress,
    Sample,
    TrainConfig,
    TrainResult,
    collate,
    export,
    file_sha256,
    make_sample,
    mean_loss,
    target_samples,
    train,
    weights_id,
)


@dataclass
class DistillResult:
    manifest: Manifest
    train: TrainResult
    teacher_parameters: int
    student_parameters: int
    ce_before: float  # the student's cross-entropy on the answers, before training
    ce_after: float
    from_targets: int = 0  # answers that are the data's own targets (the rest are the teacher's)
    qat: TrainResult | None = None  # the quantization-aware steps, if any


def distill(
    teacher: str | Path,
    student: str | Path | dict,
    data: str | Path,
    out: str | Path,
    *,
    steps: int = 200,
    lr: float = 3e-4,
    batch: int = 4,
    seq_len: int = 256,
    seed: int = 0,
    kd_temperature: float = 2.0,
    alpha: float = 0.5,
    top_k: int = 32,
    max_new_tokens: int = 128,
    teacher_variant: str | None = None,
    answers: str = "auto",
    train_embeddings: bool = False,
    qat_steps: int = 0,
    checkpoint_every: int = 50,
    max_time_s: float | None = None,
    resume: bool = True,
    quantize: str | None = "int4",
    name: str | None = None,
    work_dir: str | Path | None = None,
    store: ModelStore | None = None,
    progress: Callable[[str], None] = lambda msg: None,
    on_step: Callable[[Progress], None] | None = None,
) -> DistillResult:
    """Distill ``teacher`` into a ``student`` ("small" | "tiny" | dict | JSON file, or a model to start from)
    on the prompts in ``data``;
    ``answers`` is "auto" (a line's target when it has one, else the teacher's answer) or "teacher"."""
    if not kd_temperature > 0 or not 0.0 <= alpha <= 1.0 or top_k < 1:
        raise ValueError(
            f"need kd_temperature > 0, alpha in [0, 1] and top_k >= 1, got {kd_temperature}, {alpha}, {top_k}"
        )
    if answers not in ("auto", "teacher"):
        raise ValueError(f'answers must be "auto" or "teacher", got {answers!r}')
    if qat_steps < 0:
        raise ValueError(f"qat_steps must be >= 0, got {qat_steps}")
    cfg = TrainConfig(
        steps=steps,
        batch=batch,
        seq_len=seq_len,
        lr=lr,
        seed=seed,
        checkpoint_every=checkpoint_every,
        max_time_s=max_time_s,
    )
    examples = read_examples(data, need_target=False)
    store = store or ModelStore()
    base = store.resolve(teacher)
    out = output_dir(out, store)
    work = Path(work_dir) if work_dir else work_dir_for(out)
    work.mkdir(parents=True, exist_ok=True)
    init = _student_model(student, store)  # a model to continue from (e.g. a pruned one), or None: cut it
    student_cfg = _same_shape(base, init) if init else student_config(config_from_dir(base.root), student)

    use_targets = answers == "auto"
    samples = answer_samples(
        base,
        examples,
        work / "answers.jsonl",
        use_targets=use_targets,
        seq_len=seq_len,
        max_new_tokens=max_new_tokens,
        variant=teacher_variant,
        progress=progress,
    )
    from_targets = sum(ex.target is not None for ex in examples) if use_targets else 0
    progress(f"loading {base.name} (fp32) for soft targets")
    weights, teacher_id = load_weights(base), weights_id(base, "fp32")
    activity = soft_targets(
        weights, samples, work / "soft_targets.pt", top_k=top_k, teacher_id=teacher_id, progress=progress
    )

    picked = None  # the teacher layers a new student starts from
    if init:
        net = TorchLlama.from_weights(load_weights(init))
    else:
        influence = teacher_influence(weights, samples, work / "block_influence.json", teacher_id=teacher_id)
        cut = init_student(weights, student_cfg, activity, influence)
        picked = cut.metadata["student_layers"]
        net = TorchLlama.from_weights(cut)
    net.embed.requires_grad_(train_embeddings)
    n_teacher, n_student = parameter_count(weights), sum(p.numel() for p in net.parameters())
    from_layers = f" (the teacher's {', '.join(map(str, picked))})" if picked else ""
    progress(
        f"student: {student_cfg.num_layers} layers{from_layers}, FFN {student_cfg.intermediate_size}, {n_student:,} "
        f"parameters ({n_student / n_teacher:.0%} of the teacher's)"
    )
    del weights
    gc.collect()
    ce_before = mean_loss(net, samples)
    data_sha = file_sha256(data)
    fingerprint = {
        "teacher": teacher_id,
        "data": data_sha,
        "student": weights_id(init, "fp32") if init else {**asdict(student_cfg), "layers": "influence"},
        "kd": [kd_temperature, alpha, top_k, max_new_tokens],
        "train_embeddings": train_embeddings,
        **({"answers": answers} if answers != "teacher" else {}),
    }  # old work dirs (teacher) resume
    loss = partial(kd_loss, temperature=kd_temperature, alpha=alpha)
    result = train(net, samples, cfg, work, loss_fn=loss, fingerprint=fingerprint, resume=resume, on_step=on_step)
    result_qat = None
    if qat_steps and result.stopped == "done":
        progress(f"quantization-aware training: {qat_steps} steps through the int4 grid")
        result_qat = train_on_grid(
            net,
            samples,
            cfg,
            work,
            steps=qat_steps,
            after=result,
            loss_fn=loss,
            fingerprint=fingerprint,
            resume=resume,
            on_step=on_step,
        )
    ce_after = mean_loss(net, samples)
    progress("exporting")
    source = {
        "distilled_from": base.name,
        **({"student_from": init.name} if init else {}),
        "data": Path(data).name,
        "data_sha256": data_sha,
        "steps": result.steps,
        "student_layers": net.config.num_layers,
        **({"teacher_layers": picked} if picked else {}),
        "teacher_parameters": n_teacher,
        "kd_temperature": kd_temperature,
        "alpha": alpha,
        "top_k": top_k,
        "answers_from_targets": from_targets,
        "qat_steps": qat_steps,
        "ce_before": round(ce_before, 4),
        "ce_after": round(ce_after, 4),
    }
    manifest = export(
        net.to_weights(),
        out,
        tokenizer_from=base.root,
        name=name or out.name,
        source=source,
        quantize=quantize,
        progress=progress,
    )
    return DistillResult(manifest, result, n_teacher, n_student, ce_before, ce_after, from_targets, result_qat)


def _student_model(student, store: ModelStore) -> Manifest | None:
    """The installed model or model directory ``student`` names, if it names one."""
    if isinstance(student, dict) or student in STUDENT_PRESETS or Path(student).is_file():
        return None
    try:
        return store.resolve(student)
    except ModelNotFound:
        return None  # student_config explains what a student spec can be


def _same_shape(teacher: Manifest, student: Manifest):
    t, s = config_from_dir(teacher.root), config_from_dir(student.root)
    for key in ("vocab_size", "hidden_size", "num_heads", "num_kv_heads"):
        if getattr(s, key) != getattr(t, key):
            raise ToolchainError(
                f"student {student.name} has {key}={getattr(s, key)} but the teacher "
                f"{teacher.name} has {getattr(t, key)}: the soft targets need the same vocabulary "
                "and the student the same hidden size and heads"
            )
    return s


def kd_loss(model: TorchLlama, batch: dict, *, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(teacher || student) on the teacher's top-k (renormalized) + (1 - alpha) * CE."""
    keep = batch["labels"] != IGNORE
    logits = model(batch["ids"], keep)
    ce = F.cross_entropy(logits, batch["labels"][keep])
    teacher = F.log_softmax(batch["topk_logits"] / temperature, dim=-1)
    student = F.log_softmax(logits / temperature, dim=-1).gather(-1, batch["topk_ids"])
    kl = (teacher.exp() * (teacher - student)).sum(-1).mean()
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def answer_samples(
    base: Manifest,
    examples,
    cache: Path,
    *,
    use_targets: bool,
    seq_len: int,
    max_new_tokens: int,
    variant: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> list[Sample]:
    """One sample per example, in order: its target (with ``use_targets``) or the teacher's answer."""
    given = [use_targets and ex.target is not None for ex in examples]
    asked = [ex for ex, g in zip(examples, given) if not g]
    prompts, answers = (
        teacher_answers(
            base, asked, cache, seq_len=seq_len, max_new_tokens=max_new_tokens, variant=variant, progress=progress
        )
        if asked
        else ([], [])
    )
    taught = iter(make_sample(p, a, seq_len, line=ex.line) for p, a, ex in zip(prompts, answers, asked))
    targeted = iter(target_samples(base.root, [ex for ex, g in zip(examples, given) if g], seq_len))
    return [next(targeted) if g else next(taught) for g in given]


def teacher_answers(
    base: Manifest,
    examples,
    cache: Path,
    *,
    seq_len: int,
    max_new_tokens: int,
    variant: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
):
    """(prompt ids, answer ids ending with eos when the teacher stopped) per example, cached in ``cache``."""
    from ..engine import Engine

    variant = variant or next((v for v in ("q4", "int4", "q8") if v in base.variants), base.default_variant)
    if variant not in base.variants:
        raise ToolchainError(f"teacher {base.name} has no variant {variant!r}; it has {', '.join(base.variants)}")
    done = {}
    if cache.is_file():
        for raw in cache.read_text().splitlines():
            try:
                entry = json.loads(raw)
                done[entry["key"]] = entry["ids"]
            except (ValueError, KeyError):
                continue  # a line cut short by an interruption: generate it again
    prompts, answers = [], []
    with (
        Engine.load(base.root, variant=variant, max_context=seq_len) as engine,
        cache.open("a", encoding="utf-8") as log,
    ):
        for n, ex in enumerate(examples, 1):
            ids = engine.prompt_ids(ex.messages)
            room = min(max_new_tokens, seq_len - len(ids))
            if room < 1:
                raise ToolchainError(
                    f"line {ex.line}: the prompt is {len(ids)} tokens, which leaves no room for "
                    f"the answer in --seq-len {seq_len}; raise --seq-len or shorten the prompt"
                )
            key = hashlib.sha256(json.dumps([weights_id(base, variant), ids, room]).encode()).hexdigest()
            if key not in done:
                done[key] = [t.id for t in engine.generate(ids, max_tokens=room) if t.id >= 0]
                log.write(
                    json.dumps(
                        {"key": key, "line": ex.line, "ids": done[key], "text": engine.tokenizer.decode(done[key])},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                log.flush()
                if n == len(examples) or n % max(1, len(examples) // 20) == 0:
                    progress(f"teacher answered {n}/{len(examples)}")
            prompts.append(ids)
            answers.append(done[key])
    return prompts, answers


def teacher_influence(weights, samples: list[Sample], cache: Path, *, teacher_id: str) -> list[float]:
    """``block_influence`` of the teacher on the answers, cached in ``cache``: a resumed or longer
    run picks the same layers without the teacher's forward pass."""
    key = hashlib.sha256(json.dumps([teacher_id, [s.ids.tolist() for s in samples]]).encode()).hexdigest()
    try:
        saved = json.loads(cache.read_text())
        if saved["key"] == key:
            return saved["influence"]
    except (OSError, ValueError, KeyError):
        pass  # none yet, or cut short: measure it
    influence = block_influence(TorchLlama.from_weights(weights), [s.ids for s in samples])
    cache.write_text(json.dumps({"key": key, "influence": influence}))
    return influence


def soft_targets(
    weights,
    samples: list[Sample],
    cache: Path,
    *,
    top_k: int,
    teacher_id: str = "",
    batch: int = 8,
    progress: Callable[[str], None] = lambda msg: None,
) -> list[np.ndarray]:
    """Attach the teacher's top-k logits at each sample's labeled positions (``sample.extra``);
    returns each teacher layer's mean |FFN activation| per neuron on these samples."""
    key = hashlib.sha256(
        json.dumps(
            [
                2,
                teacher_id,
                top_k,
                [s.ids.tolist() for s in samples],  # 2: format
                [s.labels.tolist() for s in samples],
            ]
        ).encode()
    ).hexdigest()
    saved = torch.load(cache, weights_only=True) if cache.is_file() else {}
    if saved.get("key") != key:
        progress(f"teacher soft targets (top-{top_k}) for {len(samples)} answers")
        teacher = TorchLlama.from_weights(weights).eval()
        activity = [torch.zeros(b.ffn, dtype=torch.float64) for b in teacher.blocks]
        valid = None  # [B, S] real (not padding) positions of the current batch

        def record(i: int):
            def hook(module, inputs, output) -> None:  # returning a tensor would replace the output
                activity[i].add_(inputs[0][valid].abs().sum(0))

            return hook

        hooks = [b.down_proj.register_forward_hook(record(i)) for i, b in enumerate(teacher.blocks)]
        ids, logits = [], []
        started, report_every = time.perf_counter(), max(batch, len(samples) // 10 // batch * batch)
        with torch.no_grad():
            for i in range(0, len(samples), batch):
                if i and i % report_every == 0:
                    left = (time.perf_counter() - started) / i * (len(samples) - i)
                    progress(f"  {i}/{len(samples)} answers, ~{left / 60:.0f} min left")
                chunk = samples[i : i + batch]
                b = collate(chunk)
                valid = torch.arange(b["ids"].shape[1])[None] < torch.tensor([len(s.ids) for s in chunk])[:, None]
                top = teacher(b["ids"], b["labels"] != IGNORE).topk(min(top_k, weights.config.vocab_size), dim=-1)
                counts = [int((s.labels != IGNORE).sum()) for s in chunk]
                ids += list(top.indices.split(counts))
                logits += list(top.values.split(counts))
        for h in hooks:
            h.remove()
        tokens = sum(len(s.ids) for s in samples)
        saved = {
            "key": key,
            "ids": [t.clone() for t in ids],
            "logits": [t.clone() for t in logits],
            "activity": [(a / tokens).float() for a in activity],
        }
        torch.save(saved, cache)
        del teacher
    for s, i, v in zip(samples, saved["ids"], saved["logits"]):
        s.extra = {"topk_ids": i.numpy(), "topk_logits": v.numpy()}
    return [a.numpy() for a in saved["activity"]]
