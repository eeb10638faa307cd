"""What ``edgellm federated server`` and ``... client`` do, as functions (the CLI parses, these run).

``serve``: a SuperLink on ``host:port`` (loopback unless TLS), then ``flwr run`` of the packaged
app with the run's settings, streaming the ServerApp's log; returns the run's summary. The
SuperLink keeps its state in ``<out>/flower/state.db`` so devices reconnect across a restart, and
the round checkpoints in ``<out>`` make the restarted run resume. ``join``: checks the device's
model and data first (bad lines all at once), then runs a SuperNode until the server goes away.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import ToolchainError
from ..models.store import ModelStore
from .runtime import (
    UNREACHABLE,
    FlowerProcess,
    flower_env,
    flwr_run_argv,
    free_port,
    is_loopback,
    require_flower,
    superlink_argv,
    supernode_argv,
    wait_for_port,
    write_connection,
    write_run_config,
)
from .tls import TlsFiles

CONNECTION = "edgellm"


def app_dir() -> Path:
    """The packaged Flower app (a pyproject.toml naming this package's ServerApp / ClientApp)."""
    return Path(str(resources.files(__package__) / "app"))


@dataclass
class ServerOptions:
    model: str
    out: Path
    rounds: int = 3
    min_clients: int = 2
    host: str = "127.0.0.1"
    port: int = 9092
    tls_dir: Path | None = None
    insecure: bool = False
    eval_data: Path | None = None
    settings: dict = field(default_factory=dict)  # more run config: strategy, aggregation, rank, steps, dp...
    timeout_s: float = 24 * 3600.0
    app: Path | None = None  # another Flower app directory (tests wrap the ClientApp)


def tls_for(host: str, tls_dir: Path | None, insecure: bool) -> TlsFiles | None:
    """The server's TLS files; plain HTTP only on loopback."""
    if tls_dir is None:
        if not is_loopback(host):
            how = "--insecure is refused off loopback" if insecure else "pass --tls-dir"
            raise ToolchainError(
                f"binding to {host} sends adapters over the network: it needs TLS ({how}); "
                f"`edgellm federated certs DIR --host {host}` makes a CA and a server certificate"
            )
        return None
    if insecure:
        raise ToolchainError("pass either --tls-dir or --insecure, not both")
    tls = TlsFiles.in_dir(tls_dir)
    if tls.missing():
        raise ToolchainError(
            f"{tls_dir} lacks {', '.join(p.name for p in tls.missing())}; see `edgellm federated certs`"
        )
    return tls


def serve(opts: ServerOptions, progress=print) -> dict:
    require_flower()
    tls = tls_for(opts.host, opts.tls_dir, opts.insecure)
    base = ModelStore().resolve(opts.model)
    out = opts.out.resolve()
    home = out / "flower"
    env = flower_env(home)
    run_config = {
        "model": str(base.root),
        "out": str(out),
        "rounds": opts.rounds,
        "min-clients": opts.min_clients,
        "eval": str(opts.eval_data.resolve()) if opts.eval_data else "",
        **opts.settings,
    }
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "localhost") else opts.host  # flwr run connects here
    address = f"[{local}]:{opts.port}" if ":" in local else f"{local}:{opts.port}"
    write_connection(home, CONNECTION, address, tls.ca if tls else None)
    config = write_run_config(home / "run_config.toml", run_config)
    with FlowerProcess(
        superlink_argv(opts.host, opts.port, home / "state.db", tls), env, home / "superlink.log"
    ) as link:
        wait_for_port(local, opts.port, link, 60.0)
        progress(
            f"SuperLink on {opts.host}:{opts.port} ({'TLS' if tls else 'plain HTTP, loopback'}); submitting the run"
        )
        with FlowerProcess(flwr_run_argv(opts.app or app_dir(), CONNECTION, config), env) as run:
            code = run.wait(opts.timeout_s)
    summary_path = out / "summary.json"
    if code != 0 or not summary_path.is_file():
        raise ToolchainError(
            f"the federated run failed (flwr run exit {code}); SuperLink log: {home / 'superlink.log'}"
        )
    return json.loads(summary_path.read_text())


@dataclass
class ClientOptions:
    model: str
    data: Path
    server: str  # HOST:PORT
    root_certificates: Path | None = None
    redact: bool = True
    max_retries: int = 5
    max_wait_s: float = 60.0
    log: Path | None = None


def join(opts: ClientOptions, progress=print, echo=lambda text: None) -> int:
    """Run this device's SuperNode until the server is gone; returns its exit code. ``echo``
    gets the SuperNode's log as it grows."""
    require_flower()
    host, sep, port = opts.server.rpartition(":")
    if not sep or not port.isdigit():
        raise ToolchainError(f"--server must be HOST:PORT, got {opts.server!r}")
    host = host.strip("[]")
    if opts.root_certificates is None and not is_loopback(host):
        raise ToolchainError(f"{host} is not loopback: pass --root-certificates CA.crt (the server's ca.crt) for TLS")
    if opts.root_certificates is not None and not opts.root_certificates.is_file():
        raise ToolchainError(f"--root-certificates {opts.root_certificates} does not exist")
    from .device import load_samples  # torch: the device trains

    base = ModelStore().resolve(opts.model)
    samples = load_samples(base, opts.data, 4096, redact_pii=opts.redact)
    progress(f"{len(samples)} local examples{' (PII redacted)' if opts.redact else ''}; connecting to {opts.server}")
    node_config = {"model": str(base.root), "data-path": str(opts.data.resolve()), "redact": opts.redact}
    with tempfile.TemporaryDirectory(prefix="edgellm-flower-") as home:
        env = flower_env(Path(home))
        argv = supernode_argv(
            opts.server,
            node_config,
            root_ca=opts.root_certificates,
            port=free_port(),
            max_retries=opts.max_retries,
            max_wait_s=opts.max_wait_s,
        )
        log = opts.log or Path(home) / "supernode.log"
        with FlowerProcess(argv, env, log) as node:
            code = follow(node, log, echo)
    if code == UNREACHABLE:
        raise ToolchainError(
            f"cannot reach the federated server at {opts.server} (gave up after {opts.max_retries} tries, "
            f"{opts.max_wait_s:.0f} s): is `edgellm federated server` running there (or has its run ended), "
            "the port open, and --root-certificates the server's CA?"
        )
    return code


GAVE_UP = "Giving up reconnection"  # a SuperNode that lost its SuperLink logs this, then idles
NO_CONNECTION = "exit-codes/305"  # ... and this when it never connected (its exit status is then 1)


def follow(node: FlowerProcess, log: Path, echo) -> int:
    """Echo the SuperNode's log until it exits; one that gave up reconnecting is stopped (UNREACHABLE)."""
    seen = 0
    while True:
        code = node.popen.poll()
        text = log.read_text(errors="replace") if log.is_file() else ""
        if len(text) > seen:
            echo(text[seen:])
            seen = len(text)
        if code is not None:
            return UNREACHABLE if NO_CONNECTION in text else code
        if GAVE_UP in text:
            node.stop()
            return UNREACHABLE
        time.sleep(0.5)
