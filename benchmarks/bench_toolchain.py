"""The toolchain demonstration: a domain student for robot command parsing and sensor narration.

Built from the data in benchmarks/data (make_task_data.py writes it). Every step is one
``edgellm`` CLI call in a subprocess of its own, so it is isolated and its peak RSS is its own:

 1. finetune   LoRA (rank 8) on both tasks' train sets, from the default smollm2-135m
               -> the fine-tuned teacher ("teacher-ft"); its int4 variant is the base in 4 bits
               + the adapter unmerged (merged weights re-quantized to 4 bits lose the fine-tune)
 1b.           "teacher-ft-qat": teacher-ft's LoRA run continued by --steps-qat quantization-aware
               steps of its merged weights: its int4 is the merged model, no adapter branch
 2. quantize   int8 and int4 variants of the base model, int8 of teacher-ft (merged)
 3. prune      30 % of teacher-ft's MLP neurons, calibrated on calib_domain.txt (+ int4), then its
               recovery ("pruned-rec"): `edgellm distill` with the pruned model as the student
               (teacher-ft's soft targets on distill_prompts.jsonl, quantization-aware at the end)
 4. distill    teacher-ft -> student "small" (<= 40 % of the parameters) on distill_prompts.jsonl
               (the task train prompts with their targets + general instructions the teacher
               answers; KL to the teacher's soft targets at every answer token), then
               quantization-aware steps; int8 / int4 of the student; optionally
               (--steps-copy) its second stage, copy training ("student-copy"): the student
               distilled on, the same way, on distill_copy.jsonl (the task train sets + narrations
               whose every name is new, so names must be copied from the prompt), and
               (--steps-student-ft) a LoRA task fine-tune of the student ("student-ft")
 5. eval       every variant on task_commands_test.jsonl and task_sensors_test.jsonl (held out):
               accuracy and the answers' perplexity (targets teacher-forced after the prompts);
               perplexity on heldout_domain.txt (held-out requests and narrations as plain text)
 6. tradeoff   every variant: perplexity on heldout_general.txt, TTFT, decode tok/s, peak RSS,
               file size (each benchmark in its own process)
 7. report     benchmarks/results/bench_toolchain.{json,md}: the table and the issue's targets
               (int8/int4 within +2 % ppl of fp32 -- on the test sets' answers for the student,
               which learned only the tasks in chat format; pruned-30 % within 5 points of task
               accuracy; student >= 95 % of the teacher's task accuracy at >= 2x its decode speed)

    .venv/bin/python benchmarks/bench_toolchain.py                  # the full run (hours on 2 cores)
    .venv/bin/python benchmarks/bench_toolchain.py --skip-train     # reuse the trained models (a student
                                                                    # asked for more steps trains on)
    .venv/bin/python benchmarks/bench_toolchain.py --quick          # smoke run: a few steps, tiny subsets,
                                                                    # everything under /tmp, from scratch
Cost on a 2-core x86 host (smoke run, with other jobs keeping the load at ~4): fine-tuning ~50 s a
step (batch 4), distillation ~8 s a step after ~5 s per prompt of teacher answers (fp32 teacher),
task evaluation ~2 s (commands) to ~5 s (narrations) per example for fp32 and about half for
int8/int4: with the defaults, plan on a night, or bound training with --max-time. Measure speed
on an otherwise idle host: the report records the load average because contention halves tok/s.
Training resumes from its checkpoints when interrupted (rerun the same command); evaluations are
cached in the work dir by the weights' sha256, so a rerun only redoes what changed (--fresh
redoes all). New models go into the model store ($EDGELLM_HOME) under --prefix names, or into
--models-dir. The base model's existing int8/int4 variants are reused (--requantize-base to
rebuild them). Task accuracy is the mean of the two tasks' accuracies (each its own test set).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from machine import describe, machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
QUICK_DIR = Path("/tmp/edgellm-bench-toolchain-quick")  # --quick's default output: a smoke run, not a result
TASKS = {"commands": "task_commands", "sensors": "task_sensors"}
DATA_FILES = [
    "task_commands_train.jsonl",
    "task_commands_test.jsonl",
    "task_sensors_train.jsonl",
    "task_sensors_test.jsonl",
    "calib_domain.txt",
    "distill_prompts.jsonl",
    "distill_copy.jsonl",
    "heldout_general.txt",
    "heldout_domain.txt",
]
FAMILIES = {  # family -> (label, variants in the table)
    "base": ("base smollm2-135m", ("fp32", "int8", "int4")),
    "teacher-ft": ("teacher-ft (LoRA)", ("fp32", "int8", "int4")),
    "teacher-ft-qat": ("teacher-ft + QAT (merged)", ("fp32", "int4")),
    "pruned": ("pruned-30 % of teacher-ft", ("fp32", "int4")),
    "pruned-rec": ("pruned-30 % + recovery (distilled)", ("fp32", "int4")),
    "student": ("student (distilled)", ("fp32", "int8", "int4")),
    "student-copy": ("student + copy training", ("fp32", "int8", "int4")),
    "student-ft": ("student + LoRA task tune", ("fp32", "int8", "int4")),
}
PPL_TOLERANCE = 0.02  # int8 / int4 within +2 % perplexity of fp32
TASK_ONLY = {"student", "student-copy", "student-ft"}  # learned only the tasks: their ppl target is on the answers
PRUNE_TOLERANCE = 0.05  # pruned within 5 percentage points of task accuracy
STUDENT_ACCURACY, STUDENT_SPEEDUP, STUDENT_SIZE = 0.95, 2.0, 0.40


def edgellm() -> list[str]:
    exe = Path(sys.executable).with_name("edgellm")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "edgellm_sdk"]


# --- running steps --------------------------------------------------------------------
@dataclass
class Step:
    name: str
    argv: list[str]
    seconds: float = 0.0
    peak_rss_mb: float | None = None  # the step's process tree (ru_maxrss of the waited child)
    returncode: int | None = None
    skipped: str | None = None  # why it did not run
    summary: str = ""  # the last lines of its stdout


class Runner:
    """Runs CLI steps one at a time: stderr streamed to the console and logs/<step>.log, stdout kept."""

    def __init__(self, log_dir: Path, threads: int | None):
        self.log_dir = log_dir
        self.threads = threads
        self.steps: list[Step] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def skip(self, name: str, why: str) -> None:
        print(f"[bench] {name}: skipped ({why})", flush=True)
        self.steps.append(Step(name, [], skipped=why))

    def run(self, name: str, args: list[str], *, check: bool = True) -> tuple[int, str]:
        argv = edgellm() + args
        slug = name.replace(" ", "_").replace("/", "_").replace(":", "_")
        print(f"\n[bench] {name}: {' '.join(argv)}", flush=True)
        step = Step(name, argv)
        t0 = time.perf_counter()
        with open(self.log_dir / f"{slug}.out", "w+b") as out, open(self.log_dir / f"{slug}.log", "wb") as log:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, cwd=ROOT)
            tee = threading.Thread(target=_tee, args=(proc.stderr, log), daemon=True)
            tee.start()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            tee.join()
            out.seek(0)
            stdout = out.read().decode("utf-8", "replace")
        step.seconds = round(time.perf_counter() - t0, 1)
        step.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
        step.returncode = proc.returncode
        step.summary = "\n".join(line for line in stdout.strip().splitlines()[-3:] if not line.startswith(("{", "}")))
        self.steps.append(step)
        print(
            f"[bench] {name}: exit {proc.returncode} in {step.seconds:.0f} s, peak RSS {step.peak_rss_mb:.0f} MB",
            flush=True,
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"[bench] {name} failed (exit {proc.returncode}); see {self.log_dir / slug}.log")
        return proc.returncode, stdout


def _tee(stream, log) -> None:
    for chunk in iter(lambda: stream.read1(4096), b""):
        log.write(chunk)
        log.flush()
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()


# --- models and variants --------------------------------------------------------------
def store():
    from edgellm_sdk.models.store import ModelStore

    return ModelStore()


def train_dir(ref: str) -> Path:
    """The work dir finetune / distill use by default for the model ``ref``: <its dir>.train."""
    from edgellm_sdk.toolchain.checkpoint import output_dir, work_dir_for

    return work_dir_for(output_dir(ref))


def manifest(ref: str):
    return store().resolve(ref)


def created(ref: str) -> str:
    """When the model ``ref`` was written (its manifest's UTC timestamp; quantizing does not change it)."""
    return json.loads((manifest(ref).root / "manifest.json").read_text()).get("created", "")


def exists(ref: str) -> bool:
    try:
        manifest(ref)
        return True
    except Exception:  # noqa: BLE001 - ModelNotFound or a half-written directory: not usable
        return False


def trained_for(ref: str, steps: int, qat_steps: int, data: Path) -> bool:
    """Whether the model ``ref`` exists and was trained for these step counts on ``data`` (models
    distilled before the manifest recorded the data's digest are taken as trained on it)."""
    from edgellm_sdk.toolchain.train import file_sha256

    source = manifest(ref).source if exists(ref) else {}
    same_data = source.get("data_sha256") in (None, file_sha256(data))
    return source.get("steps") == steps and source.get("qat_steps", 0) == qat_steps and same_data


def weights_sha(m, variant: str) -> str:
    rel = m.variants[variant]
    entry = m.files.get(rel + "_data") or m.files.get(rel) or {}
    return entry.get("sha256") or f"{(m.root / rel).stat().st_mtime_ns}"


def int4_is_current(ref: str) -> bool:
    """Whether the model's int4 variant carries its LoRA adapter unmerged (finetune --quantize int4)
    and was quantized the way finetune exports today."""
    from edgellm_sdk.toolchain.quantspec import EXPORT_SPECS

    info = dict(manifest(ref).source.get("variants", {}).get("int4", {}))
    if info.pop("lora_adapter", None) is None:
        return False
    info.pop("accuracy_level", None)
    return info == EXPORT_SPECS["int4"].describe()


def parameters(m) -> int | None:
    """Weights in the fp32 graph (matrices and norms; not the RoPE tables)."""
    try:
        import numpy as np
        import onnx

        graph = onnx.load(str(m.variant_path("fp32")), load_external_data=False).graph
        return int(sum(np.prod(t.dims) for t in graph.initializer if t.name.endswith(("weight", "norm"))))
    except Exception:  # noqa: BLE001 - informative only
        return None


def quantize(runner: Runner, ref: str, to: str, *, family: str, overwrite: bool, calibration: Path | None) -> None:
    m = manifest(ref)
    if to in m.variants and not overwrite:
        runner.skip(f"quantize {family} {to}", f"variant {to} exists")
        return
    args = ["quantize", ref, "--to", to, "--name", to, "--json"]
    args += ["--overwrite"] if to in m.variants else []
    args += ["--calibration", str(calibration)] if calibration else []
    runner.run(f"quantize {family} {to}", args)


# --- data -----------------------------------------------------------------------------
def prepare_data(
    work: Path, quick: bool, seed: int, limit_test: int | None = None, limit_distill: int | None = None
) -> dict[str, Path]:
    if any(not (DATA / f).is_file() for f in DATA_FILES):
        print("[bench] generating the task data (benchmarks/data/make_task_data.py)", flush=True)
        subprocess.run([sys.executable, str(DATA / "make_task_data.py")], check=True)
    work.mkdir(parents=True, exist_ok=True)

    def lines(name: str, limit: int | None = None) -> list[str]:
        rows = [x for x in (DATA / name).read_text(encoding="utf-8").splitlines() if x.strip()]
        if limit and limit < len(rows):  # a seeded sample, not the first lines (files are grouped by kind)
            rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), limit))]
        return rows

    def write(name: str, rows: list[str]) -> Path:
        path = work / name
        text = "\n".join(rows) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:  # keep the sha (training resumes)
            path.write_text(text, encoding="utf-8")
        return path

    n_train, n_test, n_distill = (24, 8, 24) if quick else (None, limit_test, limit_distill)
    train = lines("task_commands_train.jsonl", n_train) + lines("task_sensors_train.jsonl", n_train)
    random.Random(seed).shuffle(train)
    files = {
        "train": write("task_train_combined.jsonl", train),
        "calibration": DATA / "calib_domain.txt",
        "heldout": DATA / "heldout_general.txt",
        "domain": DATA / "heldout_domain.txt",
    }
    for key, name in (("distill", "distill_prompts.jsonl"), ("copy", "distill_copy.jsonl")):
        files[key] = write(name, lines(name, n_distill)) if n_distill else DATA / name
    for task, stem in TASKS.items():
        files[task] = (
            write(f"{stem}_test.jsonl", lines(f"{stem}_test.jsonl", n_test)) if n_test else DATA / f"{stem}_test.jsonl"
        )
    return files


# --- evaluation -----------------------------------------------------------------------
def evaluate(
    runner: Runner,
    cache_dir: Path,
    family: str,
    ref: str,
    variant: str,
    what: str,
    path: Path,
    fresh: bool,
    threads: int | None,
    ppl_tokens: int | None = None,
) -> dict:
    """``edgellm eval`` of one variant: ``--task path``, or ``--ppl path`` when ``ppl_tokens`` is
    given; cached by (weights sha256, file sha256, threads[, ppl tokens])."""
    import hashlib

    m = manifest(ref)
    key = [weights_sha(m, variant), hashlib.sha256(path.read_bytes()).hexdigest(), threads]
    key += [ppl_tokens] if ppl_tokens else ["answer ppl"]  # task reports without it are stale
    cache = cache_dir / f"{m.name}__{variant}__{what}.json"
    if not fresh and cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            runner.skip(f"eval {family}:{variant} {what}", "cached")
            return saved["report"]
    args = ["eval", ref, "--variant", variant, "--json"]
    args += ["--ppl", str(path), "--max-ppl-tokens", str(ppl_tokens)] if ppl_tokens else ["--task", str(path)]
    args += ["--threads", str(threads)] if threads else []
    code, out = runner.run(f"eval {family}:{variant} {what}", args, check=False)
    if code != 0:
        return {"error": f"exit {code}; see the log"}
    report = json.loads(out)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "report": report}, indent=1, ensure_ascii=False))
    return report


# --- the report -----------------------------------------------------------------------
@dataclass
class Row:
    family: str
    model: str
    variant: str
    path: str
    parameters: int | None = None
    file_mb: float | None = None
    commands_acc: float | None = None
    sensors_acc: float | None = None
    task_acc: float | None = None  # mean of the two tasks
    ppl: float | None = None
    ppl_delta: float | None = None  # relative to the same model's fp32
    domain_ppl: float | None = None  # on heldout_domain.txt
    domain_ppl_delta: float | None = None
    answer_ppl: float | None = None  # the test sets' targets teacher-forced after their prompts, both tasks
    answer_ppl_delta: float | None = None
    ttft_ms: float | None = None
    decode_tok_s: float | None = None
    peak_rss_mb: float | None = None
    pareto: bool = False
    errors: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)  # task -> the first few failures

    @property
    def key(self) -> str:
        return f"{self.family}:{self.variant}"


def find(rows: list[Row], family: str, variant: str) -> Row | None:
    return next((r for r in rows if r.family == family and r.variant == variant), None)


def targets(rows: list[Row]) -> list[dict]:
    out = []
    student = next((f for f in ("student-ft", "student-copy") if any(r.family == f for r in rows)), "student")

    def pct(x):
        return "—" if x is None else f"{100 * x:.1f} %"

    # 1. quantization; a task-only model's on its answers (it does not model prose, general or domain)
    for family in ("base", "teacher-ft", "teacher-ft-qat", student):
        fp32 = find(rows, family, "fp32")
        task_only = family in TASK_ONLY
        for q in (v for v in ("int8", "int4") if v in FAMILIES[family][1]):
            if family == "teacher-ft-qat" and fp32 is None:
                continue  # not built (--steps-qat 0)
            r = find(rows, family, q)
            name = f"{family} {q} within +2 % ppl of fp32" + (" (the test sets' answers)" if task_only else "")
            attr = "answer_ppl" if task_only else "ppl"
            ppl, ref_ppl = (getattr(r, attr), getattr(fp32, attr)) if r and fp32 else (None, None)
            if ppl is None or ref_ppl is None:
                out.append({"target": name, "met": None, "detail": "not measured"})
                continue
            delta = ppl / ref_ppl - 1
            detail = f"ppl {ppl:.3f} vs {ref_ppl:.3f} ({100 * delta:+.2f} %)"
            if task_only:
                plain = [
                    f"{what} (ppl {getattr(fp32, a):.0f}) {100 * getattr(r, a + '_delta'):+.1f} %"
                    for what, a in (("domain", "domain_ppl"), ("general", "ppl"))
                    if getattr(r, a + "_delta") is not None
                ]
                detail += "; as plain text, which it does not model: " + ", ".join(plain)
            out.append({"target": name, "met": delta <= PPL_TOLERANCE, "detail": detail})
    # 2. pruning
    teacher, pruned = find(rows, "teacher-ft", "fp32"), find(rows, "pruned-rec", "fp32")
    name = "pruned-30 % (+ recovery) within 5 points of teacher-ft task accuracy (fp32)"
    if teacher and teacher.task_acc == 0:
        out.append({"target": name, "met": None, "detail": "teacher-ft answers nothing correctly: nothing to keep"})
    elif teacher and pruned and teacher.task_acc is not None and pruned.task_acc is not None:
        drop = teacher.task_acc - pruned.task_acc
        rel = drop / teacher.task_acc if teacher.task_acc else 0.0
        out.append(
            {
                "target": name,
                "met": drop <= PRUNE_TOLERANCE,
                "detail": f"{pct(pruned.task_acc)} vs {pct(teacher.task_acc)} ({-100 * drop:+.1f} points, "
                f"{-100 * rel:+.1f} % relative); commands {pct(pruned.commands_acc)} vs "
                f"{pct(teacher.commands_acc)}, sensors {pct(pruned.sensors_acc)} vs "
                f"{pct(teacher.sensors_acc)}",
            }
        )
    else:
        out.append({"target": name, "met": None, "detail": "not measured"})
    # 3. the student, against the teacher at the same precision (fp32 is the target; int8/int4 shown too)
    for variant in ("fp32", "int8", "int4"):
        t, s = find(rows, "teacher-ft", variant), find(rows, student, variant)
        name = f"{student} {variant} >= 95 % of teacher-ft {variant} task accuracy at >= 2x decode tok/s"
        if not (t and s) or None in (t.task_acc, s.task_acc, t.decode_tok_s, s.decode_tok_s):
            out.append({"target": name, "met": None, "detail": "not measured", "primary": variant == "fp32"})
            continue
        if t.task_acc == 0:
            out.append(
                {
                    "target": name,
                    "met": None,
                    "primary": variant == "fp32",
                    "detail": "teacher-ft answers nothing correctly: no accuracy to keep",
                }
            )
            continue
        ratio = s.task_acc / t.task_acc
        speed = s.decode_tok_s / t.decode_tok_s
        out.append(
            {
                "target": name,
                "met": ratio >= STUDENT_ACCURACY and speed >= STUDENT_SPEEDUP,
                "primary": variant == "fp32",
                "detail": f"accuracy {pct(s.task_acc)} vs {pct(t.task_acc)} ({100 * ratio:.0f} % of the "
                f"teacher's, needs >= 95 %); decode {s.decode_tok_s:.1f} vs {t.decode_tok_s:.1f} "
                f"tok/s ({speed:.2f}x, needs >= 2x)",
            }
        )
    t, s = find(rows, "teacher-ft", "fp32"), find(rows, student, "fp32")
    if t and s and t.parameters and s.parameters:
        share = s.parameters / t.parameters
        out.append(
            {
                "target": "student <= 40 % of the teacher's parameters",
                "met": share <= STUDENT_SIZE,
                "detail": f"{s.parameters / 1e6:.1f} M vs {t.parameters / 1e6:.1f} M ({100 * share:.0f} %)",
            }
        )
    return out


def llama_cpp_peer() -> dict | None:
    """The llama.cpp row recorded by bench_decode.py (same host class, base model Q4_1 GGUF), if any."""
    path = RESULTS / "bench_decode.json"
    try:
        data = json.loads(path.read_text())
        row = data["speed"]["llama.cpp"]
        return {
            "source": "benchmarks/results/bench_decode.json",
            "date": data.get("date"),
            "model": "SmolLM2-135M-Instruct Q4_1 GGUF (the base model)",
            "decode_tok_s": round(row["decode_tps"], 1),
            "ttft_ms": round(row["ttft_ms"]),
            "peak_rss_mb": round(row["peak_rss_mb"]),
            "prompt_tokens": row.get("prompt_tokens"),
            "gen_tokens": data.get("gen_tokens"),
        }
    except (OSError, KeyError, ValueError):
        return None


def _code(text: str, limit: int) -> str:
    """One line of inline code: whitespace collapsed, cut at ``limit``, no backticks."""
    text = " ".join(str(text).split()).replace("`", "'")
    return f"`{text[:limit]}{'…' if len(text) > limit else ''}`" if text else "(nothing)"


def markdown(report: dict) -> str:
    s = report["settings"]

    def f(x, spec, scale=1.0, suffix=""):
        return "—" if x is None else f"{x * scale:{spec}}{suffix}"

    quick = " — **quick smoke run, not a result**" if s["quick"] else ""
    load = report["load_average"]
    setup = (
        f"{report['created']} on {report['host']}{quick}. Load average {load['start'][1]} at the start, "
        f"{load['end'][1]} at the end (5 min; other processes on the host slow every speed column). "
        f"Base `{s['base']}`; LoRA rank {s['lora_rank']}, {s['steps_finetune']} fine-tune steps; student "
        f"`{s['student_config']}`, {s['steps_distill']} distillation steps (the train targets + the teacher's "
        f"soft targets) and {s.get('steps_qat', 0)} quantization-aware steps"
        + (
            f", then {s['steps_copy']} steps of copy training (`distill_copy.jsonl`, the same loss) and "
            f"{s['steps_copy_qat']} quantization-aware ones"
            if s.get("steps_copy")
            else ""
        )
        + (
            f", then a rank-{s.get('student_ft_rank')} LoRA task tune of {s.get('steps_student_ft')} steps"
            if s.get("steps_student_ft")
            else ""
        )
        + f"; pruning ratio {s['prune_ratio']}, then "
        f"{s.get('steps_recovery')} steps of recovery (the pruned model distilled from teacher-ft, the same way) "
        "+ the quantization-aware ones. int4 of a LoRA model = the 4-bit base + the adapter unmerged; "
        "teacher-ft + QAT = teacher-ft's adapter merged, then the quantization-aware steps: its int4 is the "
        "merged model."
    )
    method = (
        "Task accuracy: greedy answers through the Engine with the chat template, JSON-equal (commands, "
        f"{report['test_sizes']['commands']} held-out requests) or exactly equal (sensor narration, "
        f"{report['test_sizes']['sensors']} held-out fact sets); *task* = the mean of the two. ppl answers: "
        "the same test examples teacher-forced (the prompt in the chat template, then the target and the "
        "end of turn), over the targets' tokens of both tasks. ppl general / domain: "
        f"`{Path(s['heldout']).name}` (general prose) and `{Path(s['domain']).name}` "
        f"(held-out requests and narrations as plain text), {s['max_ppl_tokens']} tokens max each. Δ: vs "
        "the same model's fp32. Speed: "
        f"`edgellm tradeoff` (median of {s['runs']} runs of {s['bench_tokens']} tokens, each variant in its "
        "own process); the tok/s are this host's, not a device's. Pareto: no other variant is at least as "
        "accurate (task), as fast and as small in peak RSS."
    )
    header = (
        "| model | variant | params M | file MB | commands | sensors | task | ppl answers (Δ fp32) | "
        "ppl general (Δ fp32) | ppl domain (Δ fp32) | TTFT ms | decode tok/s | peak RSS MB | Pareto |"
    )
    lines = [
        "# Toolchain demonstration: a domain student for command parsing and sensor narration",
        "",
        setup,
        "",
        method,
        "",
        header,
        "|" + "---|" * 14,
    ]

    def ppl(r: dict, key: str) -> str:
        delta = r.get(key + "_delta")
        return f(r.get(key), ".3f") + (
            f" ({100 * delta:+.1f} %)" if delta is not None and r["variant"] != "fp32" else ""
        )

    for r in report["rows"]:
        lines.append(
            "| "
            + " | ".join(
                [
                    FAMILIES[r["family"]][0],
                    f"`{r['variant']}`",
                    f(r["parameters"], ".1f", 1e-6),
                    f(r["file_mb"], ".1f"),
                    f(r["commands_acc"], ".1f", 100, " %"),
                    f(r["sensors_acc"], ".1f", 100, " %"),
                    f(r["task_acc"], ".1f", 100, " %"),
                    ppl(r, "answer_ppl"),
                    ppl(r, "ppl"),
                    ppl(r, "domain_ppl"),
                    f(r["ttft_ms"], ".0f"),
                    f(r["decode_tok_s"], ".1f"),
                    f(r["peak_rss_mb"], ".0f"),
                    "**yes**" if r["pareto"] else "",
                ]
            )
            + " |"
        )
    peer = report.get("peer")
    if peer:
        lines += [
            "",
            (
                f"Peer (from `{peer['source']}`, {peer['date']}): llama.cpp on {peer['model']}: "
                f"{peer['decode_tok_s']} tok/s decode, TTFT {peer['ttft_ms']} ms "
                f"({peer['prompt_tokens']}-token prompt), peak RSS {peer['peak_rss_mb']} MB."
            ),
        ]
    lines += ["", "## Targets (issue 9)", ""]
    for t in report["targets"]:
        mark = {True: "**met**", False: "**not met**", None: "not measured"}[t["met"]]
        extra = "" if t.get("primary", True) else " (shown for reference)"
        lines.append(f"- {t['target']}: {mark}{extra} — {t['detail']}")
    errors = [(r["family"], r["variant"], e) for r in report["rows"] for e in r["errors"]]
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{fam}:{v}`: {e}" for fam, v, e in errors]
    lines += ["", "## Failures (first few per variant and task)", ""]
    for r in report["rows"]:
        for task, fails in r["failures"].items():
            for x in fails[:2]:
                lines.append(
                    f"- `{r['family']}:{r['variant']}` {task} line {x['line']}: {_code(x['prompt'], 80)} "
                    f"expected {_code(x['expected'], 120)}, got {_code(x['got'], 120)}"
                )
    lines += ["", "## Steps", "", "| step | seconds | peak RSS MB | note |", "|---|---|---|---|"]
    for st in report["steps"]:
        note = st["skipped"] or (
            st["summary"].replace("\n", " ")[:160] if st["name"].startswith(("finetune", "distill", "prune")) else ""
        )
        lines.append(
            f"| {st['name']} | {f(st['seconds'], '.0f') if not st['skipped'] else '—'} | "
            f"{f(st['peak_rss_mb'], '.0f')} | {note} |"
        )
    lines += [
        "",
        (f"Trade-off report (ppl-based Pareto front and a variant per device profile): `{report['tradeoff_dir']}`."),
        "",
        (
            "Reproduce: `.venv/bin/python benchmarks/data/make_task_data.py --check` then "
            "`.venv/bin/python benchmarks/bench_toolchain.py` (see its docstring for options)."
        ),
    ]
    return "\n".join(lines) + "\n"


# --- the pipeline ---------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="smollm2-135m", help="the model to fine-tune (store name or directory)")
    ap.add_argument(
        "--steps-finetune",
        type=int,
        default=400,
        help="LoRA steps (batch 4: 400 = 1.3 epochs of the 1205 train examples)",
    )
    ap.add_argument("--steps-distill", type=int, default=1500, help="student steps")
    ap.add_argument(
        "--steps-qat",
        type=int,
        default=100,
        help="quantization-aware student steps after distilling (its int4 then computes what its fp32 does)",
    )
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--student-config", default="small", help="small | tiny | a JSON file (edgellm distill)")
    ap.add_argument(
        "--teacher-variant",
        default="fp32",
        help="variant of teacher-ft that writes the answers the student learns from",
    )
    ap.add_argument("--prune-ratio", type=float, default=0.3)
    ap.add_argument(
        "--steps-recovery",
        type=int,
        default=300,
        help="distillation steps that recover the pruned model (then --steps-qat quantization-aware ones)",
    )
    ap.add_argument(
        "--steps-copy",
        type=int,
        default=0,
        help="copy-training steps of the distilled student on distill_copy.jsonl (0 = no student-copy family)",
    )
    ap.add_argument(
        "--steps-copy-qat", type=int, help="quantization-aware steps after copy training (default: --steps-qat)"
    )
    ap.add_argument(
        "--steps-student-ft",
        type=int,
        default=0,
        help="LoRA task steps of the distilled student (0 = no student-ft family)",
    )
    ap.add_argument("--student-ft-rank", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument(
        "--seq-len", type=int, default=512, help="training sequence length (the longest sensor example is ~400 tokens)"
    )
    ap.add_argument(
        "--max-time", help="per training step: stop and export after this long (e.g. 2h); rerun to continue"
    )
    ap.add_argument(
        "--quant-calibration", action="store_true", help="activation-aware int8/int4 (weighted by calib_domain.txt)"
    )
    ap.add_argument("--runs", type=int, default=3, help="benchmark runs per variant (median)")
    ap.add_argument("--bench-tokens", type=int, default=64, help="tokens generated per benchmark run")
    ap.add_argument("--max-ppl-tokens", type=int, default=2048)
    ap.add_argument("--threads", type=int, help="CPU threads for eval and benchmarks (default: min(4, cores))")
    ap.add_argument("--limit-test", type=int, help="evaluate on a seeded sample of N examples per test set")
    ap.add_argument("--limit-distill", type=int, help="distill on a seeded sample of N prompts")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 training steps, 8 test examples per task, tiny benchmarks, output in /tmp "
        "(cleared first unless --out-dir is given)",
    )
    ap.add_argument(
        "--skip-train",
        action="store_true",
        help="reuse the fine-tuned, pruned and distilled "
        "models (a distilled one trained for other step counts continues from its checkpoint)",
    )
    ap.add_argument("--requantize-base", action="store_true", help="rebuild the base model's int8/int4 variants")
    ap.add_argument("--fresh", action="store_true", help="ignore cached evaluations")
    ap.add_argument(
        "--prefix", help="store names of the new models (default smollm2-135m-task, quick: quick-smollm2-135m-task)"
    )
    ap.add_argument(
        "--models-dir",
        type=Path,
        help="write the new models as directories here instead of the model store (quick: <out-dir>/models)",
    )
    ap.add_argument(
        "--out-dir", type=Path, help="results (default benchmarks/results; quick: /tmp/edgellm-bench-toolchain-quick)"
    )
    ap.add_argument(
        "--work-dir",
        type=Path,
        help="logs, data copies, eval cache (default <EDGELLM_HOME>/bench_toolchain; quick: <out-dir>/work)",
    )
    args = ap.parse_args(argv)

    if args.quick:
        args.steps_finetune = min(args.steps_finetune, 3)
        args.steps_distill = min(args.steps_distill, 3)
        args.steps_recovery, args.steps_student_ft = min(args.steps_recovery, 3), min(args.steps_student_ft, 3)
        args.steps_copy = min(args.steps_copy, 3)
        args.steps_qat = min(args.steps_qat, 3)
        args.runs, args.bench_tokens, args.max_ppl_tokens = 1, 8, 64
    if args.steps_copy_qat is None:
        args.steps_copy_qat = args.steps_qat
    out_dir = args.out_dir or (QUICK_DIR if args.quick else RESULTS)
    if out_dir == QUICK_DIR:
        # a smoke run starts clean: an older one's checkpoints may be of other data (distill refuses them)
        shutil.rmtree(QUICK_DIR, ignore_errors=True)
    home = Path(os.environ.get("EDGELLM_HOME") or Path.home() / ".cache" / "edgellm")
    work = args.work_dir or (out_dir / "work" if args.quick else home / "bench_toolchain")
    models_dir = args.models_dir or (out_dir / "models" if args.quick else None)
    prefix = args.prefix or ("quick-smollm2-135m-task" if args.quick else "smollm2-135m-task")
    stem = "bench_toolchain"
    out_dir.mkdir(parents=True, exist_ok=True)

    def ref(name: str) -> str:
        return str(models_dir / name) if models_dir else name

    refs = {
        "base": args.base,
        "teacher-ft": ref(f"{prefix}-ft"),
        "teacher-ft-qat": ref(f"{prefix}-ft-qat"),
        "pruned": ref(f"{prefix}-ft-pruned30"),
        "pruned-rec": ref(f"{prefix}-ft-pruned30-rec"),
        "student": ref(f"{prefix}-student"),
        "student-copy": ref(f"{prefix}-student-copy"),
        "student-ft": ref(f"{prefix}-student-ft"),
    }
    runner = Runner(work / "logs", args.threads)
    files = prepare_data(
        work / "data", args.quick, seed=0, limit_test=args.limit_test, limit_distill=args.limit_distill
    )
    t_start = time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    train_common = ["--batch", str(args.batch), "--seq-len", str(args.seq_len), "--quantize", "none"]
    train_common += ["--max-time", args.max_time] if args.max_time else []
    calibration = files["calibration"] if args.quant_calibration else None

    if not exists(refs["base"]):
        raise SystemExit(f"[bench] base model {args.base!r} is not installed: run `edgellm pull {args.base}`")
    if models_dir:
        models_dir.mkdir(parents=True, exist_ok=True)

    # 1. fine-tune the teacher
    if args.skip_train:
        for family in ("teacher-ft", "pruned"):
            if not exists(refs[family]):
                raise SystemExit(
                    f"[bench] --skip-train: {family} model {refs[family]} does not exist; run without "
                    "--skip-train first"
                )
    tune_common = [*train_common, "--quantize", "int4"]  # int4 = 4-bit base + the adapter unmerged

    def tune(family: str, source: str, rank: int, steps: int) -> None:
        """LoRA fine-tune ``source`` on the task data into ``family``; with --skip-train only when
        that model is missing or its int4 is not today's export (the run then resumes from its
        finished checkpoint and only exports)."""
        if args.skip_train and exists(refs[family]) and int4_is_current(refs[family]):
            runner.skip(f"finetune {family}", "--skip-train")
            return
        runner.run(
            f"finetune {family}",
            [
                "finetune",
                refs[source],
                "--data",
                str(files["train"]),
                "--out",
                refs[family],
                "--lora-rank",
                str(rank),
                "--steps",
                str(steps),
                *tune_common,
            ],
        )

    def tune_qat() -> None:
        """teacher-ft's LoRA run (its finished checkpoint: the same fingerprint, so it resumes as
        done) continued by --steps-qat quantization-aware steps of the merged weights."""
        family = "teacher-ft-qat"
        if args.skip_train and exists(refs[family]):
            runner.skip(f"finetune {family}", "--skip-train")
            return
        work_dir, teacher_work = (train_dir(refs[f]) for f in (family, "teacher-ft"))
        work_dir.mkdir(parents=True, exist_ok=True)
        if (teacher_work / "checkpoint.pt").is_file() and not (work_dir / "checkpoint.pt").is_file():
            shutil.copy2(teacher_work / "checkpoint.pt", work_dir / "checkpoint.pt")
        runner.run(
            f"finetune {family}",
            [
                "finetune",
                refs["base"],
                "--data",
                str(files["train"]),
                "--out",
                refs[family],
                "--lora-rank",
                str(args.lora_rank),
                "--steps",
                str(args.steps_finetune),
                *tune_common,
                "--qat-steps",
                str(args.steps_qat),
            ],
        )

    tune("teacher-ft", "base", args.lora_rank, args.steps_finetune)
    if args.steps_qat:
        tune_qat()
    # 2. quantize the base (int8, int4) and the teacher (int8, merged; its int4 comes with the adapter)
    for to in ("int8", "int4"):
        quantize(runner, refs["base"], to, family="base", overwrite=args.requantize_base, calibration=calibration)
    quantize(
        runner, refs["teacher-ft"], "int8", family="teacher-ft", overwrite=not args.skip_train, calibration=calibration
    )

    distilled: dict[Path, list[Path]] = {}  # data -> work dirs of earlier distillations on it: same caches

    def seed_distill_cache(work_dir: Path, data: Path) -> None:
        """Copy the teacher's answers and soft targets from an earlier distillation on ``data`` (they
        are keyed by what they depend on, so a stale copy is recomputed, never used)."""
        work_dir.mkdir(parents=True, exist_ok=True)
        for earlier in distilled.get(data, []):
            for name in ("answers.jsonl", "soft_targets.pt"):
                if (earlier / name).is_file() and not (work_dir / name).is_file():
                    shutil.copy2(earlier / name, work_dir / name)
        distilled.setdefault(data, []).append(work_dir)

    def distill(family: str, student: str, steps: int, data: Path, qat_steps: int) -> None:
        """teacher-ft -> ``family``: a new student (a preset) or a model to continue from, on ``data``,
        then ``qat_steps`` quantization-aware steps; int4 (+ int8) after."""
        reuse = args.skip_train and trained_for(refs[family], steps, qat_steps, data)
        if reuse and exists(student) and created(student) > created(refs[family]):
            reuse = False  # the model it starts from was rebuilt since: not reusable (distill then refuses
            # to resume the old checkpoint, which names other initial weights, and says how to start over)
        if reuse:
            runner.skip(f"distill {family}", "--skip-train")
        else:  # new, or trained for other step counts: a longer run continues its checkpoint
            seed_distill_cache(train_dir(refs[family]), data)
            cmd = [
                "distill",
                "--teacher",
                refs["teacher-ft"],
                "--student-config",
                student,
                "--data",
                str(data),
                "--out",
                refs[family],
                "--steps",
                str(steps),
                "--teacher-variant",
                args.teacher_variant,
                "--qat-steps",
                str(qat_steps),
                *train_common,
            ]
            runner.run(f"distill {family}", cmd + (["--max-new-tokens", "24"] if args.quick else []))
        for to in FAMILIES[family][1][1:]:
            quantize(runner, refs[family], to, family=family, overwrite=not reuse, calibration=calibration)

    # 3. prune the teacher, then recover it by distillation from the unpruned teacher
    if args.skip_train:
        runner.skip("prune teacher-ft", "--skip-train")
    else:
        runner.run(
            "prune teacher-ft",
            [
                "prune",
                refs["teacher-ft"],
                "--calibration",
                str(files["calibration"]),
                "--ratio",
                str(args.prune_ratio),
                "--out",
                refs["pruned"],
            ],
        )
    quantize(runner, refs["pruned"], "int4", family="pruned", overwrite=not args.skip_train, calibration=calibration)
    # 4. distill the student (first: the pruned model's recovery reuses its teacher caches)
    distill("student", args.student_config, args.steps_distill, files["distill"], args.steps_qat)
    distill("pruned-rec", refs["pruned"], args.steps_recovery, files["distill"], args.steps_qat)
    if args.steps_copy:  # the student's second stage: names it has never seen, copied from the prompt
        distill("student-copy", refs["student"], args.steps_copy, files["copy"], args.steps_copy_qat)
    if args.steps_student_ft:
        tune("student-ft", "student", args.student_ft_rank, args.steps_student_ft)
        quantize(
            runner,
            refs["student-ft"],
            "int8",
            family="student-ft",
            overwrite=not args.skip_train,
            calibration=calibration,
        )
    families = [
        f
        for f in FAMILIES
        if (f != "student-ft" or args.steps_student_ft)
        and (f != "teacher-ft-qat" or args.steps_qat)
        and (f != "student-copy" or args.steps_copy)
    ]

    # 5. task accuracy of every variant
    rows: list[Row] = []
    for family in families:
        m, variants = manifest(refs[family]), FAMILIES[family][1]
        n_params = parameters(m)
        for variant in variants:
            row = Row(
                family,
                m.name,
                variant,
                str(m.root),
                n_params,
                round(m.variant_bytes(variant) / 2**20, 1) if variant in m.variants else None,
            )
            rows.append(row)
            if variant not in m.variants:
                row.errors.append(f"no variant {variant}")
                continue
            answers = []  # (mean NLL, tokens) per task
            for task in TASKS:
                rep = evaluate(
                    runner, work / "evals", family, refs[family], variant, task, files[task], args.fresh, args.threads
                )
                if "error" in rep:
                    row.errors.append(f"{task} eval: {rep['error']}")
                    continue
                setattr(row, f"{task}_acc", rep["task_accuracy"])
                row.failures[task] = rep.get("failures", [])
                if rep.get("answer_nll") is not None:
                    answers.append((rep["answer_nll"], rep["answer_tokens"]))
            if len(answers) == len(TASKS):
                tokens = sum(n for _, n in answers)
                row.answer_ppl = math.exp(sum(nll * n for nll, n in answers) / tokens)
            rep = evaluate(
                runner,
                work / "evals",
                family,
                refs[family],
                variant,
                "domain_ppl",
                files["domain"],
                args.fresh,
                args.threads,
                ppl_tokens=args.max_ppl_tokens,
            )
            if "error" in rep:
                row.errors.append(f"domain ppl eval: {rep['error']}")
            else:
                row.domain_ppl = rep["ppl"]
            if row.commands_acc is not None and row.sensors_acc is not None:
                row.task_acc = (row.commands_acc + row.sensors_acc) / 2

    # 6. perplexity and speed: one `edgellm tradeoff` over every variant
    tradeoff_dir = out_dir / f"{stem}_tradeoff"
    measured = [r for r in rows if not r.errors or all("eval" in e for e in r.errors)]
    specs = [f"{refs[r.family]}:{r.variant}" for r in measured]
    targs = [
        "tradeoff",
        *specs,
        "--ppl",
        str(files["heldout"]),
        "--max-ppl-tokens",
        str(args.max_ppl_tokens),
        "--runs",
        str(args.runs),
        "--max-tokens",
        str(args.bench_tokens),
        "--out",
        str(tradeoff_dir),
        "--json",
    ]
    targs += ["--threads", str(args.threads)] if args.threads else []
    code, out = runner.run("tradeoff (ppl + speed)", targs, check=False)
    if code == 0:
        by_path = {(str(Path(x["path"]).resolve()), x["variant"]): x for x in json.loads(out)["rows"]}
        for r in rows:
            x = by_path.get((str(Path(r.path).resolve()), r.variant))
            if x is None:
                continue
            r.ppl, r.ttft_ms, r.decode_tok_s, r.peak_rss_mb = (
                x["ppl"],
                x["ttft_ms"],
                x["decode_tok_s"],
                x["peak_rss_mb"],
            )
            r.file_mb = x["file_mb"] if x.get("file_mb") is not None else r.file_mb
            if x.get("bench_error"):
                r.errors.append(f"benchmark: {x['bench_error']}")
    else:
        for r in rows:
            r.errors.append("tradeoff failed; see its log")
    for r in rows:
        fp32 = find(rows, r.family, "fp32")
        for attr in ("ppl", "domain_ppl", "answer_ppl"):
            if fp32 and getattr(fp32, attr) and getattr(r, attr):
                setattr(r, attr + "_delta", getattr(r, attr) / getattr(fp32, attr) - 1)
    from edgellm_sdk.toolchain.tradeoff import pareto

    ok = [r for r in rows if None not in (r.task_acc, r.decode_tok_s, r.peak_rss_mb)]
    for r, front in zip(ok, pareto([(r.task_acc, r.decode_tok_s, -r.peak_rss_mb) for r in ok])):
        r.pareto = front

    # 7. the report
    test_sizes = {t: sum(1 for x in files[t].read_text(encoding="utf-8").splitlines() if x.strip()) for t in TASKS}
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "wall_s": round(time.time() - t_start),
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "quick": args.quick,
            "base": args.base,
            "lora_rank": args.lora_rank,
            "steps_finetune": args.steps_finetune,
            "steps_distill": args.steps_distill,
            "steps_qat": args.steps_qat,
            "student_config": args.student_config,
            "teacher_variant": args.teacher_variant,
            "prune_ratio": args.prune_ratio,
            "steps_recovery": args.steps_recovery,
            "steps_copy": args.steps_copy,
            "steps_copy_qat": args.steps_copy_qat,
            "steps_student_ft": args.steps_student_ft,
            "student_ft_rank": args.student_ft_rank,
            "batch": args.batch,
            "seq_len": args.seq_len,
            "quant_calibration": args.quant_calibration,
            "runs": args.runs,
            "bench_tokens": args.bench_tokens,
            "max_ppl_tokens": args.max_ppl_tokens,
            "threads": args.threads,
            "limit_test": args.limit_test,
            "limit_distill": args.limit_distill,
            "heldout": str(files["heldout"]),
            "domain": str(files["domain"]),
            "train": str(files["train"]),
            "tests": {t: str(files[t]) for t in TASKS},
            "models": refs,
        },
        "test_sizes": test_sizes,
        "models": {
            family: {
                "name": manifest(refs[family]).name,
                "path": str(manifest(refs[family]).root),
                "source": manifest(refs[family]).source,
            }
            for family in families
        },
        "rows": [{**asdict(r), "key": r.key} for r in rows],
        "targets": targets(rows),
        "peer": llama_cpp_peer(),
        "steps": [asdict(s) for s in runner.steps],
        "tradeoff_dir": str(tradeoff_dir),
    }
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report))
    print("\n" + markdown(report))
    print(f"[bench] wrote {out_dir / stem}.json and .md in {report['wall_s']} s; logs in {runner.log_dir}")
    if models_dir:
        print(f"[bench] models in {models_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
