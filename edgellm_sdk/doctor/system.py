"""Checks of the machine and the Python environment: device, Python, CPU, memory, onnxruntime, packages."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import struct
import sys

from ..errors import EdgeLLMError, MemoryBudgetExceeded
from ..models.plan import LoadPlan
from .core import FAIL, OK, WARN, Check, Context

JETSON_FIX = (
    "pip uninstall -y onnxruntime, then install the JetPack-matched onnxruntime-gpu wheel "
    "(see devices/jetson); not a Jetson? use a CPU profile: --profile x86-64, rpi4 or rpi5"
)


def device(ctx: Context) -> Check:
    d, found, p = ctx.detection.device, ctx.detection, ctx.profile
    board = (d.model or f"{d.machine} machine") + (f" ({d.tegra[:40]})" if d.tegra else "")
    runtime = (
        f"{'+'.join(x.removesuffix('ExecutionProvider') for x in p.providers)}, {p.threads} threads, "
        f"context {p.max_context}, {p.variant}"
    )
    why = found.reason if ctx.chosen == "auto" else f"--profile {ctx.chosen}; detected {found.profile.name}"
    detail = f"{board}, {d.cpus} CPUs, {d.memory_mb / 1024:.1f} GB -> profile {p.name}: {runtime} ({why})"
    if ctx.chosen == "auto" and found.reason.startswith("unknown"):
        return Check(
            "device",
            WARN,
            detail,
            "pass --profile rpi4|rpi5|jetson-orin-nano|jetson-nano|x86-64 "
            "or a .toml of your own (see devices/profiles)",
        )
    return Check("device", OK, detail)


def python(ctx: Context) -> Check:
    detail = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    if struct.calcsize("P") == 4:
        return Check("python", FAIL, detail + ", 32-bit", "onnxruntime has no 32-bit wheels: use a 64-bit OS")
    return Check("python", OK, detail)


# feature groups onnxruntime's MLAS kernels use; a group is there when any of its flags is
X86 = (("avx2",), ("fma",), ("avx512f",), ("avx512_vnni", "avx_vnni"))
ARM = (("asimd",), ("asimddp",), ("i8mm",))  # NEON, int8 dot product, int8 matrix multiply


def cpu(ctx: Context) -> Check:
    machine = ctx.detection.device.machine
    text = _read(ctx.root / "proc/cpuinfo")
    flags = next(
        (
            set(line.split(":", 1)[1].split())
            for line in text.splitlines()
            if line.split(":")[0].strip() in ("flags", "Features") and ":" in line
        ),
        None,
    )
    if machine in ("armv7l", "armv6l", "armhf", "arm"):
        return Check(
            "cpu",
            FAIL,
            f"{machine}: 32-bit Arm",
            "onnxruntime has no 32-bit Arm wheels: install the 64-bit OS (Raspberry Pi OS 64-bit / Ubuntu arm64)",
        )
    if flags is None:
        return Check(
            "cpu",
            WARN,
            f"{machine}: no flags/Features line in /proc/cpuinfo",
            "cannot tell which onnxruntime kernels apply; check that /proc is mounted",
        )
    arm = machine in ("aarch64", "arm64")
    have = [next(f for f in group if f in flags) for group in (ARM if arm else X86) if flags & set(group)]
    missing = ["/".join(group) for group in (ARM if arm else X86) if not flags & set(group)]
    detail = f"{machine}: {' '.join(have) or '-'}" + (f" (no {' '.join(missing)})" if missing else "")
    if arm and "asimd" not in flags:
        return Check(
            "cpu", FAIL, detail, "onnxruntime's arm64 kernels need NEON (asimd); this CPU or kernel does not report it"
        )
    if arm and "asimddp" not in flags:
        return Check(
            "cpu",
            WARN,
            detail + ": q4/q8 matmuls use plain NEON, no int8 dot product",
            "expected on Cortex-A72/A57 (Pi 4, Jetson Nano); nothing to install: keep the q4 variant and "
            "a short context (Pi 5 / Orin have asimddp)",
        )
    if not arm and machine in ("x86_64", "amd64") and "avx2" not in flags:
        return Check(
            "cpu",
            WARN,
            detail + ": onnxruntime falls back to SSE kernels (several times slower)",
            "nothing to install; expect slower decoding on this CPU",
        )
    return Check("cpu", OK, detail)


def memory(ctx: Context) -> Check:
    from .. import memory as guard

    info = {
        k: int(v.split()[0]) // 1024
        for k, v in (line.split(":", 1) for line in _read(ctx.root / "proc/meminfo").splitlines() if ":" in line)
    }
    total, avail = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
    p = ctx.profile
    try:
        budget = guard.budget_mb(p)
    except EdgeLLMError as e:
        return Check("memory", FAIL, str(e), f"unset {guard.MAX_RSS_ENV} or set it to megabytes")
    source = guard.MAX_RSS_ENV if os.environ.get(guard.MAX_RSS_ENV, "").strip() else f"profile {p.name}"
    detail = (
        f"{total / 1024:.1f} GB total, {avail / 1024:.1f} GB available; budget "
        f"{f'{budget:.0f} MB' if budget else 'none'} ({source})"
    )
    if budget and total and budget > total:
        return Check(
            "memory",
            WARN,
            detail + ": the budget is more than this machine's RAM",
            f"use the profile of this board (--profile auto) or {guard.MAX_RSS_ENV}=<MB>",
        )
    manifest = _installed(ctx, p.recommended_model)
    if manifest is None:
        return Check("memory", OK, detail + f"; {p.recommended_model} not installed, no estimate")
    plan = LoadPlan.resolve(manifest, p, store=ctx.store)  # what Engine.load would do with this profile
    try:
        plan.check_memory()
    except MemoryBudgetExceeded as e:
        return Check(
            "memory",
            FAIL,
            detail + f"; {plan.key} at {plan.max_context} tokens does not fit",
            str(e).split("; ", 1)[-1],
        )
    detail += f"; plan {plan}"
    if avail and plan.memory.total_mb > avail:
        return Check(
            "memory",
            WARN,
            detail + f": more than the {avail} MB available now",
            "stop other programs or lower max_context / use a smaller variant",
        )
    return Check("memory", OK, detail)


def onnxruntime(ctx: Context) -> Check:
    requested = list(ctx.profile.providers)
    gpu = any(x.startswith(("CUDA", "Tensorrt")) for x in requested) or bool(ctx.detection.device.tegra)
    try:
        import onnxruntime as ort
    except ImportError as e:
        return Check("onnxruntime", FAIL, f"not importable: {e}", JETSON_FIX if gpu else "pip install onnxruntime")
    present = ort.get_available_providers()
    detail = (
        f"onnxruntime {ort.__version__}: has {', '.join(present)}; profile {ctx.profile.name} requests "
        f"{', '.join(requested)}"
    )
    missing = [x for x in requested if x not in present]
    if missing:
        fix = (
            JETSON_FIX
            if gpu
            else f"use a profile whose providers this build has, or install a build with {', '.join(missing)}"
        )
        return Check("onnxruntime", FAIL, detail + f" (missing {', '.join(missing)})", fix)
    wheels = [d for d in ("onnxruntime", "onnxruntime-gpu") if _version(d)]
    if len(wheels) > 1:
        return Check(
            "onnxruntime",
            WARN,
            detail + "; both onnxruntime and onnxruntime-gpu are installed (they overwrite each other)",
            "pip uninstall -y onnxruntime onnxruntime-gpu, then install "
            "the one for this board" + (" (onnxruntime-gpu, see devices/jetson)" if gpu else ""),
        )
    if _older(ort.__version__, (1, 20)):
        return Check("onnxruntime", WARN, detail + "; older than 1.20", "pip install -U 'onnxruntime>=1.20'")
    return Check("onnxruntime", OK, detail)


CORE = (("numpy", "numpy"), ("tokenizers", "tokenizers"), ("jinja2", "jinja2"), ("tqdm", "tqdm"))
# (distribution, module, extra or apt package, what it is for)
EXTRAS = (
    ("llguidance", "llguidance", "structured", "JSON-schema / regex constrained output"),
    ("paho-mqtt", "paho.mqtt", "mqtt", "mqtt:// sensor sources"),
    ("pyserial", "serial", "serial", "serial:// sensor sources"),
    ("sounddevice", "sounddevice", "speech", "microphone and speaker (PortAudio)"),
    ("moonshine-voice", "moonshine_voice", "speech", "speech recognition (Moonshine)"),
    ("vosk", "vosk", "speech", "speech recognition (Vosk)"),
    ("piper-tts", "piper", "speech", "neural text to speech (Piper, GPL-3.0)"),
    ("onnx", "onnx", "tools", "`edgellm pull` of GGUF files (with gguf)"),
    ("gguf", "gguf", "tools", "`edgellm pull` of GGUF files"),
)


def packages(ctx: Context) -> list[Check]:
    core = [f"{d} {_version(d) or '?'}" for d, m in CORE if _has(m)]
    lost = [d for d, m in CORE if not _has(m)]
    detail = ", ".join(core + [f"{d} MISSING" for d in lost])
    out = [Check("packages", FAIL if lost else OK, detail, "pip install --force-reinstall edgellm-sdk" if lost else "")]
    for dist, module, extra, purpose in EXTRAS:
        version = _version(dist)
        if not _has(module):
            out.append(Check("extras", WARN, f"{dist} not installed: {purpose}", f"pip install 'edgellm-sdk[{extra}]'"))
        elif dist == "paho-mqtt" and _older(version, (2, 0)):
            out.append(
                Check("extras", WARN, f"{dist} {version}: the sensor sources need 2.x", "pip install -U paho-mqtt")
            )
        else:
            out.append(Check("extras", OK, f"{dist} {version or ''}: {purpose}"))
    espeak = shutil.which("espeak-ng")
    out.append(
        Check("extras", OK, f"espeak-ng {espeak}: fallback text to speech")
        if espeak
        else Check("extras", WARN, "espeak-ng not found: fallback text to speech", "sudo apt install espeak-ng")
    )
    return out


# ---- helpers -----------------------------------------------------------------------------------


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _older(version: str | None, floor: tuple[int, int]) -> bool:
    try:
        return tuple(int(x) for x in (version or "").split(".")[:2]) < floor
    except ValueError:
        return False


def _installed(ctx: Context, name: str):
    from ..errors import ModelError
    from ..models.manifest import MANIFEST, Manifest

    path = ctx.store.path(name)
    try:
        return Manifest.load(path) if (path / MANIFEST).is_file() else None
    except ModelError:
        return None


def _read(path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""
