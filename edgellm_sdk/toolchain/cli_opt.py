"""`edgellm quantize` and `edgellm prune`: host-side commands (extra `tools`)."""

from __future__ import annotations

import json
import sys


def _tools():
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        from ..errors import MissingDependency

        raise MissingDependency("onnx", "tools") from e


def _progress(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))


def cmd_quantize(args) -> int:
    _tools()
    from .checkpoint import model_dir
    from .quantize import quantize

    source = model_dir(args.model).source
    if args.to == "int4" and "finetuned_from" in source and not args.quiet:
        print(
            f"  note: {args.model} is a LoRA fine-tune of {source['finetuned_from']}; re-quantizing its merged "
            "weights to 4 bits can round the fine-tune away. `edgellm finetune ... --quantize int4` (rerun: it "
            "only re-exports) writes the 4-bit base + the adapter unmerged instead.",
            file=sys.stderr,
        )

    _, variant, info = quantize(
        args.model,
        args.to,
        block=args.block,
        symmetric=args.symmetric,
        offsets=False if args.integer_zero_points else None,
        method=args.method,
        exclude=tuple(args.exclude or ()),
        calibration=args.calibration,
        accuracy_level=args.accuracy_level,
        name=args.name,
        make_default=args.default,
        overwrite=args.overwrite,
        progress=_progress(args.quiet),
    )
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(
            f"{args.model}: variant {variant} written ({info['file_mb']:.1f} MB vs fp32 {info['fp32_mb']:.1f} MB, "
            f"{info['seconds']:.1f} s); use it with --variant {variant}"
        )
    return 0


def cmd_prune(args) -> int:
    _tools()
    from .checkpoint import output_dir
    from .prune import prune

    report = prune(
        args.model,
        args.calibration,
        output_dir(args.out),
        ratio=args.ratio,
        drop_layers=args.drop_layers,
        max_tokens=args.max_tokens,
        progress=_progress(args.quiet),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        pct = 100 * (1 - report.parameters_after / report.parameters_before)
        print(
            f"pruned {args.model} -> {report.model_dir}: {report.parameters_before / 1e6:.1f} M -> "
            f"{report.parameters_after / 1e6:.1f} M parameters (-{pct:.0f} %), FFN widths "
            f"{sorted(set(report.ffn_after))}, dropped layers {report.dropped_layers or 'none'}, "
            f"{report.inactive_neurons} neurons were inactive on {report.calibration_tokens} calibration tokens"
        )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="add an int8/int4 weight-only variant to a model (extra: tools)")
    p.add_argument("model", help="installed model name or model directory")
    p.add_argument("--to", required=True, choices=("int8", "int4"))
    p.add_argument(
        "--block",
        type=int,
        default=32,
        choices=(16, 32, 64, 128, 256),
        help="input columns per scale (smaller = more accurate, larger file)",
    )
    p.add_argument("--symmetric", action="store_true", help="no zero points (scale only)")
    p.add_argument(
        "--integer-zero-points",
        action="store_true",
        help="int4: integer zero points instead of float block offsets (faster decode, less accurate)",
    )
    p.add_argument(
        "--method",
        choices=("mse", "rtn"),
        default="mse",
        help="mse: per-block clip search minimizing the error (default); rtn: plain round-to-nearest",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="keep fp32: 'lm_head' (tied embedding/output) or linear names like 'layers.0.*', "
        "'*.down_proj' (repeatable; mixed precision)",
    )
    p.add_argument("--calibration", help="domain text: weigh the error by its activations (activation-aware)")
    p.add_argument(
        "--accuracy-level", type=int, default=4, help="MatMulNBits compute type: 4 = int8 activations (fast), 0 = fp32"
    )
    p.add_argument("--name", help="variant name (default from the options, e.g. int4, int8-b64)")
    p.add_argument("--default", action="store_true", help="make it the model's default variant")
    p.add_argument("--overwrite", action="store_true", help="replace a variant of the same name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("prune", help="remove MLP neurons (and layers) unused on domain text (extra: tools)")
    p.add_argument("model", help="installed model name or model directory")
    p.add_argument("--calibration", required=True, help="text from the target domain")
    p.add_argument("--ratio", type=float, default=0.3, help="fraction of each layer's MLP neurons to remove")
    p.add_argument("--drop-layers", type=int, default=0, help="also remove the N least influential layers")
    p.add_argument("--max-tokens", type=int, default=4096, help="calibration tokens to read")
    p.add_argument("--out", required=True, help="new model: a store name or a directory")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_prune)
