"""`edgellm finetune` and `edgellm distill` (need the ``train`` extra: torch)."""

from __future__ import annotations

import sys

from ..cli.common import duration
from ..models.store import DEFAULT_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="LoRA fine-tune a model on a task file, merge, export, quantize")
    p.add_argument("model", help="installed model name or model directory")
    p.add_argument("--data", required=True, help='task JSONL: {"prompt" or "messages", "target"} per line')
    p.add_argument("--out", required=True, help="the new model: a name in the model store or a directory path")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, help="default: 2 x rank")
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--targets", default="qkv,o,gate_up,down", help="linear layers to adapt (comma separated)")
    p.add_argument("--no-merge", action="store_true", help="only write the adapter (<work dir>/adapter.pt)")
    p.add_argument(
        "--qat-steps",
        type=int,
        default=0,
        help="then train the merged weights this many steps through "
        "the int4 grid: int4 is then the merged model (no adapter, full speed). Experimental: on a base "
        "already on a 4-bit grid (the default model) 100 steps lost most of the fine-tune; see README",
    )
    _train_args(p, steps=100, lr=2e-4)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("distill", help="train a smaller student on a teacher's answers and soft targets")
    p.add_argument("--teacher", default=DEFAULT_MODEL, help="installed model name or model directory")
    p.add_argument(
        "--student-config",
        default="small",
        help="small (<= 40 %% of the teacher's parameters), "
        'tiny (~25 %%), a JSON file {"num_layers": 8, "intermediate_size": 768}, or a model to '
        "start from (name or directory; e.g. a pruned teacher, whose recovery this then is)",
    )
    p.add_argument("--data", required=True, help='prompts JSONL: {"prompt" or "messages", optional "target"} per line')
    p.add_argument("--out", required=True, help="the student: a name in the model store or a directory path")
    p.add_argument(
        "--answers",
        choices=("auto", "teacher"),
        default="auto",
        help="auto: a line's target when it has one, else the teacher's answer; teacher: always the "
        "teacher's (the soft targets are the teacher's either way)",
    )
    p.add_argument("--kd-temperature", type=float, default=2.0)
    p.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="weight of the KL term; 1 - alpha weighs the cross-entropy on the teacher's text",
    )
    p.add_argument("--top-k", type=int, default=32, help="teacher logits kept per answer token")
    p.add_argument("--max-new-tokens", type=int, default=128, help="length limit of the teacher's answers")
    p.add_argument("--teacher-variant", help="variant that generates the answers (default: q4, int4 or q8)")
    p.add_argument("--train-embeddings", action="store_true", help="also train the (tied) embedding")
    p.add_argument(
        "--qat-steps",
        type=int,
        default=0,
        help="then train this many steps through the int4 grid "
        "(quantization-aware; the int4 variant then computes what fp32 does)",
    )
    _train_args(p, steps=200, lr=3e-4)
    p.set_defaults(func=cmd_distill)


def _train_args(p, *, steps: int, lr: float) -> None:
    p.add_argument(
        "--steps",
        type=int,
        default=steps,
        help="training steps; rerun with more to continue a finished run from its checkpoint (train longer)",
    )
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr}; cosine decay)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (prompt + answer)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    p.add_argument("--max-time", type=duration, help="stop (checkpoint, export) after this long: 30m, 2h")
    p.add_argument("--work-dir", help="checkpoints and caches (default: <out>.train)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from a checkpoint")
    p.add_argument(
        "--quantize",
        choices=("int4", "int8", "none"),
        default="int4",
        help="extra variant made the default (fp32 and q8 are always written)",
    )
    p.add_argument("--name", help="model name in its manifest (default: the --out name)")


def _common(args) -> dict:
    bar = _StepBar()
    return {
        "steps": args.steps,
        "lr": args.lr,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "max_time_s": args.max_time,
        "resume": not args.no_resume,
        "quantize": None if args.quantize == "none" else args.quantize,
        "name": args.name,
        "work_dir": args.work_dir,
        "progress": bar.message,
        "on_step": bar.step,
    }


def cmd_finetune(args) -> int:
    from .finetune import finetune

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    try:
        r = finetune(
            args.model,
            args.data,
            args.out,
            lora_rank=args.lora_rank,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            targets=targets,
            merge=not args.no_merge,
            qat_steps=args.qat_steps,
            **_common(args),
        )
    except KeyboardInterrupt:
        return _interrupted()
    _report(r.train, f"task loss {r.loss_before:.4f} -> {r.loss_after:.4f}", r.qat)
    print(f"adapter: {r.adapter}")
    if r.manifest is not None:
        _model_line(r.manifest)
    return 0


def cmd_distill(args) -> int:
    from .distill import distill

    try:
        r = distill(
            args.teacher,
            args.student_config,
            args.data,
            args.out,
            kd_temperature=args.kd_temperature,
            alpha=args.alpha,
            top_k=args.top_k,
            max_new_tokens=args.max_new_tokens,
            teacher_variant=args.teacher_variant,
            answers=args.answers,
            qat_steps=args.qat_steps,
            train_embeddings=args.train_embeddings,
            **_common(args),
        )
    except KeyboardInterrupt:
        return _interrupted()
    _report(
        r.train,
        f"student {r.student_parameters:,} parameters ({r.student_parameters / r.teacher_parameters:.0%}"
        f" of the teacher's); cross-entropy on the answers ({r.from_targets} of them the data's targets) "
        f"{r.ce_before:.4f} -> {r.ce_after:.4f}",
        r.qat,
    )
    _model_line(r.manifest)
    return 0


def _interrupted() -> int:
    print("\ninterrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
    return 130


def _report(result, what: str, qat=None) -> None:
    def run(r) -> str:
        resumed = f" (resumed at step {r.resumed_from})" if r.resumed_from else ""
        return f"{r.steps} steps{resumed} in {r.elapsed_s:.0f} s, {r.tokens_per_s:,.0f} tok/s"

    then = f", then {run(qat)} quantization-aware" if qat else ""
    print(f"trained {run(result)}{then}; {what}")
    last = qat or result
    if last.stopped == "time":
        print(
            f"stopped by --max-time at step {last.steps}{' of the quantization-aware ones' if qat else ''}: "
            "run the same command again to continue",
            file=sys.stderr,
        )


def _model_line(m) -> None:
    print(f"{m.name}: {m.root} (variants: {', '.join(sorted(m.variants))}; default: {m.default_variant})")


class _StepBar:
    """Messages on stderr, and a tqdm bar over training steps (plain progress lines when not a terminal)."""

    def __init__(self):
        self._bar = None

    def message(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(f"[edgellm] {msg}", file=sys.stderr)
        else:
            print(f"[edgellm] {msg}", file=sys.stderr, flush=True)

    def step(self, p) -> None:
        if not sys.stderr.isatty():
            if p.step == p.steps or p.step % max(1, p.steps // 20) == 0:
                print(p.line(), file=sys.stderr, flush=True)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=p.steps, initial=p.step - 1, unit="step", file=sys.stderr, dynamic_ncols=True)
        self._bar.set_postfix_str(f"loss {p.loss:.4f} {p.tokens_per_s:,.0f} tok/s", refresh=False)
        self._bar.update(p.step - self._bar.n)
        if p.step == p.steps:
            self._bar.close()
            self._bar = None
