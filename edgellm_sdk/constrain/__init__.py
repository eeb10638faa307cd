"""Constrained decoding: JSON Schema, regex or Lark grammar -> a token mask per step (llguidance)."""

from .guidance import Constraint, ConstraintError, compile_constraint

__all__ = ["Constraint", "ConstraintError", "compile_constraint"]
