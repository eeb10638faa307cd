"""`edgellm finetune`: LoRA fine-tuning on a task file, merged and exported as a new model.

    task.jsonl -> chat-template samples (loss on the target tokens + end of turn)
    model fp32 weights -> TorchLlama + LoRA (base frozen) -> train (checkpoints, resume)
    -> adapter.pt in the work dir -> merge -> model dir with fp32, q8 (merged) and int4 (default:
       the base quantized to 4 bits + the adapter unmerged in fp32; see lora.py)
    or, with qat_steps: merge -> that many quantization-aware steps of the merged linear weights
       (qat.py) -> the int4 variant is the merged model itself, exactly (no adapter, base speed)

The work dir (default ``<out>.train``) keeps ``checkpoint.pt`` and ``adapter.pt``; running
the same command again resumes from the checkpoint, or only re-exports when training is done.
With ``merge=False`` only the adapter is written. ``adapter.pt`` is the LoRA before any
quantization-aware steps (those train the merged weights, not the adapter).

The steps are also public helpers (``task_samples``, ``lora_model``, ``unmerged_adapter``,
``export_merged``) so federated fine-tuning (``edgellm_sdk.federated``) runs the same data path,
the same training loop (``train.train``) and the same export on each device and on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..models.manifest import Manifest
from ..models.store import ModelStore
from .checkpoint import load_weights, output_dir, work_dir_for
from .data import Example, read_examples
from .gguf_llama import LlamaWeights
from .lora import TARGETS, adapter_arrays, apply_lora, merge_lora, save_adapter
from .qat import train_on_grid
from .torch_llama import TorchLlama, torch
from .train import (
    Progress,
    Sample,
    TrainConfig,
    TrainResult,
    export,
    file_sha256,
    mean_loss,
    target_samples,
    train,
    weights_id,
)


@dataclass
class FinetuneResult:
    manifest: Manifest | None  # the exported model (None with merge=False)
    adapter: Path
    train: TrainResult
    loss_before: float  # mean task loss of the base model (on up to 64 examples)
    loss_after: float  # ... and of the fine-tuned one
    qat: TrainResult | None = None  # the quantization-aware steps, if any


def finetune(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    lora_rank: int = 8,
    lora_alpha: float | None = None,
    lora_dropout: float = 0.0,
    targets: tuple[str, ...] = TARGETS,
    steps: int = 100,
    lr: float = 2e-4,
    batch: int = 4,
    seq_len: int = 256,
    seed: int = 0,
    checkpoint_every: int = 50,
    max_time_s: float | None = None,
    resume: bool = True,
    merge: bool = True,
    quantize: str | None = "int4",
    qat_steps: int = 0,
    name: str | None = None,
    work_dir: str | Path | None = None,
    store: ModelStore | None = None,
    progress: Callable[[str], None] = lambda msg: None,
    on_step: Callable[[Progress], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` (a store name or model dir) on ``data`` (task JSONL with targets);
    ``out`` is a model directory path or a name in the model store."""
    if qat_steps < 0 or (qat_steps and not merge):
        raise ValueError(
            f"qat_steps must be >= 0 and needs merge=True (it trains the merged weights), got "
            f"{qat_steps} with merge={merge}"
        )
    cfg = TrainConfig(
        steps=steps,
        batch=batch,
        seq_len=seq_len,
        lr=lr,
        seed=seed,
        checkpoint_every=checkpoint_every,
        max_time_s=max_time_s,
    )
    base = (store or ModelStore()).resolve(model)
    out = output_dir(out, store)
    work = Path(work_dir) if work_dir else work_dir_for(out)
    samples = task_samples(base, data, seq_len)

    progress(f"loading {base.name} (fp32)")
    net, metadata = lora_model(base)
    loss_before = mean_loss(net, samples)
    alpha = lora_alpha or 2.0 * lora_rank
    add_lora(net, seed=seed, rank=lora_rank, alpha=alpha, dropout=lora_dropout, targets=targets)
    fingerprint = {
        "model": weights_id(base, "fp32"),
        "data": file_sha256(data),
        "lora": {"rank": lora_rank, "alpha": alpha, "dropout": lora_dropout, "targets": list(targets)},
    }
    progress(
        f"training {sum(p.numel() for p in net.parameters() if p.requires_grad):,} LoRA parameters on "
        f"{len(samples)} examples"
    )
    result = train(net, samples, cfg, work, fingerprint=fingerprint, resume=resume, on_step=on_step)
    adapter = save_adapter(
        net, work / "adapter.pt", rank=lora_rank, alpha=alpha, targets=targets, base=base.name, steps=result.steps
    )
    if not merge:
        return FinetuneResult(None, adapter, result, loss_before, mean_loss(net, samples))
    unmerged, result_qat = None, None
    if quantize == "int4" and not qat_steps:
        unmerged = unmerged_adapter(base, net, rank=lora_rank, alpha=alpha, targets=targets)
    merge_lora(net)  # the merged linears are trainable, the rest stays frozen
    if qat_steps and result.stopped == "done":
        progress(f"quantization-aware training: {qat_steps} steps of the merged weights through the int4 grid")
        result_qat = train_on_grid(
            net,
            samples,
            cfg,
            work,
            steps=qat_steps,
            after=result,
            fingerprint=fingerprint,
            resume=resume,
            on_step=on_step,
        )
    loss_after = mean_loss(net, samples)
    source = {
        "finetuned_from": base.name,
        "data": Path(data).name,
        "lora_rank": lora_rank,
        "steps": result.steps,
        "qat_steps": qat_steps,
        "loss_before": round(loss_before, 4),
        "loss_after": round(loss_after, 4),
    }
    manifest = export_merged(
        net,
        metadata,
        base,
        out,
        name=name or out.name,
        source=source,
        quantize=quantize,
        progress=progress,
        adapter=unmerged,
    )
    return FinetuneResult(manifest, adapter, result, loss_before, loss_after, result_qat)


# --- the steps, shared with federated fine-tuning -------------------------------------------------
def task_samples(
    base: Manifest, data: str | Path, seq_len: int, *, rewrite: Callable[[Example], Example] | None = None
) -> list[Sample]:
    """The task file's examples (bad lines all reported at once) as chat samples of the base's
    template; ``rewrite`` changes each example first (the federated client redacts PII there)."""
    examples = read_examples(data, need_target=True)
    if rewrite is not None:
        examples = [rewrite(ex) for ex in examples]
    return target_samples(base.root, examples, seq_len)


def lora_model(base: Manifest) -> tuple[TorchLlama, dict]:
    """The base model's fp32 weights in torch (add_lora then wraps its linears), and the metadata
    its export needs."""
    weights = load_weights(base)
    return TorchLlama.from_weights(weights), weights.metadata


def add_lora(
    net: TorchLlama,
    *,
    seed: int,
    rank: int,
    alpha: float,
    dropout: float = 0.0,
    targets: tuple[str, ...] = TARGETS,
) -> None:
    """Fresh LoRA adapters on ``net`` (base frozen), their initial values a function of ``seed``."""
    torch.manual_seed(seed)  # a run is reproducible from its seed
    apply_lora(net, rank=rank, alpha=alpha, dropout=dropout, targets=targets)


def unmerged_adapter(
    base: Manifest, net: TorchLlama, *, rank: int, alpha: float, targets: tuple[str, ...]
) -> tuple[LlamaWeights, dict, dict]:
    """What ``export`` needs for an int4 variant of base + the adapter of ``net`` unmerged."""
    info = {"rank": rank, "alpha": alpha, "targets": list(targets), "precision": "fp32"}
    return load_weights(base), adapter_arrays(net), info


def export_merged(
    net: TorchLlama,
    metadata: dict,
    base: Manifest,
    out: Path,
    *,
    name: str,
    source: dict,
    quantize: str | None,
    progress: Callable[[str], None] = lambda msg: None,
    adapter: tuple[LlamaWeights, dict, dict] | None = None,
) -> Manifest:
    """Merge the adapter of ``net`` (in place; no-op when merged) and export a model directory:
    fp32 + q8 merged, ``quantize`` as the default (int4 with ``adapter``: base + adapter unmerged)."""
    merge_lora(net)
    progress("exporting")
    return export(
        net.to_weights(metadata),
        out,
        tokenizer_from=base.root,
        name=name,
        source=source,
        quantize=quantize,
        progress=progress,
        adapter=adapter,
    )
