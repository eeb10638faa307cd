"""The ``edgellm`` command line: the parser and the generate/chat/pull/models commands.

Nothing imports this module (the console script runs ``main``); subcommands share ``cli.common``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from ..doctor.core import human
from ..errors import EdgeLLMError
from .common import add_model_args, cancel_on_sigint, engine_from_args


def _progress(msg: str) -> None:
    print(f"[edgellm] {msg}", file=sys.stderr, flush=True)


def cmd_pull(args) -> int:
    from ..models.store import ModelStore

    converters = None  # onnx / gguf missing: a pull that must convert says what to install
    try:  # the host toolchain builds the ONNX graphs; pulling a model directory works without it
        from ..toolchain.convert import CONVERTERS

        converters = CONVERTERS
    except ImportError:
        pass
    bar = _StepBar()
    manifest = ModelStore().pull(args.model, name=args.name, force=args.force, progress=bar.step, converters=converters)
    bar.close()
    total = sum(f["size"] for f in manifest.files.values())
    print(
        f"{manifest.name}: {manifest.root} ({human(total)}; variants: {', '.join(sorted(manifest.variants))}; "
        f"default: {manifest.default_variant})"
    )
    return 0


def cmd_models(args) -> int:
    from ..models.store import KNOWN_MODELS, ModelStore

    store = ModelStore()
    installed = store.installed()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "path": str(m.root),
                        "default_variant": m.default_variant,
                        "variants": {v: m.variant_bytes(v) for v in m.variants},
                    }
                    for m in installed
                ]
            )
        )
        return 0
    print(f"installed in {store.models_dir}:" if installed else f"no models installed in {store.models_dir}")
    for m in installed:
        sizes = ", ".join(
            f"{v}{'*' if v == m.default_variant else ''} {human(m.variant_bytes(v))}" for v in sorted(m.variants)
        )
        print(f"  {m.name:<20} {sizes}")
    missing = sorted(set(KNOWN_MODELS) - {m.name for m in installed})
    if missing:
        print("available to pull: " + ", ".join(f"{n} ({KNOWN_MODELS[n].description})" for n in missing))
    return 0


def _sampling(args):
    from ..sampling import Sampling

    return Sampling(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def _generation_options(args, cancel: threading.Event) -> dict:
    return {
        "max_tokens": args.max_tokens,
        "stop": args.stop or (),
        "sampling": _sampling(args),
        "deadline_s": args.deadline,
        "cancel": cancel,
    }


def _print_stream(tokens):
    """Write tokens as they come; return the last one (it carries finish_reason and usage)."""
    last = None
    for token in tokens:
        sys.stdout.write(token.text)
        sys.stdout.flush()
        last = token
    sys.stdout.write("\n")
    return last


def _print_usage(engine, token, verbose: bool = False) -> None:
    u = token.usage
    drafted = (
        f", accepted {u.accepted_tokens}/{u.drafted_tokens} drafted ({100 * u.acceptance_rate:.0f} %)"
        if u.drafted_tokens
        else ""
    )
    print(
        f"[{engine.manifest.name}/{engine.variant}] finish={token.finish_reason} prompt={u.prompt_tokens} tok, "
        f"generated={u.completion_tokens} tok, TTFT {u.ttft_s * 1000:.0f} ms, "
        f"decode {u.decode_tokens_per_s:.1f} tok/s{drafted}, load {engine.load_s:.2f} s",
        file=sys.stderr,
    )
    for warning in u.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if verbose:
        print(engine.speculation.summary() + " since load", file=sys.stderr)


def _read_schema(path: str | None):
    if path is None:
        return None
    try:
        return json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as e:
        raise ValueError(f"--schema {path}: not a readable JSON file ({e})") from e


def cmd_generate(args) -> int:
    prompt = args.prompt if args.prompt != "-" else sys.stdin.read()
    constraint = {"schema": _read_schema(args.schema), "regex": args.regex}
    cancel = cancel_on_sigint()
    with engine_from_args(args) as engine:
        if not args.raw:
            messages = [{"role": "system", "content": args.system}] if args.system else []
            prompt = messages + [{"role": "user", "content": prompt}]
        last = _print_stream(engine.generate(prompt, **_generation_options(args, cancel), **constraint))
        if not args.quiet:
            _print_usage(engine, last, args.verbose)
    return 0


def cmd_chat(args) -> int:
    cancel = cancel_on_sigint()
    with engine_from_args(args) as engine:
        session = engine.session(system=args.system)
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                try:
                    line = input("you> ")
                except EOFError:
                    print()
                    return 0
            else:
                line = sys.stdin.readline()
                if not line:
                    return 0
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                return 0
            if line == "/reset":
                session.history.clear()
                continue
            if line == "/stats":
                print(_cache_stats(engine))
                continue
            cancel.clear()
            if interactive:
                sys.stdout.write("bot> ")
            last = _print_stream(session.stream(line, **_generation_options(args, cancel)))
            if args.verbose and last is not None:
                _print_usage(engine, last, verbose=True)


def _cache_stats(engine) -> str:
    parts = [f"prefilled {engine.prefill_tokens} tokens", engine.speculation.summary()]
    for name in ("prefix_cache", "response_cache", "semantic_cache"):
        cache = getattr(engine, name)
        if cache is None:
            parts.append(f"{name}: off")
        else:
            st = cache.stats
            budget = f" of {st.max_bytes / 2**20:.0f}" if st.max_bytes >= 0 else ""
            parts.append(
                f"{name}: {st.hits} hits / {st.misses} misses ({100 * st.hit_rate:.0f} %), "
                f"{st.entries} entries, {st.bytes / 2**20:.1f}{budget} MB"
            )
    return "; ".join(parts)


class _StepBar:
    """A progress bar over pull steps (tqdm when available, plain lines otherwise)."""

    STEPS = 8

    def __init__(self):
        try:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.STEPS,
                unit="step",
                file=sys.stderr,
                leave=True,
                bar_format="{desc:<40} {bar} {n_fmt}/{total_fmt} [{elapsed}]",
            )
        except ImportError:
            self._bar = None

    def step(self, msg: str) -> None:
        if self._bar is None:
            _progress(msg)
        else:
            self._bar.set_description_str(msg[:40])
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.n = self._bar.total
            self._bar.refresh()
            self._bar.close()


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--stop", action="append", help="stop string (repeatable)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--deadline", type=float, help="seconds; ends with finish_reason=deadline")
    p.add_argument("--system", help="system prompt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgellm", description="Run small language models on edge devices.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pull", help="install a model: a known name, a .gguf file, or a model directory")
    p.add_argument("model", help="e.g. smollm2-135m, ./model.gguf, ./onnx-community-dir")
    p.add_argument("--name", help="install under this name")
    p.add_argument("--force", action="store_true", help="rebuild even if installed and intact")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("models", help="list installed models with sizes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("generate", help="generate text for one prompt, streamed")
    p.add_argument("prompt", help="the prompt ('-' reads stdin)")
    _add_generation_args(p)
    p.add_argument("--raw", action="store_true", help="no chat template: continue the text as is")
    p.add_argument("--schema", help="JSON Schema file: the output is JSON that matches it")
    p.add_argument("--regex", help="the output matches this regular expression")
    p.add_argument("--quiet", "-q", action="store_true", help="no usage line on stderr")
    p.add_argument("--verbose", "-v", action="store_true", help="also speculation statistics per draft source")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("chat", help="interactive chat (reads lines from stdin when piped)")
    _add_generation_args(p)
    p.add_argument("--verbose", "-v", action="store_true", help="usage line after each reply")
    p.set_defaults(func=cmd_chat)

    from ..sensors.cli import add_parser as add_sensors

    add_sensors(sub)
    from ..speech.cli import add_parser as add_voice
    from ..speech.cli import add_wyoming_parser

    add_voice(sub)
    add_wyoming_parser(sub)
    from ..bench import add_parser as add_bench

    add_bench(sub)
    from ..doctor.cli import add_parser as add_doctor

    add_doctor(sub)
    from ..toolchain.cli_opt import add_parser as add_optimize

    add_optimize(sub)
    from ..toolchain.cli_eval import add_parser as add_eval

    add_eval(sub)
    from ..toolchain.cli_train import add_parser as add_train

    add_train(sub)
    from ..server.cli import add_parser as add_serve

    add_serve(sub)
    from ..federated.cli import add_parser as add_federated

    add_federated(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EdgeLLMError, ValueError) as e:
        print(f"edgellm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
