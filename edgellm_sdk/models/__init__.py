"""Model store: where models live, how they are pulled and checked, and how one is planned for a device."""

from .manifest import Manifest
from .plan import LoadPlan, model_context
from .store import DEFAULT_MODEL, KNOWN_MODELS, ModelStore

__all__ = ["DEFAULT_MODEL", "KNOWN_MODELS", "LoadPlan", "Manifest", "ModelStore", "model_context"]
