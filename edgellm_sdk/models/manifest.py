"""manifest.json: the list of a model directory's files with sha256, and its variants.

Hashing a 100+ MB graph costs ~0.2 s, so a successful check is remembered in
``.verified.json`` keyed by (size, mtime_ns); a file that changed on disk is re-hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelCorrupt

MANIFEST = "manifest.json"
STAMP = ".verified.json"
FORMAT = 1
# transformers.js variant names -> our short names
TRANSFORMERS_JS_VARIANTS = {
    "model.onnx": "fp32",
    "model_fp16.onnx": "fp16",
    "model_quantized.onnx": "q8",
    "model_int8.onnx": "int8",
    "model_uint8.onnx": "uint8",
    "model_q4.onnx": "q4",
    "model_q4f16.onnx": "q4f16",
    "model_bnb4.onnx": "bnb4",
}


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Manifest:
    root: Path
    name: str
    variants: dict[str, str]  # variant -> relative onnx path
    default_variant: str
    files: dict[str, dict] = field(default_factory=dict)  # relative path -> {"sha256", "size"}
    source: dict = field(default_factory=dict)

    @classmethod
    def load(cls, root: str | Path) -> Manifest:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise ModelCorrupt(f"{root} has no {MANIFEST} (an interrupted pull?); run `edgellm pull` again")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                root,
                data["name"],
                dict(data["variants"]),
                data["default_variant"],
                dict(data["files"]),
                dict(data.get("source", {})),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ModelCorrupt(f"{path} is not a valid manifest ({e}); run `edgellm pull` again") from e

    @classmethod
    def scan(cls, root: str | Path, name: str | None = None) -> Manifest:
        """Describe a directory in the transformers.js layout that has no manifest yet."""
        root = Path(root)
        variants = {v: f"onnx/{f}" for f, v in TRANSFORMERS_JS_VARIANTS.items() if (root / "onnx" / f).is_file()}
        if not variants:
            raise ModelCorrupt(f"{root} has no onnx/model*.onnx file (expected the transformers.js layout)")
        for required in ("config.json", "tokenizer.json"):
            if not (root / required).is_file():
                raise ModelCorrupt(f"{root} has no {required} (expected the transformers.js layout)")
        preferred = ("q4", "q8", "int8", "uint8", "fp32", "fp16", "q4f16", "bnb4")
        return cls(root, name or root.name, variants, next(v for v in preferred if v in variants))

    def variant_path(self, variant: str | None) -> Path:
        variant = variant or self.default_variant
        if variant not in self.variants:
            raise ValueError(
                f"variant {variant!r} is not in {self.name}; available: {', '.join(sorted(self.variants))}"
            )
        return self.root / self.variants[variant]

    def verify(self, paths: list[str] | None = None) -> None:
        """Check size and sha256 of ``paths`` (default: every file); raise ModelCorrupt naming the file."""
        stamp_path = self.root / STAMP
        try:
            stamps = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            stamps = {}
        changed = False
        for rel in paths if paths is not None else list(self.files):
            expected = self.files.get(rel)
            if expected is None:
                continue  # not hashed (e.g. a scanned directory)
            path = self.root / rel
            fix = f"run `edgellm pull {self.source.get('pulled_as', self.name)}` to repair it"
            if not path.is_file():
                raise ModelCorrupt(f"{path} is missing; {fix}")
            st = path.stat()
            if st.st_size != expected["size"]:
                raise ModelCorrupt(f"{path} has {st.st_size} bytes, manifest says {expected['size']}; {fix}")
            key = [st.st_size, st.st_mtime_ns, expected["sha256"]]
            if stamps.get(rel) == key:
                continue
            if sha256_file(path) != expected["sha256"]:
                raise ModelCorrupt(f"{path} does not match its sha256 in {MANIFEST}; {fix}")
            stamps[rel], changed = key, True
        if changed:
            try:
                stamp_path.write_text(json.dumps(stamps))
            except OSError:
                pass  # read-only store: verification still happened

    def variant_files(self, variant: str) -> list[str]:
        """The graph file of ``variant`` and its external-data file(s)."""
        rel = self.variants[variant]
        on_disk = {p.relative_to(self.root).as_posix() for p in (self.root / rel).parent.glob(Path(rel).name + "*")}
        return sorted(f for f in set(self.files) | on_disk if f == rel or f.startswith(rel + "_data"))

    def variant_bytes(self, variant: str) -> int:
        return sum(
            int(self.files.get(f, {}).get("size") or (self.root / f).stat().st_size)
            for f in self.variant_files(variant)
        )


def write_manifest(
    root: str | Path, *, name: str, variants: dict[str, str], default_variant: str, source: dict | None = None
) -> Manifest:
    root = Path(root)
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in (MANIFEST, STAMP) or rel.startswith("."):
            continue
        files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    data = {
        "format": FORMAT,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "default_variant": default_variant,
        "variants": variants,
        "files": files,
        "source": source or {},
    }
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST)
    return Manifest.load(root)
