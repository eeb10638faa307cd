"""Converters: how a pull turns downloaded weights into a model directory.

The runtime converts nothing itself: building ONNX graphs needs the host toolchain (onnx, gguf:
``pip install 'edgellm-sdk[tools]'``), and the runtime never imports it. A pull that needs a
converter finds one by kind ("gguf", "sentence-transformer"), in this order:

1. the ``converters`` mapping passed to ``ModelStore.pull`` (``edgellm pull`` passes the toolchain's);
2. the ``edgellm_sdk.converters`` entry points: the distribution declares the toolchain's there, and
   any other package may add a kind of its own.

A converter is called as ``convert(src, out, name=..., source=..., progress=...)``: ``src`` is the
weights (a .gguf file, or the directory of a sentence-transformers model), ``out`` the directory
to fill, manifest.json included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from ..errors import PullError

ENTRY_POINTS = "edgellm_sdk.converters"
TOOLCHAIN = "edgellm_sdk.toolchain.convert.CONVERTERS"


class Converter(Protocol):
    def __call__(
        self, src: Path, out: Path, /, *, name: str, source: dict | None, progress: Callable[[str], None]
    ) -> object: ...


def find_converter(kind: str, what: str, given: Mapping[str, Converter] | None = None) -> Converter:
    """The converter for ``kind``; PullError saying what to install or pass when there is none.

    ``what`` names the model being pulled, for the message."""
    if given and kind in given:
        return given[kind]
    for entry in entry_points(group=ENTRY_POINTS, name=kind):
        try:
            return entry.load()
        except ImportError as e:
            raise PullError(
                f"{what} must be converted to ONNX, and the {kind!r} converter cannot be imported ({e}); "
                "install the toolchain: pip install 'edgellm-sdk[tools]'"
            ) from e
    raise PullError(
        f"{what} must be converted to ONNX, and no {kind!r} converter is available: install the toolchain "
        f"(pip install 'edgellm-sdk[tools]') and run `edgellm pull`, or pass converters={TOOLCHAIN} to "
        "ModelStore.pull"
    )
