"""Inference backends. ``ort`` is the only module that imports onnxruntime."""

from .base import Backend

__all__ = ["Backend"]
