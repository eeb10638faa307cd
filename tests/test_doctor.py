"""`edgellm doctor`: on this machine, on fake /proc trees, against a corrupted model, a missing execution
provider, a real mosquitto broker and closed / silent ports, and through the CLI."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sensor_fixtures import Mosquitto, free_port, mosquitto_binary

from edgellm_sdk.doctor import FAIL, OK, WARN, Check, diagnose
from edgellm_sdk.doctor.core import Task, run_tasks
from edgellm_sdk.doctor.storage import model as model_check
from edgellm_sdk.models.store import DEFAULT_MODEL, ModelStore

needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


def lines(report, name: str) -> list[Check]:
    found = [c for c in report.checks if c.name == name]
    assert found, f"no {name} line in:\n{report.table()}"
    return found


def line(report, name: str) -> Check:
    return lines(report, name)[0]


def fake_tree(
    tmp_path: Path,
    *,
    model: str,
    arch: str = "aarch64",
    features: str = "fp asimd evtstrm crc32 cpuid",
    cpus: int = 4,
    mem_mb: int = 3884,
) -> Path:
    """A /proc and /dev like a Raspberry Pi's, with two USB serial devices."""
    root = tmp_path / "root"
    for d in ("proc/device-tree", "proc/sys/kernel", "dev/serial/by-id", "dev/edgellm"):
        (root / d).mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    (root / "proc/cpuinfo").write_text("".join(f"processor\t: {i}\nFeatures\t: {features}\n\n" for i in range(cpus)))
    (root / "proc/meminfo").write_text(f"MemTotal: {mem_mb * 1024} kB\nMemAvailable: {mem_mb * 700} kB\n")
    (root / "proc/sys/kernel/arch").write_text(arch + "\n")
    (root / "dev/ttyUSB0").touch()
    (root / "dev/ttyACM0").touch()
    (root / "dev/serial/by-id/usb-Arduino_Uno_1234-if00").symlink_to("../../ttyACM0")
    (root / "dev/edgellm/co2").symlink_to("../ttyUSB0")
    return root


def test_doctor_on_this_machine(default_store):
    t0 = time.monotonic()
    report = diagnose()
    assert time.monotonic() - t0 < 15, report.table()
    if platform.machine() == "x86_64":
        assert "-> profile x86-64" in line(report, "device").detail
        assert line(report, "cpu").status == OK and "avx2" in line(report, "cpu").detail
    ort = line(report, "onnxruntime")
    assert ort.status == OK and "CPUExecutionProvider" in ort.detail, report.table()
    smollm = [c for c in lines(report, "model") if c.detail.startswith(f"{DEFAULT_MODEL}:")]
    assert smollm and smollm[0].status == OK and "sha256 OK" in smollm[0].detail and "q4*" in smollm[0].detail
    memory = line(report, "memory").detail  # the default model's load plan and estimate vs the budget
    assert f"plan {DEFAULT_MODEL}:q4 (profile {report.profile}): context " in memory and "needs ~" in memory
    assert line(report, "mqtt").status == OK and "not checked" in line(report, "mqtt").detail
    assert {c.status for c in report.checks} <= {OK, WARN, FAIL}
    assert all(c.fix for c in report.checks if c.status != OK)  # every WARN / FAIL says what to do
    assert report.exit_code == (1 if report.counts[FAIL] else 0)


def test_raspberry_pi_4_tree(tmp_path):
    root = fake_tree(tmp_path, model="Raspberry Pi 4 Model B Rev 1.4")
    report = diagnose(root=root, store=ModelStore(tmp_path / "home"))
    device = line(report, "device")
    assert device.status == OK and "Raspberry Pi 4 Model B Rev 1.4, 4 CPUs, 3.8 GB -> profile rpi4" in device.detail
    assert "matched" in device.detail and report.profile == "rpi4"
    cpu = line(report, "cpu")  # a Cortex-A72 has NEON but no int8 dot product
    assert cpu.status == WARN and "asimd" in cpu.detail and "no asimddp" in cpu.detail
    assert "budget 1024 MB (profile rpi4)" in line(report, "memory").detail
    serial = line(report, "serial")
    for port in (
        "/dev/ttyUSB0 rw",
        "/dev/ttyACM0 rw",
        "/dev/serial/by-id/usb-Arduino_Uno_1234-if00 rw",
        "/dev/edgellm/co2 rw",
    ):
        assert port in serial.detail
    models = line(report, "model")
    assert models.status == WARN and models.fix == f"edgellm pull {DEFAULT_MODEL}"


def test_a_32_bit_unknown_board_warns_and_fails(tmp_path):
    root = fake_tree(tmp_path, model="Raspberry Pi 3 Model B Rev 1.2", arch="armv7l", features="half thumb vfp neon")
    report = diagnose(root=root, store=ModelStore(tmp_path / "home"))
    assert line(report, "device").status == WARN and "rpi4" in line(report, "device").detail
    cpu = line(report, "cpu")
    assert cpu.status == FAIL and "64-bit" in cpu.fix and report.exit_code == 1


@pytest.fixture
def copied_tiny(tmp_path, tiny_store) -> ModelStore:
    store = ModelStore(tmp_path / "home")
    shutil.copytree(tiny_store.path("tiny"), store.path("tiny"))
    return store


def flip_a_byte(path: Path, keep_mtime: bool = False) -> None:
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0x01]))
    if keep_mtime:  # bit rot on an SD card: same size, same mtime
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_corrupted_model_fails_with_the_pull_fix(copied_tiny):
    report = diagnose(store=copied_tiny)
    assert line(report, "model").status == OK and report.exit_code in (0, 1)
    weights = max((p for p in copied_tiny.path("tiny").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    flip_a_byte(weights)
    report = diagnose(store=copied_tiny)
    bad = line(report, "model")
    assert bad.status == FAIL and bad.detail.startswith("tiny:") and "CORRUPT" in bad.detail
    assert weights.name in bad.detail
    assert bad.fix.startswith("edgellm pull ") and bad.fix.endswith("--name tiny --force")
    assert report.exit_code == 1


def test_verify_rehashes_what_the_stamps_would_trust(copied_tiny):
    root = copied_tiny.path("tiny")
    assert model_check(root, verify=False).status == OK  # hashes everything once, records the stamps
    weights = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    flip_a_byte(weights, keep_mtime=True)
    assert model_check(root, verify=False).status == OK  # size and mtime unchanged: the stamp is trusted
    deep = model_check(root, verify=True)
    assert deep.status == FAIL and "--force" in deep.fix
    assert not (root / ".verified.json").exists()  # so Engine.load re-hashes and refuses it as well
    assert model_check(root, verify=False).status == FAIL


def test_a_requested_provider_that_is_missing_fails():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    report = diagnose("jetson-orin-nano")
    ort_line = line(report, "onnxruntime")
    assert ort_line.status == FAIL and "missing CUDAExecutionProvider" in ort_line.detail
    assert "onnxruntime-gpu" in ort_line.fix and report.exit_code == 1
    assert "--profile jetson-orin-nano; detected" in line(report, "device").detail


@needs_mosquitto
def test_mqtt_broker_reachable_refusing_and_closed(tmp_path):
    broker = Mosquitto(tmp_path).start()
    locked = Mosquitto(tmp_path, anonymous=False).start()
    try:
        ok = line(diagnose(mqtt=f"127.0.0.1:{broker.port}", timeout=3), "mqtt")
        assert ok.status == OK and f"127.0.0.1:{broker.port} accepted an MQTT connection" in ok.detail
        refused = line(diagnose(mqtt=f"mqtt://127.0.0.1:{locked.port}", timeout=3), "mqtt")
        assert refused.status == WARN and "anonymous" in refused.detail
    finally:
        broker.stop()
        locked.stop()
    t0 = time.monotonic()
    report = diagnose(mqtt=f"127.0.0.1:{free_port()}", timeout=2)
    closed = line(report, "mqtt")
    assert closed.status == FAIL and "unreachable" in closed.detail and report.exit_code == 1
    assert time.monotonic() - t0 < 2 + 1.5


def test_mqtt_port_that_never_answers_is_bounded():
    with socket.socket() as silent:  # the kernel completes the TCP handshake; nobody ever reads
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        t0 = time.monotonic()
        report = diagnose(mqtt=f"127.0.0.1:{silent.getsockname()[1]}", timeout=2)
        elapsed = time.monotonic() - t0
    mqtt = line(report, "mqtt")
    assert mqtt.status == FAIL and "no CONNACK" in mqtt.detail and elapsed < 2 + 1.5


def test_a_hung_or_crashing_check_is_a_warn_within_its_limit():
    def hang():
        time.sleep(30)

    def crash():
        raise RuntimeError("driver exploded")

    t0 = time.monotonic()
    got = run_tasks(
        [
            Task("slow", hang, 0.3, "look at the driver"),
            Task("boom", crash, 0.3),
            Task("fine", lambda: [Check("fine", OK, "a"), Check("fine", OK, "b")], 0.3),
        ]
    )
    assert time.monotonic() - t0 < 1.5
    assert got[0] == Check("slow", WARN, "did not finish within 0.3 s", "look at the driver")
    assert got[1].status == WARN and "RuntimeError: driver exploded" in got[1].detail
    assert [c.detail for c in got[2:]] == ["a", "b"]


def doctor_cli(*args, home=None, timeout=60):
    env = dict(os.environ, **({"EDGELLM_HOME": str(home)} if home else {}))
    return subprocess.run(
        [sys.executable, "-m", "edgellm_sdk.cli", "doctor", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_cli_json_and_table(default_store):
    r = doctor_cli("--json")
    data = json.loads(r.stdout)
    assert r.returncode == (0 if data["ok"] else 1), r.stderr
    assert {
        "device",
        "python",
        "cpu",
        "memory",
        "onnxruntime",
        "packages",
        "extras",
        "audio",
        "serial",
        "groups",
        "ros2",
        "mqtt",
        "serve",
        "model",
        "home",
        "disk",
    } <= {c["name"] for c in data["checks"]}
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in data["checks"])
    assert data["counts"]["FAIL"] == sum(c["status"] == "FAIL" for c in data["checks"])
    r = doctor_cli("--profile", "rpi4")
    assert r.stdout.startswith("OK    device") and "-> profile rpi4" in r.stdout
    assert r.stdout.splitlines()[-1].endswith("(profile rpi4)")


def test_cli_exit_code_1_on_a_fail(tmp_path):
    r = doctor_cli("--json", "--mqtt", f"127.0.0.1:{free_port()}", "--timeout", "2", home=tmp_path)
    data = json.loads(r.stdout)
    assert r.returncode == 1 and data["ok"] is False
    assert next(c for c in data["checks"] if c["name"] == "mqtt")["status"] == "FAIL"
    r = doctor_cli("--profile", "rpi3", home=tmp_path)
    assert r.returncode == 2 and "no device profile 'rpi3'" in r.stderr


def test_importing_doctor_is_light():
    code = (
        "import sys, edgellm_sdk.doctor; print([m for m in ('onnxruntime', 'numpy', 'sounddevice', 'paho', "
        "'rclpy', 'serial') if m in sys.modules])"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip() == "[]"
    )


def test_serve_port_free_taken_and_bounded():
    port = free_port()
    free = line(diagnose(serve_port=port, timeout=2), "serve")
    assert free.status == OK and f"127.0.0.1:{port} is free" in free.detail
    with socket.socket() as silent:  # listening, never answers HTTP: not ours, and the probe is bounded
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        taken_port = silent.getsockname()[1]
        t0 = time.monotonic()
        taken = line(diagnose(serve_port=taken_port, timeout=2), "serve")
        assert time.monotonic() - t0 < 2 + 1.5
    assert taken.status == WARN and "cannot be bound" in taken.detail and "--port N" in taken.fix
    checks = {c["name"]: c for c in json.loads(doctor_cli("--json", "--serve-port", str(port)).stdout)["checks"]}
    assert checks["serve"]["status"] == OK and str(port) in checks["serve"]["detail"]
