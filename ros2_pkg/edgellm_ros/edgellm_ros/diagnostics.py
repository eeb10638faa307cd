"""A node's health as a diagnostic_msgs/DiagnosticArray for /diagnostics."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def diagnostic_array(node, level: bytes, message: str, values: dict[str, object]) -> DiagnosticArray:
    status = DiagnosticStatus(
        level=level,
        name=f"edgellm: {node.get_fully_qualified_name()}",
        message=message,
        hardware_id=node.get_name(),
        values=[KeyValue(key=k, value=_text(v)) for k, v in values.items()],
    )
    return DiagnosticArray(header=_header(node), status=[status])


def _header(node):
    from std_msgs.msg import Header

    return Header(stamp=node.get_clock().now().to_msg())


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
