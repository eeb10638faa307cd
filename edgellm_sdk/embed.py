"""Embedder: sentence embeddings on the device (onnxruntime), for the semantic cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError
from .models.store import ModelStore

DEFAULT_EMBEDDER = "minilm-l6"


class Embedder:
    def __init__(self, session, tokenizer, name: str = "?"):
        self.session, self.tokenizer, self.name = session, tokenizer, name
        self.dimension = int(session.get_outputs()[0].shape[-1])

    @classmethod
    def load(
        cls, model: str | Path = DEFAULT_EMBEDDER, *, store: ModelStore | None = None, threads: int = 1
    ) -> Embedder:
        """An installed embedding model (``edgellm pull minilm-l6``) or its directory."""
        import onnxruntime as ort
        from tokenizers import Tokenizer as HFTokenizer

        manifest = (store or ModelStore()).resolve(model)
        manifest.verify()
        if manifest.source.get("kind") != "sentence-embedding":
            raise ModelError(f"{manifest.name} is not a sentence-embedding model (try `edgellm pull minilm-l6`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(manifest.variant_path(None)), opts, providers=["CPUExecutionProvider"])
        tokenizer = HFTokenizer.from_file(str(manifest.root / "tokenizer.json"))
        return cls(session, tokenizer, manifest.name)

    def embed(self, texts: str | Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (cosine similarity = dot product)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch or any(not isinstance(t, str) for t in batch):
            raise ValueError("embed() takes a string or a non-empty list of strings")
        encodings = self.tokenizer.encode_batch(batch)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros((len(batch), width), np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out[0] if single else out
