"""The LoRA work of a round on one machine, with the toolchain's own pieces.

A device: its task file -> (PII redacted) -> samples -> the base model + the global adapter ->
``toolchain.train.train`` (the loop ``edgellm finetune`` runs; FedProx adds its proximal term
to the loss) -> the adapter tensors to send. The server: the initial adapter, the held-out
evaluation of a global adapter, and the export of the final one (``finetune``'s export: int4 =
base + adapter unmerged). Wire tensors are ``adapter_state`` names, ``blocks.{i}.{t}_proj.lora_a``
[r, in] and ``.lora_b`` [out, r] (B unscaled); in fixed-a mode only the B tensors.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.manifest import Manifest
from ..toolchain.finetune import add_lora, export_merged, lora_model, unmerged_adapter
from ..toolchain.lora import adapter_state, save_adapter
from ..toolchain.torch_llama import TorchLlama, torch
from ..toolchain.train import IGNORE, Sample, TrainConfig, collate, lm_loss, mean_loss, train, weights_id
from .aggregation import shared_a
from .plan import RoundPlan


def base_hash(base: Manifest) -> str:
    """What names a base model exactly: the sha256 of its fp32 weights."""
    return weights_id(base, "fp32")


def adapted_model(base: Manifest, plan: RoundPlan, adapter: dict[str, np.ndarray] | None = None) -> TorchLlama:
    """The base model with LoRA adapters set to ``adapter`` (default: the run's initial one);
    in fixed-a mode A is the shared one and frozen, and ``adapter`` holds only B."""
    return adapted_with_metadata(base, plan, adapter)[0]


def adapted_with_metadata(base: Manifest, plan: RoundPlan, adapter: dict | None) -> tuple[TorchLlama, dict]:
    net, metadata = lora_model(base)
    add_lora(net, seed=plan.a_seed, rank=plan.rank, alpha=plan.alpha, targets=plan.target_names)
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            if name.endswith(".lora_a"):
                p.copy_(torch.from_numpy(shared_a(plan.a_seed, name[: -len(".lora_a")], *p.shape)))
                p.requires_grad_(plan.trains_a)
            elif name.endswith(".lora_b"):
                p.zero_()
        for name, value in (adapter or {}).items():
            params[name].copy_(torch.from_numpy(np.asarray(value, np.float32)))
    return net, metadata


def wire_tensors(net: TorchLlama, plan: RoundPlan) -> dict[str, np.ndarray]:
    """The adapter tensors a device sends (only B in fixed-a mode), as float32 numpy."""
    state = adapter_state(net)
    keep = [k for k in state if plan.trains_a or k.endswith(".lora_b")]
    return {k: state[k].float().numpy().copy() for k in keep}


def initial_adapter(base: Manifest, plan: RoundPlan) -> dict[str, np.ndarray]:
    return wire_tensors(adapted_model(base, plan), plan)


@dataclass(frozen=True)
class LocalResult:
    tensors: dict[str, np.ndarray]
    train_loss: float  # mean loss of the last steps
    examples: int
    seconds: float


def train_round(
    base: Manifest, samples: Sequence[Sample], plan: RoundPlan, global_adapter: dict, *, seed: int
) -> LocalResult:
    """One device's local training from the global adapter; returns the tensors in the received order."""
    net = adapted_model(base, plan, global_adapter)
    anchor = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
    loss_fn = lm_loss
    if plan.proximal_mu > 0:

        def loss_fn(model, batch):  # FedProx: stay near the global adapter
            prox = sum(((p - anchor[n]) ** 2).sum() for n, p in model.named_parameters() if n in anchor)
            return lm_loss(model, batch) + 0.5 * plan.proximal_mu * prox

    cfg = TrainConfig(
        steps=plan.steps, batch=plan.batch, seq_len=plan.seq_len, lr=plan.lr, seed=seed, checkpoint_every=plan.steps
    )
    with tempfile.TemporaryDirectory(prefix="edgellm-fed-") as work:
        result = train(net, samples, cfg, work, loss_fn=loss_fn, resume=False)
    out = wire_tensors(net, plan)
    tail = result.losses[-max(1, len(result.losses) // 4) :]
    return LocalResult({k: out[k] for k in global_adapter}, float(np.mean(tail)), len(samples), result.elapsed_s)


@torch.no_grad()
def exact_match(net: TorchLlama, samples: Sequence[Sample], batch: int = 8) -> float:
    """Share of samples whose every answer token (and end of turn) is the model's argmax after the
    true prefix: exactly the samples greedy decoding answers word for word, in one forward each."""
    net.eval()
    hits = 0
    for i in range(0, len(samples), batch):
        b = collate(samples[i : i + batch])
        keep = b["labels"] != IGNORE
        right = (net(b["ids"], keep).argmax(-1) == b["labels"][keep]).float()
        rows = keep.nonzero()[:, 0]
        wrong = torch.zeros(keep.shape[0]).index_add_(0, rows, 1.0 - right)
        hits += int((wrong == 0).sum())
    return hits / max(1, len(samples))


def evaluate_adapter(base: Manifest, plan: RoundPlan, adapter: dict, samples: Sequence[Sample]) -> dict[str, float]:
    """Held-out loss and exact-match accuracy of the global adapter (fp32, on the server)."""
    net = adapted_model(base, plan, adapter)
    return {
        "held-out-loss": mean_loss(net, samples, limit=len(samples)),
        "held-out-accuracy": exact_match(net, samples),
    }


def export_adapter(base: Manifest, plan: RoundPlan, adapter: dict, out: Path, *, name: str, source: dict) -> Manifest:
    """``out/adapter.pt`` (``toolchain.lora.load_adapter`` applies it) and ``out/model``, the
    model directory the Engine loads unchanged (int4 = base + adapter unmerged)."""
    net, metadata = adapted_with_metadata(base, plan, adapter)
    save_adapter(net, out / "adapter.pt", rank=plan.rank, alpha=plan.alpha, targets=plan.target_names, **source)
    unmerged = unmerged_adapter(base, net, rank=plan.rank, alpha=plan.alpha, targets=plan.target_names)
    return export_merged(
        net, metadata, base, out / "model", name=name, source=source, quantize="int4", adapter=unmerged
    )
