"""Deployment files: systemd units (devices/systemd), udev rules (devices/udev) and the board
install scripts (devices/rpi, devices/jetson).

Nothing here changes the machine: units are rendered into tmp dirs and checked with
`systemd-analyze verify`; the install scripts run only with --dry-run (or stop at the board check)
with fake apt-get / useradd / systemctl / ... first on PATH that record any call, and the tests
assert none was made.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from edgellm_sdk.models.store import DEFAULT_MODEL

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ROOT / "devices"
SYSTEMD = DEVICES / "systemd"
RENDER = SYSTEMD / "render-units.sh"
ROS_WRAPPER = SYSTEMD / "edgellm-ros-launch"
PROFILE_LIB = DEVICES / "common" / "profile-lib.sh"
UDEV_RULES = DEVICES / "udev" / "99-edgellm-sensors.rules"
INSTALLERS = {"rpi": DEVICES / "rpi" / "install.sh", "jetson": DEVICES / "jetson" / "install.sh"}
SHELL_SCRIPTS = [*INSTALLERS.values(), DEVICES / "common" / "install-lib.sh", PROFILE_LIB, RENDER, ROS_WRAPPER]
TEMPLATES = sorted(SYSTEMD.glob("*.service.in"))
UNIT_NAMES = [t.name.removesuffix(".in") for t in TEMPLATES]
PROFILE_FILES = sorted((DEVICES / "profiles").glob("*.toml"))
# the real profiles when they exist; otherwise a minimal fixture
PROFILE_PARAMS = [p.stem for p in PROFILE_FILES] or ["fixture"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
BASH = shutil.which("bash") or "/bin/bash"

# commands the install scripts may only print under --dry-run: faked first on PATH, calls recorded
FAKED = [
    "apt-get",
    "apt",
    "dpkg",
    "useradd",
    "usermod",
    "groupadd",
    "adduser",
    "systemctl",
    "udevadm",
    "runuser",
    "sudo",
    "su",
    "install",
    "cp",
    "chown",
    "chmod",
    "ln",
    "pip",
    "pip3",
    "colcon",
    "rosdep",
]
# what a real install creates; a dry run must leave these as they were
SYSTEM_PATHS = [
    "/opt/edgellm",
    "/var/lib/edgellm",
    "/etc/edgellm",
    "/etc/default/edgellm",
    "/etc/systemd/system/edgellm-voice.service",
    "/etc/systemd/system/edgellm-ros.service",
    "/etc/systemd/system/edgellm-sensors@.service",
    "/etc/udev/rules.d/99-edgellm-sensors.rules",
]


# --- helpers ---------------------------------------------------------------------------------


def profile_file(name: str, tmp_path: Path) -> Path:
    if name != "fixture":
        return DEVICES / "profiles" / f"{name}.toml"
    path = tmp_path / "fixture.toml"
    path.write_text('name = "fixture"\nmatch = []\n\n[memory]\nbudget_mb = 1024\n', encoding="utf-8")
    return path


def toml_budget(path: Path) -> int:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads(path.read_text(encoding="utf-8"))["memory"]["budget_mb"]


def margin_of(template: Path) -> int:
    m = re.search(r"^# edgellm-render: memory-margin-mb=(\d+)\s*$", template.read_text(encoding="utf-8"), re.MULTILINE)
    assert m, f"{template.name} declares no memory margin"
    return int(m.group(1))


def render(profile: Path | str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(RENDER), str(profile), str(out)], check=False, capture_output=True, text=True, timeout=60
    )


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat), comments and blank lines dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def make_verifiable(unit_dir: Path, fake_root: Path) -> None:
    """Point the units' /opt/edgellm executables at executables that exist (verify checks them)."""
    for unit in unit_dir.glob("*.service"):
        lines = []
        for line in unit.read_text(encoding="utf-8").splitlines():
            if re.match(r"^Exec\w*=", line):
                for path in re.findall(r"/opt/edgellm/\S+", line):
                    fake = fake_root / path.lstrip("/")
                    fake.parent.mkdir(parents=True, exist_ok=True)
                    fake.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
                    fake.chmod(0o755)
                    line = line.replace(path, str(fake))
            lines.append(line)
        unit.write_text("\n".join(lines) + "\n", encoding="utf-8")


def verify_name(unit: str) -> str:
    """systemd-analyze verifies an instance of a template unit (foo@.service -> foo@example.service)."""
    return unit.replace("@.", "@example.")


def systemd_verify(unit_dir: Path, unit: str) -> list[str]:
    """Problems systemd-analyze verify reports for one unit (its exit status and the lines naming it)."""
    r = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_dir / verify_name(unit))],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=unit_dir,
    )
    stem = unit.split("@")[0].removesuffix(".service")
    mine = [ln for ln in (r.stdout + r.stderr).splitlines() if stem in ln or str(unit_dir) in ln]
    return ([f"exit status {r.returncode}"] if r.returncode else []) + mine


def env_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (quotes removed): (set, commented examples)."""
    values: dict[str, str] = {}
    examples: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$", raw.strip())
        if m:
            value = m.group(3).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            (examples if m.group(1) else values).setdefault(m.group(2), value)
    return values, examples


@pytest.fixture
def fakes(tmp_path):
    """A PATH whose first directory fakes the system-changing commands; returns (env, calls())."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    log = tmp_path / "calls.log"
    for name in FAKED:
        script = fake_bin / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 0\n', encoding="utf-8")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGELLM_", "ROS_"))}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"

    def calls() -> list[str]:
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    return env, calls


def system_state() -> dict[str, bool]:
    state = {p: os.path.lexists(p) for p in SYSTEM_PATHS}
    user = subprocess.run(["getent", "passwd", "edgellm"], check=False, capture_output=True)
    state["user edgellm"] = user.returncode == 0
    return state


def run_installer(board: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(INSTALLERS[board]), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


def profile_arg(board: str, tmp_path: Path) -> str:
    name = {"rpi": "rpi4", "jetson": "jetson-orin-nano"}[board]
    return name if (DEVICES / "profiles" / f"{name}.toml").exists() else str(profile_file("fixture", tmp_path))


def is_board(board: str) -> bool:
    try:
        model = Path("/proc/device-tree/model").read_bytes().decode(errors="replace")
    except OSError:
        model = ""
    if board == "rpi":
        return "Raspberry Pi" in model
    return "Jetson" in model or Path("/etc/nv_tegra_release").exists()


# --- systemd units ------------------------------------------------------------------------------


def test_templates_exist():
    assert {"edgellm-voice.service", "edgellm-ros.service", "edgellm-sensors@.service"} <= set(UNIT_NAMES)
    assert os.access(RENDER, os.X_OK) and os.access(ROS_WRAPPER, os.X_OK)


@pytest.mark.parametrize("profile_name", PROFILE_PARAMS)
def test_memory_max_comes_from_the_profile(profile_name, tmp_path):
    profile = profile_file(profile_name, tmp_path)
    r = render(profile, tmp_path / "units")
    assert r.returncode == 0, r.stderr
    budget = toml_budget(profile)
    for template in TEMPLATES:
        unit = template.name.removesuffix(".in")
        text = (tmp_path / "units" / unit).read_text(encoding="utf-8")
        assert not re.search(r"@[A-Z_]+@", text), f"{unit}: placeholder left"
        service = parse_unit(text)["Service"]
        assert service["MemoryMax"] == [f"{budget + margin_of(template)}M"], unit
        assert f"EDGELLM_MAX_RSS_MB={budget}" in service["Environment"], unit
        assert f"{unit}: MemoryMax={budget + margin_of(template)}M" in r.stdout


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
@pytest.mark.parametrize("profile_name", PROFILE_PARAMS)
def test_units_pass_systemd_analyze_verify(profile_name, tmp_path):
    units = tmp_path / "units"
    r = render(profile_file(profile_name, tmp_path), units)
    assert r.returncode == 0, r.stderr
    make_verifiable(units, tmp_path / "root")
    for unit in UNIT_NAMES:
        if "@." in unit:
            shutil.copy(units / unit, units / verify_name(unit))
        assert systemd_verify(units, unit) == [], unit


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
def test_systemd_verify_check_catches_a_broken_unit(tmp_path):
    """The verify check above would fail on a bad unit (verify exits 0 on unknown keys; we read its output)."""
    units = tmp_path / "units"
    assert render(profile_file("fixture", tmp_path), units).returncode == 0
    make_verifiable(units, tmp_path / "root")
    voice = units / "edgellm-voice.service"
    broken = voice.read_text(encoding="utf-8").replace("Restart=on-failure", "Restart=on-failur\nMemoryMaxx=1G")
    voice.write_text(broken, encoding="utf-8")
    problems = systemd_verify(units, "edgellm-voice.service")
    assert any("MemoryMaxx" in p for p in problems) and any("on-failur" in p for p in problems), problems
    (units / "edgellm-ros.service").write_text("[Service]\nExecStart=/nonexistent/edgellm\n", encoding="utf-8")
    assert systemd_verify(units, "edgellm-ros.service")


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_unit_settings(unit, tmp_path):
    assert render(profile_file("fixture", tmp_path), tmp_path / "units").returncode == 0
    parsed = parse_unit((tmp_path / "units" / unit).read_text(encoding="utf-8"))
    s, u = parsed["Service"], parsed["Unit"]
    assert s["Restart"] == ["on-failure"]
    assert 1 <= int(s["RestartSec"][0]) <= 60
    assert int(u["StartLimitBurst"][0]) >= 3 and int(u["StartLimitIntervalSec"][0]) >= 5 * int(s["RestartSec"][0])
    assert s["User"] == ["edgellm"] and s["Group"] == ["edgellm"]
    assert "EDGELLM_HOME=/var/lib/edgellm" in s["Environment"]
    assert s["StateDirectory"] == ["edgellm"]
    assert s["EnvironmentFile"][0] == "-/etc/default/edgellm"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert s[key] == [value], key
    # these would hide /dev/snd, serial adapters or the Jetson GPU nodes from the service
    assert not {"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"} & set(s)
    groups = " ".join(s["SupplementaryGroups"]).split()
    assert ("dialout" if "sensors" in unit else "audio") in groups
    assert s["KillSignal"] == ["SIGINT"] and "130" in s["SuccessExitStatus"]
    assert parsed["Install"]["WantedBy"] == ["multi-user.target"]
    exec_start = s["ExecStart"][0]
    if "voice" in unit:
        assert exec_start == "/opt/edgellm/bin/edgellm voice $EDGELLM_VOICE_ARGS"
    elif "sensors" in unit:
        assert exec_start.startswith("/opt/edgellm/bin/edgellm sensors --source ${EDGELLM_SENSOR_SOURCE}")
        assert "/etc/edgellm/sensors/%i.env" in s["EnvironmentFile"]
        assert u["AssertPathExists"] == ["/etc/edgellm/sensors/%i.env"]
    else:
        assert exec_start == "/opt/edgellm/libexec/edgellm-ros-launch"
        assert s["KillMode"] == ["mixed"]


def test_documented_margins_match_the_templates():
    table = (SYSTEMD / "README.md").read_text(encoding="utf-8")
    board_readme = (DEVICES / "rpi" / "README.md").read_text(encoding="utf-8")
    for template in TEMPLATES:
        unit = template.name.removesuffix(".in")
        row = next(ln for ln in table.splitlines() if ln.startswith(f"| `{unit.replace('@.', '@NAME.')}`"))
        assert row.rstrip().endswith(f"| {margin_of(template)} MB |"), row
        assert f"{margin_of(template)} MB (" in board_readme, unit


def test_ros_board_follows_the_profile(tmp_path):
    for name, board in (("rpi4", "rpi"), ("jetson-orin-nano", "jetson"), ("x86-64", "rpi")):
        profile = DEVICES / "profiles" / f"{name}.toml"
        if not profile.exists():
            profile = tmp_path / f"{name}.toml"
            profile.write_text("[memory]\nbudget_mb = 512\n", encoding="utf-8")
        assert render(profile, tmp_path / name).returncode == 0
        text = (tmp_path / name / "edgellm-ros.service").read_text(encoding="utf-8")
        assert f"Environment=EDGELLM_ROS_BOARD={board}\n" in text
    launch = (ROOT / "ros2_pkg" / "edgellm_ros" / "launch" / "edgellm.launch.py").read_text(encoding="utf-8")
    assert 'choices=["rpi", "jetson"]' in launch


@pytest.mark.parametrize(
    "body, message",
    [
        ('name = "x"\n', "no [memory] budget_mb"),
        ('[memory]\nbudget_mb = "big"\n', "whole number"),
        ("[memory]\nbudget_mb = 0\n", "> 0"),
        ("[memory]\nbudget_mb = 1.5\n", "whole number"),
        ("[runtime]\nbudget_mb = 512\n[memory]\nother = 1\n", "no [memory] budget_mb"),
    ],
)
def test_render_refuses_bad_profiles(body, message, tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text(body, encoding="utf-8")
    r = render(profile, tmp_path / "units")
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert not list((tmp_path / "units").glob("*.service"))


def test_render_reads_toml_integer_forms(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text(
        "[runtime]\nthreads = 2\n\n[memory]   # the budget\n  budget_mb = 1_536  # MB\n", encoding="utf-8"
    )
    assert render(profile, tmp_path / "units").returncode == 0
    assert "MemoryMax=2048M" in (tmp_path / "units" / "edgellm-voice.service").read_text(encoding="utf-8")
    r = render("no-such-profile", tmp_path / "units2")
    assert r.returncode != 0 and "no profile 'no-such-profile'" in r.stderr


@pytest.mark.skipif(tomllib is None or not PROFILE_FILES, reason="needs tomllib and devices/profiles/*.toml")
@pytest.mark.parametrize("profile", PROFILE_FILES, ids=lambda p: p.stem)
def test_bash_profile_readers_agree_with_tomllib(profile):
    data = tomllib.loads(profile.read_text(encoding="utf-8"))
    r = subprocess.run(
        [BASH, str(RENDER), "--budget", str(profile)], check=False, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0 and int(r.stdout) == data["memory"]["budget_mb"], r.stderr
    r = subprocess.run(
        [BASH, "-c", f'source "{PROFILE_LIB}"; profile_matches "{profile}"'],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0 and r.stdout.splitlines() == data.get("match", []), r.stderr


def test_example_options_are_accepted_by_the_cli():
    from edgellm_sdk.cli import build_parser

    parser = build_parser()
    sensors, sensor_examples = env_file(SYSTEMD / "sensors-example.env")
    for source in (sensors["EDGELLM_SENSOR_SOURCE"], sensor_examples["EDGELLM_SENSOR_SOURCE"]):
        args = parser.parse_args(["sensors", "--source", source, *sensors["EDGELLM_SENSOR_ARGS"].split()])
        assert args.source == source and args.rules
    defaults, examples = env_file(SYSTEMD / "edgellm.default")
    for voice_args in (defaults["EDGELLM_VOICE_ARGS"], examples["EDGELLM_VOICE_ARGS"]):
        parser.parse_args(["voice", *voice_args.split()])
    parser.parse_args(["sensors", "--source", "loop://", *examples["EDGELLM_SENSOR_ARGS"].split()])
    launch = (ROOT / "ros2_pkg" / "edgellm_ros" / "launch" / "edgellm.launch.py").read_text(encoding="utf-8")
    for arg in defaults["EDGELLM_ROS_LAUNCH_ARGS"].split():
        name, _, value = arg.partition(":=")
        assert f'DeclareLaunchArgument("{name}"' in launch and value


# --- the ROS 2 wrapper ------------------------------------------------------------------------


@pytest.fixture
def fake_ros(tmp_path, fakes):
    """A fake /opt/ros/<distro>, a built workspace and a `ros2` that records its arguments."""
    env, _ = fakes
    ros_root = tmp_path / "opt-ros"
    (ros_root / "jazzy").mkdir(parents=True)
    (ros_root / "jazzy" / "setup.bash").write_text("export FAKE_ROS_SOURCED=jazzy\n", encoding="utf-8")
    ws = tmp_path / "ws"
    (ws / "install").mkdir(parents=True)
    (ws / "install" / "setup.bash").write_text("export FAKE_WS_SOURCED=1\n", encoding="utf-8")
    fake_bin = Path(env["PATH"].split(os.pathsep)[0])
    record = tmp_path / "ros2.txt"
    (fake_bin / "ros2").write_text(
        f'#!/bin/sh\n{{ echo "$*"; echo "ros=$FAKE_ROS_SOURCED ws=$FAKE_WS_SOURCED"; echo "$PYTHONPATH"; }}'
        f' > "{record}"\n',
        encoding="utf-8",
    )
    (fake_bin / "ros2").chmod(0o755)
    (fake_bin / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    (fake_bin / "python3").chmod(0o755)
    env.update(EDGELLM_ROS_ROOT=str(ros_root), EDGELLM_ROS_WS=str(ws), EDGELLM_VENV=sys.prefix)
    return env, record, ros_root


def test_ros_wrapper_sources_ros_and_execs_launch(fake_ros):
    env, record, _ = fake_ros
    env.update(EDGELLM_ROS_BOARD="jetson", EDGELLM_ROS_LAUNCH_ARGS="speech:=false narrator:=true")
    r = subprocess.run([str(ROS_WRAPPER)], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    args, sourced, pythonpath = record.read_text(encoding="utf-8").splitlines()
    assert args == "launch edgellm_ros edgellm.launch.py board:=jetson speech:=false narrator:=true"
    assert sourced == "ros=jazzy ws=1"
    assert sysconfig.get_paths()["purelib"] in pythonpath.split(os.pathsep)


def test_ros_wrapper_fails_clearly_without_ros(fake_ros, tmp_path):
    env, record, ros_root = fake_ros
    env["EDGELLM_ROS_WS"] = str(tmp_path / "missing-ws")
    r = subprocess.run([str(ROS_WRAPPER)], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "missing-ws/install/setup.bash not found" in r.stderr
    env["ROS_DISTRO"] = "humble"
    r = subprocess.run([str(ROS_WRAPPER)], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "ROS 2 'humble' is not installed" in r.stderr
    (ros_root / "rolling").mkdir()
    (ros_root / "rolling" / "setup.bash").write_text("\n", encoding="utf-8")
    del env["ROS_DISTRO"]
    r = subprocess.run([str(ROS_WRAPPER)], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "set ROS_DISTRO" in r.stderr
    assert not record.exists()


# --- udev rules ------------------------------------------------------------------------------

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNELS", "SUBSYSTEMS", "DRIVERS", "ATTRS", "TAGS", "TEST", "RESULT", "CONST"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "LABEL", "GOTO", "RUN", "OPTIONS", "SECLABEL", "IMPORT"}
BOTH = {"KERNEL", "SUBSYSTEM", "DRIVER", "NAME", "SYMLINK", "ENV", "ATTR", "SYSCTL", "TAG", "PROGRAM"}
NEEDS_ATTR = {"ATTR", "ATTRS", "ENV", "SYSCTL", "IMPORT", "SECLABEL", "CONST"}
TOKEN = re.compile(r'\s*([A-Z]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def udev_rule_errors(text: str) -> list[str]:
    """udev rules syntax: comma-separated KEY[{attr}] OP "value" tokens with known keys, operators
    that fit the key (match vs assignment), and every GOTO target defined by a LABEL."""
    errors, gotos, labels = [], set(), set()
    lines = text.replace("\\\n", "").splitlines()
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pos, tokens = 0, 0
        while pos < len(line):
            m = TOKEN.match(line, pos)
            if not m:
                errors.append(f"line {n}: cannot parse at {line[pos:]!r}")
                break
            key, attr, op, value = m.group(1), m.group(2), m.group(3), m.group(4)
            tokens += 1
            if key not in MATCH_ONLY | ASSIGN_ONLY | BOTH:
                errors.append(f"line {n}: unknown key {key}")
            elif key in MATCH_ONLY and op not in ("==", "!="):
                errors.append(f"line {n}: {key} is a match key, got {op}")
            elif key in ASSIGN_ONLY and op in ("==", "!="):
                errors.append(f"line {n}: {key} is an assignment, got {op}")
            if key in NEEDS_ATTR and not attr:
                errors.append(f"line {n}: {key} needs {{attribute}}")
            if key == "MODE" and not re.fullmatch(r"0?[0-7]{3,4}", value):
                errors.append(f"line {n}: bad MODE {value!r}")
            if key == "GOTO":
                gotos.add(value)
            if key == "LABEL":
                labels.add(value)
            for sub in re.findall(r"\$(\w+)", value):
                if sub not in {
                    "env",
                    "attr",
                    "kernel",
                    "number",
                    "devpath",
                    "id",
                    "driver",
                    "major",
                    "minor",
                    "result",
                    "parent",
                    "name",
                    "links",
                    "root",
                    "sys",
                    "devnode",
                    "tempnode",
                }:
                    errors.append(f"line {n}: unknown substitution ${sub}")
            pos = m.end()  # the token regex needs a comma or the end of the line after each value
        if tokens and line.rstrip().endswith(","):
            errors.append(f"line {n}: trailing comma")
    errors += [f"GOTO {g!r} has no LABEL" for g in sorted(gotos - labels)]
    return errors


def test_udev_checker_finds_errors():
    assert udev_rule_errors('KERNEL=="ttyUSB*", SYMLINK+="x"\nLABEL="end"\n') == []
    bad = (
        'ATTRS{idVendor}="0403", GROUP=="dialout"\nFOO=="1"\nENV="x"\nMODE="rw"\nGOTO="nowhere"\n'
        'KERNEL=="a" SYMLINK+="b"\n'
    )
    errors = udev_rule_errors(bad)
    for needle in (
        "ATTRS is a match key",
        "GROUP is an assignment",
        "unknown key FOO",
        "ENV needs",
        "bad MODE",
        "'nowhere' has no LABEL",
        "cannot parse at 'KERNEL",
    ):
        assert any(needle in e for e in errors), (needle, errors)


def test_udev_rules_syntax():
    text = UDEV_RULES.read_text(encoding="utf-8")
    assert udev_rule_errors(text) == []
    # the commented examples users are told to copy must be valid rules too
    examples = [ln[2:] for ln in text.splitlines() if re.match(r"^# (ATTRS|ENV|KERNEL|SUBSYSTEM)\{?", ln)]
    assert len(examples) >= 3
    assert udev_rule_errors("\n".join(examples)) == []
    assert all('SYMLINK+="edgellm/' in ex and 'GROUP="dialout"' in ex and 'MODE="0660"' in ex for ex in examples)


def test_udev_rules_content():
    text = UDEV_RULES.read_text(encoding="utf-8")
    rules = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for vendor in ("0403", "1a86", "10c4", "2341"):  # FTDI, WCH CH340, Silicon Labs CP210x, Arduino
        assert any(f'ATTRS{{idVendor}}=="{vendor}' in ln for ln in rules), vendor
    assert 'GROUP="dialout", MODE="0660"' in text
    assert re.search(r'SYMLINK\+="edgellm/\$env\{EDGELLM_CHIP\}-\$env\{ID_SERIAL_SHORT\}"', text)
    assert "udevadm info -a -n /dev/ttyUSB0" in text
    assert rules[0].startswith('ACTION=="remove", GOTO=')


def test_udevadm_verify(tmp_path):
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed; the syntax check above covers the rules")
    if subprocess.run([udevadm, "verify", "--help"], check=False, capture_output=True).returncode != 0:
        pytest.skip("this udevadm has no 'verify' (systemd < 254); the syntax check above covers the rules")
    r = subprocess.run([udevadm, "verify", str(UDEV_RULES)], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- shell scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(DEVICES)))
def test_shell_syntax(script):
    r = subprocess.run([BASH, "-n", str(script)], check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = script.read_text(encoding="utf-8")
    if text.startswith("#!"):
        assert "set -euo pipefail" in text or "set -eo pipefail" in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(DEVICES)))
def test_shellcheck(script):
    r = subprocess.run(
        ["shellcheck", "-x", str(script)], check=False, capture_output=True, text=True, timeout=60, cwd=script.parent
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("board", INSTALLERS)
def test_board_check_refuses_on_another_board(board, fakes):
    if is_board(board):
        pytest.skip(f"this machine is a {board}")
    env, calls = fakes
    before = system_state()
    r = run_installer(board, ["--dry-run"], env)
    assert r.returncode == 1
    assert "is not a" in r.stderr and "--force" in r.stderr, r.stderr
    # without --dry-run too: it stops before touching anything (a fake Python, should it get further)
    fake_python = Path(env["PATH"].split(os.pathsep)[0]) / "install"
    r = run_installer(board, [], {**env, "EDGELLM_PYTHON": str(fake_python)})
    assert r.returncode == 1 and "--force" in r.stderr
    assert calls() == [] and system_state() == before


@pytest.mark.parametrize("board", INSTALLERS)
def test_dry_run_prints_the_plan_and_changes_nothing(board, fakes, tmp_path):
    env, calls = fakes
    before = system_state()
    args = ["--dry-run", "--force", "--profile", profile_arg(board, tmp_path)]
    if board == "jetson":
        args += ["--ort-index", "https://pypi.jetson-ai-lab.io/jp6/cu126"]
    r = run_installer(board, args, env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    planned = [ln.removeprefix("[dry-run] ") for ln in out.splitlines() if ln.startswith("[dry-run] ")]
    assert not any(ln.startswith("+ ") for ln in out.splitlines()), "a command was run"
    assert calls() == [], calls()
    assert system_state() == before

    def planned_has(*words):
        return any(all(w in ln for w in words) for ln in planned)

    assert planned_has("useradd", "--system", "edgellm") or "user edgellm exists" in out
    assert planned_has("-m venv /opt/edgellm") or "venv exists" in out
    assert planned_has("pip install", "edgellm-sdk[speech,serial,mqtt,structured")
    assert planned_has("runuser -u edgellm", f"edgellm pull {DEFAULT_MODEL}")  # the installer's default is the SDK's
    for unit in UNIT_NAMES:
        assert planned_has("install -m 0644", f"/etc/systemd/system/{unit}")
    budget = toml_budget(profile_file(args[3], tmp_path) if "/" not in args[3] else Path(args[3]))
    assert f"edgellm-voice.service: MemoryMax={budget + margin_of(SYSTEMD / 'edgellm-voice.service.in')}M" in out
    assert planned_has("/etc/udev/rules.d/99-edgellm-sensors.rules")
    assert planned_has("systemctl daemon-reload")
    assert planned_has("runuser -u edgellm", "edgellm doctor --profile")
    if board == "jetson":
        uninstall = next(i for i, ln in enumerate(planned) if "pip uninstall" in ln)
        gpu = next(i for i, ln in enumerate(planned) if "install" in ln and "onnxruntime-gpu" in ln and i > uninstall)
        assert "onnxruntime onnxruntime-gpu" in planned[uninstall]
        assert "--index-url https://pypi.jetson-ai-lab.io/jp6/cu126" in planned[gpu]
        assert "CUDAExecutionProvider" in planned[gpu + 1]


def test_dry_run_local_sdk_and_ros(fakes, tmp_path):
    env, calls = fakes
    ros_root = tmp_path / "ros"
    (ros_root / "jazzy").mkdir(parents=True)
    (ros_root / "jazzy" / "setup.bash").write_text("\n", encoding="utf-8")
    env["EDGELLM_ROS_ROOT"] = str(ros_root)
    r = run_installer(
        "rpi",
        [
            "--dry-run",
            "--force",
            "--profile",
            profile_arg("rpi", tmp_path),
            "--sdk",
            str(ROOT),
            "--ros",
            "--enable",
            "voice",
            "--enable",
            "sensors@greenhouse",
            "--no-pull",
        ],
        env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"pip install --disable-pip-version-check '{ROOT}[speech,serial,mqtt,structured,tools]'" in out
    assert "'numpy<2'" in out and "colcon build" in out and "ROS 2 workspace /opt/edgellm/ros2_ws (ROS 2 jazzy)" in out
    assert "systemctl enable --now edgellm-voice.service" in out
    assert "systemctl enable --now edgellm-sensors@greenhouse.service" in out
    assert "skipped (--no-pull)" in out and not re.search(r"^\[dry-run\] .*edgellm pull", out, re.MULTILINE)
    assert calls() == []
    r = run_installer("rpi", ["--dry-run", "--force", "--sdk", str(tmp_path / "nope.whl")], env)
    assert r.returncode == 1 and "no such file" in r.stderr
    r = run_installer("rpi", ["--dry-run", "--force", "--enable", "everything"], env)
    assert r.returncode == 1 and "expected voice, ros or sensors@NAME" in r.stderr
    r = run_installer("rpi", ["--dry-run", "--bogus"], env)
    assert r.returncode == 1 and "unknown option --bogus" in r.stderr


@pytest.mark.skipif(not (DEVICES / "profiles" / "rpi5.toml").exists(), reason="needs devices/profiles/rpi5.toml")
def test_profile_detected_from_the_device_tree(fakes, tmp_path):
    env, calls = fakes
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    env["EDGELLM_DT_MODEL"] = str(model)
    r = run_installer("rpi", ["--dry-run", "--force"], env)  # --force: this machine is not aarch64
    assert r.returncode == 0, r.stdout + r.stderr
    assert "board: Raspberry Pi (Raspberry Pi 5 Model B Rev 1.0)" in r.stdout
    assert "profile: rpi5" in r.stdout
    budget = toml_budget(DEVICES / "profiles" / "rpi5.toml")
    assert f"MemoryMax={budget + margin_of(SYSTEMD / 'edgellm-voice.service.in')}M" in r.stdout
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    r = run_installer("rpi", ["--dry-run"], env)  # a Pi, but this userland is not 64-bit Arm
    assert r.returncode == 1 and "aarch64" in r.stderr and "profile: rpi4" in r.stdout, r.stdout + r.stderr
    model.write_bytes(b"Raspberry Pi 3 Model B Plus Rev 1.3\x00")
    r = run_installer("rpi", ["--dry-run"], env)
    assert r.returncode == 1 and "no device profile matches 'Raspberry Pi 3" in r.stderr and "--profile" in r.stderr
    assert calls() == []


def test_jetson_requires_a_matching_onnxruntime_gpu(fakes, tmp_path):
    env, calls = fakes
    release = tmp_path / "nv_tegra_release"
    release.write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
        "DATE: Wed Jan  8 01:49:37 UTC 2025\n",
        encoding="utf-8",
    )
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00")
    env.update(EDGELLM_NV_TEGRA_RELEASE=str(release), EDGELLM_DT_MODEL=str(model))
    r = run_installer("jetson", ["--dry-run", "--force"], env)
    assert r.returncode == 1
    for needle in (
        "no source given",
        "L4T R36.4.3",
        "JetPack 6.1/6.2",
        "https://pypi.jetson-ai-lab.io/jp6/cu126",
        "--ort-index",
        "--ort-wheel",
        "EDGELLM_ORT_INDEX",
        "conflict",
    ):
        assert needle in r.stderr, (needle, r.stderr)
    if (DEVICES / "profiles" / "jetson-orin-nano.toml").exists():
        assert "profile: jetson-orin-nano" in r.stdout
    r = run_installer("jetson", ["--dry-run", "--force", "--ort-wheel", str(tmp_path / "missing.whl")], env)
    assert r.returncode == 1 and "missing.whl: no such file" in r.stderr
    wheel = tmp_path / "onnxruntime_gpu-1.20.0-cp310-cp310-linux_aarch64.whl"
    wheel.write_bytes(b"")
    env["EDGELLM_ORT_WHEEL"] = str(wheel)
    r = run_installer("jetson", ["--dry-run", "--force"], env)
    assert r.returncode == 0, r.stderr
    assert f"pip install --disable-pip-version-check {wheel}" in r.stdout
    release.write_text(
        "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64\n", encoding="utf-8"
    )
    r = run_installer("jetson", ["--dry-run", "--force"], env)
    assert "L4T R32.7.4: JetPack 4" in r.stdout and "not supported" in r.stdout
    assert calls() == []


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
def test_jetson_gpu_dropin_verifies(fakes, tmp_path):
    """The drop-in the Jetson installer writes (SupplementaryGroups for the GPU) is a valid unit part."""
    env, _ = fakes
    r = run_installer(
        "jetson",
        [
            "--dry-run",
            "--force",
            "--profile",
            profile_arg("jetson", tmp_path),
            "--ort-index",
            "https://example.invalid/simple",
        ],
        env,
    )
    assert r.returncode == 0, r.stderr
    dropins = re.findall(
        r"^\[dry-run\] write /etc/systemd/system/(\S+)\.d/(\S+) \(mode 0644\):\n((?:    \| .*\n)+)",
        r.stdout,
        re.MULTILINE,
    )
    if not dropins:
        assert subprocess.run(["getent", "group", "video"], check=False, capture_output=True).returncode != 0
        pytest.skip("no video/render group on this machine, so no drop-in is planned")
    units = tmp_path / "units"
    assert render(profile_file("fixture", tmp_path), units).returncode == 0
    make_verifiable(units, tmp_path / "root")
    for unit, name, body in dropins:
        content = "\n".join(ln.removeprefix("    | ") for ln in body.splitlines())
        assert "SupplementaryGroups=" in content
        target = units / f"{verify_name(unit)}.d"
        target.mkdir(exist_ok=True)
        (target / name).write_text(content + "\n", encoding="utf-8")
        if "@." in unit:
            shutil.copy(units / unit, units / verify_name(unit))
        assert systemd_verify(units, unit) == [], unit


def test_quoting_of_printed_commands():
    script = f'source "{DEVICES / "common" / "install-lib.sh"}"; DRY_RUN=1; run pip install \'a[b,c]\' "it\'s" plain'
    r = subprocess.run([BASH, "-c", script], check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.strip().removeprefix("[dry-run] ")
    assert shlex.split(printed) == ["pip", "install", "a[b,c]", "it's", "plain"]
