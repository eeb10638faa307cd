"""`edgellm federated server | simulate | client | certs` (need the ``federated`` extra: Flower, Python >= 3.11)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.store import DEFAULT_MODEL

if TYPE_CHECKING:
    from .commands import ServerOptions


def add_parser(sub) -> None:
    p = sub.add_parser("federated", help="federated LoRA fine-tuning across devices (Flower)")
    fed = p.add_subparsers(dest="federated_command", required=True)

    s = fed.add_parser("server", help="run a SuperLink and the federated rounds; writes the global adapter + model")
    add_run_options(s)
    s.add_argument("--min-clients", type=int, default=2, help="devices to wait for before the first round")
    s.add_argument("--host", default="127.0.0.1", help="bind address (off loopback TLS is required)")
    s.add_argument("--port", type=int, default=9092)
    s.add_argument("--tls-dir", type=Path, help="ca.crt, server.pem, server.key (see `edgellm federated certs`)")
    s.add_argument("--insecure", action="store_true", help="plain HTTP (loopback only; the default there)")
    s.add_argument(
        "--state",
        choices=("memory", "disk"),
        default="memory",
        help="the SuperLink's state: memory (default; holds up under many devices' uploads), or disk "
        "(<out>/flower/state.db: running devices survive a server restart; SQLite, see README)",
    )
    s.set_defaults(func=cmd_server)

    m = fed.add_parser("simulate", help="the same rounds in Flower's simulation runtime: one virtual device per file")
    add_run_options(m)
    m.add_argument("--data", type=Path, nargs="+", required=True, help="one task JSONL per virtual device")
    m.add_argument("--no-redact", action="store_true", help="train on the data as it is (PII is redacted by default)")
    m.add_argument("--cpus-per-device", type=int, default=1, help="CPUs Ray gives each virtual device's ClientApp")
    m.add_argument("--port", type=int, default=9092, help="the simulation SuperLink's port (loopback)")
    m.set_defaults(func=cmd_simulate)

    c = fed.add_parser("client", help="join a federated run with this device's data (a SuperNode)")
    c.add_argument("--model", default=DEFAULT_MODEL, help="the base model (must be the server's)")
    c.add_argument("--data", type=Path, required=True, help='local task JSONL: {"prompt" or "messages", "target"}')
    c.add_argument("--server", required=True, help="HOST:PORT of `edgellm federated server`")
    c.add_argument("--root-certificates", type=Path, help="the server's ca.crt (TLS; required off loopback)")
    c.add_argument("--no-redact", action="store_true", help="train on the data as it is (PII is redacted by default)")
    c.add_argument("--threads", type=int, default=0, help="CPU threads training may use (default: all cores)")
    c.add_argument("--nice", type=int, default=10, help="scheduling niceness of the training (0-19; default 10)")
    c.add_argument("--max-retries", type=int, default=5, help="connection attempts before giving up")
    c.add_argument("--max-wait", type=float, default=60.0, help="seconds of retrying before giving up")
    c.set_defaults(func=cmd_client)

    t = fed.add_parser("certs", help="make a CA and a server certificate for --tls-dir")
    t.add_argument("dir", type=Path)
    t.add_argument("--host", action="append", default=[], help="the server's DNS name or IP (repeatable)")
    t.set_defaults(func=cmd_certs)


def add_run_options(s) -> None:
    """What a run trains: shared by `server` and `simulate`."""
    s.add_argument("--model", default=DEFAULT_MODEL, help="base model: installed name or model directory")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--strategy", choices=("fedavg", "fedprox"), default="fedavg")
    s.add_argument("--proximal-mu", type=float, default=0.01, help="FedProx's mu (with --strategy fedprox)")
    s.add_argument(
        "--aggregation",
        choices=("svd", "fixed-a", "naive"),
        default="svd",
        help="svd: average B A and re-factor (default); fixed-a: a shared frozen A, FedAvg on B (DP, "
        "half the upload); naive: average A and B (for comparison only); see README",
    )
    s.add_argument("--eval", type=Path, help="held-out task JSONL, evaluated on the server after every round")
    s.add_argument("--out", type=Path, default=Path("federated-run"), help="checkpoints, adapter.pt, model/")
    s.add_argument("--lora-rank", type=int, default=8)
    s.add_argument("--lora-alpha", type=float, help="default: 2 x rank")
    s.add_argument("--targets", default="qkv,o,gate_up,down")
    s.add_argument("--steps", type=int, default=20, help="local training steps per round on each device")
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--batch", type=int, default=4)
    s.add_argument("--seq-len", type=int, default=256)
    s.add_argument("--dp", action="store_true", help="central DP: devices clip, the server adds noise (fixed-a)")
    s.add_argument("--noise-multiplier", type=float, default=1.0)
    s.add_argument("--clipping-norm", type=float, default=1.0)
    s.add_argument("--node-wait", type=float, default=120.0, help="seconds to wait for the devices to connect")
    s.add_argument("--round-timeout", type=float, default=1800.0, help="seconds a round waits for the devices")
    s.add_argument("--app", type=Path, help="a Flower app directory to run instead of the packaged one")


def progress(msg: str) -> None:
    print(f"[edgellm] {msg}", file=sys.stderr, flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every Flower process group we started is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def server_options(args, min_clients: int, **where) -> ServerOptions:
    from .commands import ServerOptions

    settings = {
        "strategy": args.strategy,
        "proximal-mu": args.proximal_mu,
        "aggregation": args.aggregation,
        "rank": args.lora_rank,
        "alpha": args.lora_alpha or 2.0 * args.lora_rank,
        "targets": args.targets,
        "steps": args.steps,
        "lr": args.lr,
        "batch": args.batch,
        "seq-len": args.seq_len,
        "dp": args.dp,
        "noise-multiplier": args.noise_multiplier,
        "clipping-norm": args.clipping_norm,
        "node-wait-s": args.node_wait,
        "round-timeout": args.round_timeout,
    }
    return ServerOptions(model=args.model, out=args.out, rounds=args.rounds, min_clients=min_clients,
                         eval_data=args.eval, settings=settings, app=args.app, **where)  # fmt: skip


def report(summary: dict, out: Path) -> int:
    last = summary["history"][-1] if summary.get("history") else {}
    progress(f"{summary['rounds']} rounds; last: {last}")
    print(out / "model")
    return 0


def cmd_server(args) -> int:
    stop_on_sigterm()
    from .commands import serve

    where = {
        "host": args.host,
        "port": args.port,
        "tls_dir": args.tls_dir,
        "insecure": args.insecure,
        "state": args.state,
    }
    return report(serve(server_options(args, args.min_clients, **where), progress), args.out)


def cmd_simulate(args) -> int:
    stop_on_sigterm()
    from .commands import simulate

    opts = server_options(args, len(args.data), port=args.port)
    summary = simulate(
        opts, args.data, redact=not args.no_redact, cpus_per_node=args.cpus_per_device, progress=progress
    )
    return report(summary, args.out)


def cmd_client(args) -> int:
    stop_on_sigterm()
    from .commands import ClientOptions, join

    opts = ClientOptions(
        model=args.model,
        data=args.data,
        server=args.server,
        root_certificates=args.root_certificates,
        redact=not args.no_redact,
        threads=args.threads,
        nice=args.nice,
        max_retries=args.max_retries,
        max_wait_s=args.max_wait,
    )
    return join(opts, progress, echo=lambda text: print(text, end="", file=sys.stderr, flush=True))


def cmd_certs(args) -> int:
    from .tls import make_certificates

    files = make_certificates(args.dir, args.host)
    progress(f"server: --tls-dir {args.dir}; devices: --root-certificates {files.ca}")
    return 0
