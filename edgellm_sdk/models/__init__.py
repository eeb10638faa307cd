"""Model store: where models live, how they are pulled, and how their integrity is checked."""

from .manifest import Manifest
from .store import KNOWN_MODELS, ModelStore

__all__ = ["KNOWN_MODELS", "Manifest", "ModelStore"]
