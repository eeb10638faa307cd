"""Device profiles: how the runtime should use a Raspberry Pi, a Jetson or a PC.

A profile (``edgellm_sdk/device_profiles/<name>.toml``, also at ``devices/profiles/``) sets the
execution providers (checked after the session is made: no silent CPU fallback), thread counts
that leave cores for audio and ROS, the memory budget the memory guard enforces, the context
length, variant, KV dtype, audio defaults and the recommended model size. ``LoadPlan``
(models/plan.py) applies a profile to a model.

    profile = DeviceProfile.detect().profile        # reads /proc/device-tree/model, /etc/nv_tegra_release...
    engine = Engine.load("smollm2-135m", profile=profile)
    engine = Engine.load("smollm2-135m", profile="rpi4")   # or by name / TOML path

The KV cache is float32 only (``kv_dtype = "float32"``). float16 would halve it, but the
graphs' GroupQueryAttention uses one element type for queries and KV: given float16 KV,
onnxruntime's CPU provider inserts Casts that copy the whole cache to float32 and back on every
step. float16 KV needs a graph whose attention runs in float16: a variant of its own, not a
device setting (README, "Devices").
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ProfileError

PROFILE_DIR = Path(__file__).with_name("device_profiles")
KV_DTYPES = ("float32",)  # float16: see the module docstring


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    match: tuple[str, ...]  # substrings of /proc/device-tree/model that identify the board
    providers: tuple[str, ...]
    threads: int  # onnxruntime intra-op threads
    inter_op_threads: int
    max_context: int
    variant: str
    kv_dtype: str
    prefix_cache_mb: int
    memory_budget_mb: int
    audio_sample_rate: int
    audio_block_ms: int
    recommended_model: str
    max_params_m: int
    source: str = ""  # the TOML file it came from

    @property
    def prefix_cache_bytes(self) -> int:
        return self.prefix_cache_mb << 20

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> DeviceProfile:
        """A shipped profile by name (``rpi4``...) or a TOML file."""
        path = Path(name_or_path)
        if path.suffix != ".toml":
            path = PROFILE_DIR / f"{name_or_path}.toml"
            if not path.is_file():
                raise ProfileError(
                    f"no device profile {str(name_or_path)!r}; shipped: {', '.join(available())}, "
                    "or give the path of a .toml file"
                )
        elif not path.is_file():
            raise ProfileError(f"device profile file {str(path)!r} does not exist")
        return cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def from_toml(cls, text: str, source: str = "<toml>") -> DeviceProfile:
        try:
            import tomllib
        except ImportError:  # Python 3.10 (JetPack 6)
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ProfileError(f"{source} is not valid TOML: {e}") from None
        return cls(**_fields(data, source), source=source)

    @classmethod
    def detect(cls, root: str | os.PathLike = "/") -> Detection:
        """The profile for the machine whose files are under ``root`` (a fake tree in tests)."""
        device = DeviceInfo.read(Path(root))
        profiles = [cls.load(n) for n in available()]
        for profile in profiles:
            if any(m in device.model for m in profile.match):
                return Detection(profile, device, f"matched {device.model!r}")
        if device.tegra:
            profile = cls.load("jetson-orin-nano")
            return Detection(
                profile,
                device,
                f"/etc/nv_tegra_release present ({device.tegra}); model "
                f"{device.model or 'unknown'}: assuming {profile.name}",
            )
        if device.machine in ("x86_64", "amd64"):
            return Detection(cls.load("x86-64"), device, f"{device.machine} machine")
        return Detection(
            cls.load("rpi4"),
            device,
            f"unknown {device.machine} board {device.model or ''}: using the most conservative profile, rpi4",
        )

    def fitted(self, device: DeviceInfo) -> DeviceProfile:
        """This profile within what ``device`` has: threads <= its cores, budget <= 60 % of its memory."""
        threads = min(self.threads, max(1, device.cpus))
        budget = min(self.memory_budget_mb, int(device.memory_mb * 0.6)) if device.memory_mb else self.memory_budget_mb
        return replace(self, threads=threads, memory_budget_mb=budget)


@dataclass(frozen=True)
class DeviceInfo:
    model: str  # /proc/device-tree/model ("" on PCs)
    tegra: str  # first line of /etc/nv_tegra_release ("" when not a Jetson)
    machine: str  # uname machine: aarch64, x86_64...
    cpus: int
    memory_mb: int

    @classmethod
    def read(cls, root: Path) -> DeviceInfo:
        model = _read(root / "proc/device-tree/model").rstrip("\x00").strip()
        tegra = _read(root / "etc/nv_tegra_release").splitlines()[:1]
        cpuinfo = _read(root / "proc/cpuinfo")
        cpus = sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
        if root == Path("/"):
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        mem_kb = next(
            (
                int(line.split()[1])
                for line in _read(root / "proc/meminfo").splitlines()
                if line.startswith("MemTotal:")
            ),
            0,
        )
        machine = _read(root / "proc/sys/kernel/arch").strip() or platform.machine()
        return cls(model, tegra[0].strip() if tegra else "", machine, max(1, cpus), mem_kb // 1024)


@dataclass(frozen=True)
class Detection:
    profile: DeviceProfile  # as shipped; .fitted(device) caps it to this device
    device: DeviceInfo
    reason: str


def named(value: str | None) -> DeviceProfile | None:
    """The profile a user names: "" / None = none, "auto" = detected and fitted to this machine,
    a shipped name, or a TOML path."""
    if not value:
        return None
    if value == "auto":
        found = DeviceProfile.detect()
        return found.profile.fitted(found.device)
    return DeviceProfile.load(value)


def default_threads() -> int:
    """onnxruntime intra-op threads when neither the caller nor a profile says: min(4, CPUs)."""
    return max(1, min(4, os.cpu_count() or 1))


def kv_dtype_problem(value: object) -> str | None:
    """What is wrong with a ``kv_dtype`` setting; None when the runtime allocates it (KV_DTYPES)."""
    if value in KV_DTYPES:
        return None
    why = (
        " (float16 KV needs a graph whose attention runs in float16; see edgellm_sdk.profiles)"
        if value == "float16"
        else ""
    )
    return f"kv_dtype must be one of {', '.join(KV_DTYPES)}, got {value!r}{why}"


def available() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def resolve(profile) -> DeviceProfile | None:
    """A DeviceProfile from a profile, its name or TOML path, or None."""
    if profile is None or isinstance(profile, DeviceProfile):
        return profile
    if isinstance(profile, (str, os.PathLike)):
        return DeviceProfile.load(profile)
    return profile  # duck-typed (threads / max_context / variant attributes)


# ---- parsing ---------------------------------------------------------------------------------

_SCHEMA: dict[str, dict[str, tuple[str, type]]] = {  # section -> key -> (field, type)
    "": {"name": ("name", str), "description": ("description", str), "match": ("match", list)},
    "runtime": {
        "providers": ("providers", list),
        "intra_op_threads": ("threads", int),
        "inter_op_threads": ("inter_op_threads", int),
        "max_context": ("max_context", int),
        "variant": ("variant", str),
        "kv_dtype": ("kv_dtype", str),
        "prefix_cache_mb": ("prefix_cache_mb", int),
    },
    "memory": {"budget_mb": ("memory_budget_mb", int)},
    "audio": {"sample_rate": ("audio_sample_rate", int), "block_ms": ("audio_block_ms", int)},
    "model": {"recommended": ("recommended_model", str), "max_params_m": ("max_params_m", int)},
}


def _fields(data: dict, source: str) -> dict:
    out: dict = {}
    unknown_sections = set(data) - set(_SCHEMA) - set(_SCHEMA[""])
    if unknown_sections:
        raise ProfileError(
            f"{source}: unknown section(s) {sorted(unknown_sections)}; allowed: {', '.join(s for s in _SCHEMA if s)}"
        )
    for section, keys in _SCHEMA.items():
        table = data if not section else data.get(section)
        where = f"[{section}]" if section else "the top level"
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: missing section [{section}] with {', '.join(keys)}")
        if section:
            extra = set(table) - set(keys)
            if extra:
                raise ProfileError(f"{source}: unknown key(s) {sorted(extra)} in {where}; allowed: {', '.join(keys)}")
        for key, (field, kind) in keys.items():
            if key not in table:
                raise ProfileError(f"{source}: missing {key!r} in {where}")
            value = table[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ProfileError(f"{source}: {key} in {where} must be a {kind.__name__}, got {value!r}")
            out[field] = tuple(value) if isinstance(value, list) else value
    _check(out, source)
    return out


def _check(v: dict, source: str) -> None:
    problems = []
    if not v["providers"] or not all(isinstance(p, str) and p.endswith("ExecutionProvider") for p in v["providers"]):
        problems.append(
            f"providers must be onnxruntime provider names such as CPUExecutionProvider, got {list(v['providers'])}"
        )
    if not all(isinstance(m, str) and m for m in v["match"]):
        problems.append("match must be a list of non-empty strings")
    for field, low in (
        ("threads", 1),
        ("inter_op_threads", 1),
        ("max_context", 16),
        ("memory_budget_mb", 64),
        ("audio_sample_rate", 8000),
        ("audio_block_ms", 5),
        ("prefix_cache_mb", 0),
    ):
        if v[field] < low:
            problems.append(f"{field} must be >= {low}, got {v[field]}")
    if problem := kv_dtype_problem(v["kv_dtype"]):
        problems.append(problem)
    if problems:
        raise ProfileError(f"{source}: " + "; ".join(problems))


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""
