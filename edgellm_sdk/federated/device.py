"""What a device does with its own data before and during a round (no Flower imports).

The task file is read by ``toolchain.data`` (bad lines all reported at once) and, unless the
device opted out (``--no-redact``), every prompt, system message and target is passed through
``edgellm_sdk.privacy.redact`` before it is tokenized: PII never reaches the training samples,
let alone the adapter. A round's plan is checked against the device's own base model first.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import MissingDependency, ToolchainError
from ..models.manifest import Manifest
from ..toolchain.data import Example
from ..toolchain.finetune import task_samples
from ..toolchain.train import Sample
from .plan import RoundPlan


def redact_example(example: Example) -> Example:
    try:
        from ..privacy import redact
    except ImportError as e:
        raise MissingDependency(
            "edgellm_sdk.privacy",
            "privacy",
            "PII redaction needs: pip install 'edgellm-sdk[federated]' "
            "(Python >= 3.11); or pass --no-redact to train on the text as it is",
        ) from e
    messages = tuple({**m, "content": redact(m["content"])} for m in example.messages)
    target = redact(example.target) if example.target is not None else None
    return replace(example, messages=messages, target=target)


def load_samples(base: Manifest, data: str | Path, seq_len: int, *, redact_pii: bool = True) -> list[Sample]:
    """The device's training samples (redacted by default) in the base model's chat template."""
    return task_samples(base, data, seq_len, rewrite=redact_example if redact_pii else None)


def check_plan(plan: RoundPlan, own_hash: str) -> None:
    """Refuse to train for a server whose base model is not the device's."""
    if plan.base_hash != own_hash:
        raise ToolchainError(
            f"refused: the server trains base model {plan.base_hash[:12]}…, this device has "
            f"{own_hash[:12]}…; install the server's base model on the device (edgellm pull) and restart"
        )
