"""What every ``edgellm`` subcommand shares: model/profile arguments, one Engine from them, Ctrl-C.

A leaf: subcommand modules (sensors, speech, bench, doctor, toolchain) import this module, never
``edgellm_sdk.cli`` itself, which imports them to build the parser.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
from typing import TYPE_CHECKING, Any

from ..models.store import DEFAULT_MODEL

if TYPE_CHECKING:
    from ..engine import Engine
    from ..profiles import DeviceProfile

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """ "60s", "5m", "1h", "90" -> seconds (an argparse ``type=``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 5m or 1h")
    return float(m[1]) * _UNITS[m[2]]


def add_profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=os.environ.get("EDGELLM_PROFILE") or None,
        help="device profile: auto (detect this board), a name (rpi4, rpi5, jetson-orin-nano, "
        "jetson-nano, x86-64) or a .toml file (default: $EDGELLM_PROFILE, else none)",
    )


def profile_arg(value: str | None) -> DeviceProfile | None:
    """The DeviceProfile ``--profile`` names (auto: detected and fitted to this machine), or None."""
    from ..profiles import named

    return named(value)


def add_model_args(
    p: argparse.ArgumentParser, *, variant_help: str = "onnx variant (default: the manifest's default)"
) -> None:
    """The arguments ``engine_from_args`` reads: model, variant, threads, context, profile, speculation."""
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help="installed model name or model directory")
    p.add_argument("--variant", help=variant_help)
    p.add_argument("--threads", type=int, help="CPU threads (default: the profile's, else min(4, cores))")
    p.add_argument("--max-context", type=int, help="KV cache size in tokens (default 2048)")
    add_profile_arg(p)
    p.add_argument(
        "--speculative",
        default="auto",
        choices=("auto", "off"),
        help="speculative decoding: auto (prompt lookup, grammar fast-forward, --draft) or off",
    )
    p.add_argument("--draft", help="draft model sharing the tokenizer (e.g. a student from `edgellm distill`)")


def engine_from_args(args: argparse.Namespace, **options: Any) -> Engine:
    """One Engine from the ``add_model_args`` arguments; ``options`` go to ``Engine.load`` as well."""
    from ..engine import Engine

    return Engine.load(
        args.model,
        variant=args.variant,
        threads=args.threads,
        max_context=args.max_context,
        profile=profile_arg(args.profile),
        speculative=args.speculative,
        draft=args.draft,
        **options,
    )


def cancel_on_sigint() -> threading.Event:
    """First Ctrl-C ends the current generation (finish_reason "cancelled"); a second one exits."""
    cancel = threading.Event()

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
    return cancel
