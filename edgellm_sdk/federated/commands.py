"""What ``edgellm federated server | simulate | client`` do, as functions (the CLI parses, these run).

``serve``: a SuperLink on ``host:port`` (loopback unless TLS), then ``flwr run`` of the packaged
app with the run's settings, streaming the ServerApp's log; returns the run's summary. The round
checkpoints in ``<out>`` make a restarted run resume. With ``state="disk"`` the SuperLink keeps its
state in ``<out>/flower/state.db`` so running devices reconnect across a restart; its SQLite gives
up after 5 s of lock contention, which 4 devices uploading 8 MB adapters at once on a 2-core
server exceed, so the default is Flower's in-memory state (restart the devices with the server).
``join``: checks the device's model and data first (bad lines all at once), then runs a SuperNode
until the server goes away.
``simulate``: the same ServerApp and ClientApp in Flower's simulation runtime (a SuperLink with
``--simulation``, virtual nodes in Ray workers), one virtual node per data file, for quick
experiments on one machine.
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
    SIMULATION_DATA_SEPARATOR,
    UNREACHABLE,
    FlowerProcess,
    flower_env,
    flwr_run_argv,
    free_port,
    is_loopback,
    require_flower,
    require_simulation,
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
    state: str = "memory"  # the SuperLink's state: "memory", or "disk" (<out>/flower/state.db)


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


def run_config_of(opts: ServerOptions, base) -> dict:
    return {
        "model": str(base.root),
        "out": str(opts.out.resolve()),
        "rounds": opts.rounds,
        "min-clients": opts.min_clients,
        "eval": str(opts.eval_data.resolve()) if opts.eval_data else "",
        **opts.settings,
    }


def state_db(opts: ServerOptions) -> Path | None:
    return opts.out.resolve() / "flower" / "state.db" if opts.state == "disk" else None


def serve(opts: ServerOptions, progress=print) -> dict:
    require_flower()
    tls = tls_for(opts.host, opts.tls_dir, opts.insecure)
    base = ModelStore().resolve(opts.model)
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "localhost") else opts.host  # flwr run connects here
    link = superlink_argv(opts.host, opts.port, state_db(opts), tls)
    how = "TLS" if tls else "plain HTTP, loopback"
    return run_app(opts, run_config_of(opts, base), link, local, tls.ca if tls else None, how, [], progress)


def simulate(
    opts: ServerOptions, data: list[Path], *, redact: bool = True, cpus_per_node: int = 1, progress=print
) -> dict:
    """The run of ``serve``, in Flower's simulation runtime: one virtual node per ``data`` file."""
    require_flower()
    require_simulation()
    if not data:
        raise ToolchainError("simulate needs one --data file per virtual device")
    if any(SIMULATION_DATA_SEPARATOR in str(p) for p in data):
        raise ToolchainError(f"data paths must not contain {SIMULATION_DATA_SEPARATOR!r}")
    for path in data:
        load_samples_check(opts.model, path, redact)
    base = ModelStore().resolve(opts.model)
    run_config = {
        **run_config_of(opts, base),
        "min-clients": len(data),
        "simulation-data": SIMULATION_DATA_SEPARATOR.join(str(p.resolve()) for p in data),
        "simulation-redact": redact,
    }
    link = [*superlink_argv("127.0.0.1", opts.port, state_db(opts), None), "--simulation"]
    nodes = f"num_supernodes={len(data)} client_resources_num_cpus={cpus_per_node}"
    how = f"simulation runtime, {len(data)} virtual devices"
    return run_app(opts, run_config, link, "127.0.0.1", None, how, ["--federation-config", nodes], progress)


def load_samples_check(model: str, data: Path, redact: bool) -> None:
    """Bad lines of a device's file, all at once, before anything starts (torch: it tokenizes)."""
    from .device import load_samples

    load_samples(ModelStore().resolve(model), data, 4096, redact_pii=redact)


def run_app(opts: ServerOptions, run_config: dict, link_argv, local, root_ca, how, extra, progress) -> dict:
    """A SuperLink (``link_argv``) and ``flwr run`` of the app on it; the run's summary."""
    out = opts.out.resolve()
    home = out / "flower"
    env = flower_env(home)
    address = f"[{local}]:{opts.port}" if ":" in local else f"{local}:{opts.port}"
    write_connection(home, CONNECTION, address, root_ca)
    config = write_run_config(home / "run_config.toml", run_config)
    with FlowerProcess(link_argv, env, home / "superlink.log") as link:
        wait_for_port(local, opts.port, link, 60.0)
        progress(f"SuperLink on {opts.host}:{opts.port} ({how}); submitting the run")
        with FlowerProcess([*flwr_run_argv(opts.app or app_dir(), CONNECTION, config), *extra], env) as run:
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
    threads: int = 0  # torch threads of the training (0: torch's default, all cores)
    nice: int = 10  # the training yields the CPU to the device's own work
    max_retries: int = 5
    max_wait_s: float = 60.0
    log: Path | None = None


def join(opts: ClientOptions, progress=print, echo=lambda text: None) -> int:
    """Run this device's SuperNode until the server is gone; returns its exit code. ``echo``
    gets the SuperNode's log as it grows."""
    if opts.threads < 0:
        raise ToolchainError(f"--threads must be >= 0 (0: all cores), got {opts.threads}")
    if not 0 <= opts.nice <= 19:
        raise ToolchainError(f"--nice must be 0..19 (0: normal priority), got {opts.nice}")
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
    node_config["threads"], node_config["nice"] = opts.threads, opts.nice
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
