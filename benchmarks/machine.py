"""What machine a benchmark ran on: every result file records it (compare systems only within one run)."""

from __future__ import annotations

import os
import platform


def machine(threads: int | None = None) -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16") if f in flags]
    info = {"cpu": model, "cores": os.cpu_count(), "isa": isa, "python": platform.python_version()}
    if threads is not None:
        info["threads"] = threads
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def describe(info: dict) -> str:
    return f"{info['cpu']} ({info['cores']} cores; {', '.join(info['isa']) or 'no AVX2'})"
