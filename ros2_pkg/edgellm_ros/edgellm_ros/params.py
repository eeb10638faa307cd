"""Typed node parameters: declared with descriptors (description, range, choices) and validated on
every set — from the command line, a YAML file or `ros2 param set` — so a bad value is refused
with the reason instead of reaching the SDK."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult


@dataclass(frozen=True)
class Param:
    name: str
    default: object  # its type is the parameter's type (bool, int, float, str, list[str])
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    check: Callable[[object], str | None] | None = None  # extra rule: the reason a value is bad, or None

    @property
    def is_float(self) -> bool:
        return isinstance(self.default, float)

    def coerce(self, value: object) -> object:
        """A float parameter written without a decimal point (``every_s: 60``) arrives as an int."""
        return float(value) if self.is_float and isinstance(value, int) else value

    def descriptor(self) -> ParameterDescriptor:
        # dynamic typing lets a float parameter take an int; problem() still refuses other types
        desc = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only, dynamic_typing=self.is_float
        )
        if self.choices:
            desc.additional_constraints = "one of: " + ", ".join(self.choices)
        if isinstance(self.default, bool) or (self.minimum is None and self.maximum is None):
            return desc
        low = self.minimum if self.minimum is not None else -(2**31)
        high = self.maximum if self.maximum is not None else 2**31 - 1
        if isinstance(self.default, int):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        elif isinstance(self.default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
        return desc

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.is_float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{self.name}={value!r} must be a number: {self.description}"
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {', '.join(self.choices)}"
        if self.minimum is not None and isinstance(value, (int, float)) and value < self.minimum:
            return f"{self.name}={value!r} is below the minimum {self.minimum:g}: {self.description}"
        if self.maximum is not None and isinstance(value, (int, float)) and value > self.maximum:
            return f"{self.name}={value!r} is above the maximum {self.maximum:g}: {self.description}"
        return self.check(value) if self.check is not None else None


class BadParameter(ValueError):
    """A parameter value given at start-up was refused (the node cannot run with it)."""


def declare(node, params: Sequence[Param]) -> dict[str, object]:
    """Declare ``params`` on ``node`` and refuse bad values from then on; returns their values.
    A bad start-up value raises BadParameter naming the parameter and why."""
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    by_name = {p.name: p for p in params}

    def on_set(changes) -> SetParametersResult:
        for change in changes:
            param = by_name.get(change.name)
            reason = param.problem(change.value) if param is not None else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    values = {}
    for p in params:
        try:
            values[p.name] = p.coerce(node.declare_parameter(p.name, p.default, p.descriptor()).value)
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            raise BadParameter(f"parameter {p.name}: {exc}") from None
    return values


def current(node, params: Sequence[Param]) -> dict[str, object]:
    return {p.name: p.coerce(node.get_parameter(p.name).value) for p in params}
