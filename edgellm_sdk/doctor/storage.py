"""Checks of $EDGELLM_HOME: every installed model's files against manifest.json, writability, free disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelCorrupt
from ..models.manifest import MANIFEST, STAMP, Manifest, sha256_file
from ..models.store import DEFAULT_MODEL, KNOWN_MODELS
from .core import FAIL, OK, WARN, Check, Context, human

PULL_NEEDS = 1 << 30  # a pull of the default model: ~0.8 GB of variants + the GGUF it converts


def model_dirs(ctx: Context) -> list[Path]:
    """Directories of the store that hold a manifest.json (loadable or not)."""
    d = ctx.store.models_dir
    return (
        sorted(p for p in d.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()) if d.is_dir() else []
    )


def no_models(ctx: Context) -> Check:
    return Check("model", WARN, f"no models installed in {ctx.store.models_dir}", f"edgellm pull {DEFAULT_MODEL}")


def model(root: Path, verify: bool) -> Check:
    """Size, variants and integrity of one model. Without --verify a file is re-hashed only when its size or
    mtime changed since the last successful hash (Manifest.verify's stamps, as Engine.load does);
    --verify re-hashes every file, which also catches bit rot that leaves size and mtime alone."""
    try:
        m = Manifest.load(root)
    except ModelCorrupt as e:
        return Check("model", FAIL, f"{root.name}: {_short(e)}", _repair(root.name, {}))
    size = sum(int(f.get("size", 0)) for f in m.files.values())
    variants = ", ".join(
        f"{v}{'*' if v == m.default_variant else ''} {human(m.variant_bytes(v))}" for v in sorted(m.variants)
    )
    detail = f"{m.name}: {human(size)} in {len(m.files)} files, variants {variants}"
    try:
        _rehash(m) if verify else m.verify()
    except ModelCorrupt as e:
        return Check(
            "model", FAIL, f"{detail}; CORRUPT: {_short(e)}", _repair(m.source.get("pulled_as", m.name), m.source)
        )
    return Check("model", OK, f"{detail}; sha256 OK{' (all re-hashed)' if verify else ''}")


def recommended(ctx: Context, installed: list[str]) -> list[Check]:
    name = ctx.profile.recommended_model
    if not installed or name in installed:
        return []
    return [
        Check(
            "model",
            WARN,
            f"{name} (recommended by profile {ctx.profile.name}) is not installed",
            f"edgellm pull {name}",
        )
    ]


def home(ctx: Context) -> Check:
    h = ctx.store.home
    where = f"{h} ({'EDGELLM_HOME' if os.environ.get('EDGELLM_HOME') else 'default; EDGELLM_HOME unset'})"
    probe = h if h.is_dir() else _existing_parent(h)
    try:
        fd, path = tempfile.mkstemp(prefix=".doctor-", dir=probe)
        os.close(fd)
        os.unlink(path)
    except OSError as e:
        return Check(
            "home",
            WARN,
            f"{where} not writable: {e.strerror}",
            f"sudo chown -R $USER {probe} or export "
            "EDGELLM_HOME=<a writable directory> (pull needs it; installed models load read-only)",
        )
    return Check("home", OK, f"{where} writable" + ("" if h.is_dir() else " (created by the first pull)"))


def disk(ctx: Context) -> Check:
    where = _existing_parent(ctx.store.home)
    free = shutil.disk_usage(where).free
    detail = f"{human(free)} free under {where}"
    if free < 50 << 20:
        return Check("disk", FAIL, detail + ": the disk is full", f"free space on the filesystem of {where}")
    if free < PULL_NEEDS:
        return Check(
            "disk",
            WARN,
            detail + f": `edgellm pull {DEFAULT_MODEL}` needs about {human(PULL_NEEDS)}",
            "free space or point EDGELLM_HOME to a larger disk",
        )
    return Check("disk", OK, detail)


def _rehash(m: Manifest) -> None:
    for rel, expected in m.files.items():
        path = m.root / rel
        if not path.is_file():
            raise ModelCorrupt(f"{path} is missing")
        if path.stat().st_size != expected["size"] or sha256_file(path) != expected["sha256"]:
            (m.root / STAMP).unlink(missing_ok=True)  # so Engine.load re-hashes and refuses it too
            raise ModelCorrupt(f"{path} does not match its size / sha256 in {MANIFEST}")


def _repair(name: str, source: dict) -> str:
    if name in KNOWN_MODELS:
        return f"edgellm pull {name} --force"
    origin = source.get("copied_from") or source.get("gguf") or "<its .gguf file or directory>"
    return f"edgellm pull {origin} --name {name} --force"


def _short(e: Exception) -> str:
    return str(e).split("; run ")[0]


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
