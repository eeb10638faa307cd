"""The `edgellm doctor` subcommand."""

from __future__ import annotations

import argparse

from ..server import DEFAULT_HOST, DEFAULT_PORT


def add_parser(sub) -> None:
    from ..cli.common import add_profile_arg

    p = sub.add_parser(
        "doctor",
        help="check this device: profile, CPU, memory, execution providers, audio, "
        "serial ports, ROS 2, MQTT, the serve port, installed models (exit 1 on any FAIL)",
    )
    add_profile_arg(p)
    p.add_argument(
        "--mqtt",
        metavar="[USER:PASS@]HOST[:PORT]",
        help="also check this MQTT broker: TCP connect + MQTT CONNECT (default: not checked)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="re-hash every model file (catches bit rot; ~1 GB takes 10-30 s on an SD card). Default: "
        "re-hash only files whose size or mtime changed since they were last verified",
    )
    p.add_argument(
        "--serve-host", default=DEFAULT_HOST, help=f"where `edgellm serve` would listen (default {DEFAULT_HOST})"
    )
    p.add_argument(
        "--serve-port", type=int, default=DEFAULT_PORT, help=f"its port, checked free (default {DEFAULT_PORT})"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds each check may take (default 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # a fake /proc, /dev tree (tests)
    p.set_defaults(func=cmd_doctor, profile="auto")


def cmd_doctor(args) -> int:
    from . import diagnose

    report = diagnose(
        args.profile, root=args.root, mqtt=args.mqtt, verify=args.verify, timeout=args.timeout,
        serve_host=args.serve_host, serve_port=args.serve_port,
    )  # fmt: skip
    print(report.to_json() if args.json else report.table(), flush=True)
    return report.exit_code
