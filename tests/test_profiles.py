"""Device profiles: parsing, detection on fake /proc trees, applying a profile, the memory guard."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from edgellm_sdk import Engine, MemoryBudgetExceeded, ModelError, ProfileError, ProviderUnavailable, memory
from edgellm_sdk.models.store import DEFAULT_MODEL
from edgellm_sdk.profiles import PROFILE_DIR, DeviceProfile, available

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("jetson-nano", "jetson-orin-nano", "rpi4", "rpi5", "x86-64")


def test_shipped_profiles_load_and_devices_dir_shows_the_same_files():
    assert tuple(available()) == SHIPPED
    for name in SHIPPED:
        p = DeviceProfile.load(name)
        assert p.name == name and p.providers[-1] == "CPUExecutionProvider" and p.threads >= 1
        assert p.memory_budget_mb >= 512 and p.variant == "q4" and p.kv_dtype == "float32"
        assert (REPO / "devices" / "profiles" / f"{name}.toml").read_text() == (
            PROFILE_DIR / f"{name}.toml"
        ).read_text()
    assert DeviceProfile.load("jetson-orin-nano").providers[0] == "CUDAExecutionProvider"
    assert DeviceProfile.load(PROFILE_DIR / "rpi5.toml").max_context == 4096


GOOD = (PROFILE_DIR / "rpi4.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[memory]\nbudget_mb = 1024", ""), "missing section [memory]"),
        (lambda t: t.replace("max_context = 2048\n", ""), "missing 'max_context' in [runtime]"),
        (lambda t: t.replace("max_context = 2048", "max_context = 2048\nturbo = true"), "unknown key(s) ['turbo']"),
        (lambda t: t.replace("max_context = 2048", 'max_context = "big"'), "max_context in [runtime] must be a int"),
        (lambda t: t.replace('"CPUExecutionProvider"', '"GPU"'), "providers must be onnxruntime provider names"),
        (
            lambda t: t.replace('kv_dtype = "float32"', 'kv_dtype = "int4"'),
            "kv_dtype must be one of float32, got 'int4'",
        ),
        (
            lambda t: t.replace('kv_dtype = "float32"', 'kv_dtype = "float16"'),
            "kv_dtype must be one of float32, got 'float16' (float16 KV needs a graph whose attention runs in float16",
        ),
        (lambda t: t.replace("intra_op_threads = 3", "intra_op_threads = 0"), "threads must be >= 1"),
        (lambda t: t + "\n[gpu]\nclock = 1\n", "unknown section(s) ['gpu']"),
        (lambda t: t.replace("[audio]", "[audio"), "is not valid TOML"),
    ],
)
def test_a_bad_profile_is_refused_naming_what_is_wrong(tmp_path, edit, message):
    path = tmp_path / "mine.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(ProfileError) as err:
        DeviceProfile.load(path)
    assert message in str(err.value) and "mine.toml" in str(err.value)


def test_unknown_profile_names_the_shipped_ones():
    with pytest.raises(ProfileError, match="shipped: jetson-nano, jetson-orin-nano, rpi4, rpi5, x86-64"):
        DeviceProfile.load("rpi3")
    with pytest.raises(ProfileError, match="does not exist"):
        DeviceProfile.load("/nowhere/board.toml")


def fake_root(
    tmp_path: Path,
    *,
    model: str | None = None,
    tegra: str | None = None,
    cpus: int = 4,
    mem_mb: int = 3884,
    arch: str = "aarch64",
) -> Path:
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    if model is not None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if tegra is not None:
        (root / "etc").mkdir()
        (root / "etc/nv_tegra_release").write_text(tegra + "\n# second line\n")
    (root / "proc/cpuinfo").write_text("".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\n\n" for i in range(cpus)))
    (root / "proc/meminfo").write_text(f"MemTotal:       {mem_mb * 1024} kB\nMemFree:        1000 kB\n")
    (root / "proc/sys/kernel/arch").write_text(arch + "\n")
    return root


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"model": "Raspberry Pi 4 Model B Rev 1.4"}, "rpi4"),
        ({"model": "Raspberry Pi 5 Model B Rev 1.0", "mem_mb": 8064}, "rpi5"),
        (
            {"model": "NVIDIA Jetson Orin Nano Developer Kit", "tegra": "# R36 (release), REVISION: 3.0", "cpus": 6},
            "jetson-orin-nano",
        ),
        ({"model": "NVIDIA Jetson Nano Developer Kit", "tegra": "# R32 (release), REVISION: 7.4"}, "jetson-nano"),
        ({"tegra": "# R35 (release), REVISION: 4.1"}, "jetson-orin-nano"),
        ({"arch": "x86_64", "cpus": 8, "mem_mb": 16000}, "x86-64"),
        ({"model": "Pine64 RockPro64 v2.1"}, "rpi4"),
    ],
)
def test_detect_reads_the_device_tree_tegra_release_cpus_and_memory(tmp_path, device, expected):
    found = DeviceProfile.detect(fake_root(tmp_path, **device))
    assert found.profile.name == expected, found.reason
    assert found.device.cpus == device.get("cpus", 4)
    assert found.device.memory_mb == device.get("mem_mb", 3884)
    if expected == "rpi4" and "Pine64" in device.get("model", ""):
        assert "most conservative" in found.reason


def test_fitted_caps_threads_and_budget_to_the_device(tmp_path):
    small = DeviceProfile.detect(fake_root(tmp_path, model="Raspberry Pi 4 Model B", cpus=2, mem_mb=1024))
    fitted = small.profile.fitted(small.device)
    assert (fitted.threads, fitted.memory_budget_mb) == (2, 614)  # 60 % of 1 GB
    here = DeviceProfile.detect()
    assert here.device.cpus >= 1 and here.device.memory_mb > 0 and here.profile.name in SHIPPED


def test_engine_load_applies_the_profile(tiny_store):
    profile = replace(DeviceProfile.load("rpi4"), threads=1, inter_op_threads=1, max_context=64, prefix_cache_mb=1)
    with Engine.load("tiny", store=tiny_store, profile=profile) as engine:
        assert engine.max_context == 64 and engine.variant == "q4"  # the profile's variant, the model has it
        assert engine.backend.providers == ("CPUExecutionProvider",)
        assert engine.prefix_cache.max_bytes == 1 << 20
        assert engine.backend.session.get_session_options().intra_op_num_threads == 1
        assert engine.complete("hi", max_tokens=3).usage.completion_tokens == 3
    with Engine.load("tiny", store=tiny_store, profile="x86-64", variant="fp32", max_context=32) as engine:
        assert engine.variant == "fp32" and engine.max_context == 32  # explicit arguments win


def test_a_missing_execution_provider_is_an_error_not_a_silent_cpu_fallback(tiny_store):
    with pytest.raises(ProviderUnavailable) as err:
        Engine.load("tiny", store=tiny_store, profile="jetson-orin-nano", max_context=32)
    assert "CUDAExecutionProvider" in str(err.value) and "onnxruntime-gpu" in str(err.value)


def test_float16_kv_is_refused_before_loading(tiny_store):
    profile = replace(DeviceProfile.load("x86-64"), kv_dtype="float16")  # replace() skips the TOML checks
    with pytest.raises(ProfileError, match="device profile 'x86-64': kv_dtype must be one of float32, got 'float16'"):
        Engine.load("tiny", store=tiny_store, profile=profile, max_context=32)


def test_a_graph_with_float16_kv_is_refused_naming_the_fix(tmp_path):
    """An exported graph (e.g. a hub model_fp16.onnx) whose past_key_values are float16."""
    import onnx
    from onnx import TensorProto, helper

    from edgellm_sdk.backends.ort import OrtBackend

    kv = [
        helper.make_tensor_value_info(f"past_key_values.0.{n}", TensorProto.FLOAT16, [1, 1, "P", 4])
        for n in ("key", "value")
    ]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "S"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "T"])
    out = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "S", 1]),
        *(
            helper.make_tensor_value_info(f"present.0.{n}", TensorProto.FLOAT16, [1, 1, "P", 4])
            for n in ("key", "value")
        ),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids_f", "axis"], ["logits"]),
        helper.make_node("Identity", ["past_key_values.0.key"], ["present.0.key"]),
        helper.make_node("Identity", ["past_key_values.0.value"], ["present.0.value"]),
    ]
    axis = helper.make_tensor("axis", TensorProto.INT64, [1], [2])
    graph = helper.make_graph(nodes, "fp16_kv", [ids, mask, *kv], out, initializer=[axis])
    path = tmp_path / "model_fp16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    with pytest.raises(
        ModelError,
        match=r"keeps its KV cache as tensor\(float16\); the runtime keeps it as "
        r"float32 only .*use a variant with float32 past_key_values",
    ):
        OrtBackend(path, max_context=16, threads=1)
    with pytest.raises(ValueError, match="kv_dtype must be one of float32, got 'float16'"):
        OrtBackend(path, max_context=16, threads=1, kv_dtype="float16")


@pytest.mark.model
def test_memory_guard_refuses_an_oversized_configuration_and_says_what_fits(default_store, monkeypatch):
    monkeypatch.delenv(memory.MAX_RSS_ENV, raising=False)
    tight = replace(DeviceProfile.load("rpi4"), memory_budget_mb=500)
    with pytest.raises(MemoryBudgetExceeded) as err:
        Engine.load(DEFAULT_MODEL, store=default_store, profile=tight, variant="fp32")
    text = str(err.value)
    assert "more than the budget of 500 MB" in text and "variant='q4'" in text and "EDGELLM_MAX_RSS_MB" in text
    with pytest.raises(MemoryBudgetExceeded, match=r"try max_context=\d+"):
        Engine.load(DEFAULT_MODEL, store=default_store, profile=tight, variant="q4", max_context=8192)
    monkeypatch.setenv(memory.MAX_RSS_ENV, "0")  # 0 = no limit
    with Engine.load(DEFAULT_MODEL, store=default_store, profile=tight, variant="q4", max_context=8192) as engine:
        assert engine.max_context == 8192
    monkeypatch.setenv(memory.MAX_RSS_ENV, "lots")
    with pytest.raises(ProfileError, match="EDGELLM_MAX_RSS_MB='lots' is not a number of megabytes"):
        Engine.load(DEFAULT_MODEL, store=default_store, profile=tight)


PEAK_RSS = textwrap.dedent("""
    import json, sys
    from edgellm_sdk import Engine
    from edgellm_sdk.memory import peak_rss_mb
    from edgellm_sdk.models.store import DEFAULT_MODEL
    variant, ctx = sys.argv[1], int(sys.argv[2])
    engine = Engine.load(DEFAULT_MODEL, variant=variant, max_context=ctx, threads=2, prefix_cache=False)
    ids = engine.tokenizer.encode("The robot counts the doors along the corridor. " * 600)[: ctx - 4]
    engine.complete(ids, max_tokens=2)  # the whole context filled
    print(json.dumps({"peak_mb": peak_rss_mb()}))
""")


@pytest.mark.model
@pytest.mark.parametrize(("variant", "ctx"), [("q4", 2048), ("fp32", 1024)])
def test_memory_estimate_is_within_15_percent_of_the_measured_peak_rss(default_store, variant, ctx):
    manifest = default_store.resolve(DEFAULT_MODEL)
    estimate = memory.estimate(manifest, variant, ctx).total_mb
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, variant, str(ctx)], capture_output=True, text=True, timeout=300, check=True
    )
    peak = json.loads(out.stdout.splitlines()[-1])["peak_mb"]
    print(f"{variant} ctx {ctx}: estimate {estimate:.0f} MB, measured peak {peak:.0f} MB")
    assert abs(estimate - peak) <= 0.15 * peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_c_heap_goes_back_to_the_os():
    import ctypes
    import ctypes.util

    from edgellm_sdk.memory import release_freed_heap

    def rss_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    blocks = [libc.malloc(2048) for _ in range(100_000)]  # 200 MB of small blocks, below mmap's threshold
    for b in blocks:
        ctypes.memset(b, 1, 2048)
    for b in blocks[:-1]:  # the last one pins the heap's top: free() alone cannot shrink it
        libc.free(b)
    held = rss_mb()
    release_freed_heap()
    assert rss_mb() < held - 100, (held, rss_mb())
    libc.free(blocks[-1])
