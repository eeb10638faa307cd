"""A small ONNX graph builder shared by the exporters (llama, BERT)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class OnnxGraph:
    """Nodes and initializers of an ONNX graph being built, with generated unique node names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(
        self,
        op: str,
        inputs: list[str],
        n_out: int = 1,
        domain: str = "",
        name: str = "",
        outputs: list[str] | None = None,
        **attrs,
    ) -> list[str]:
        self._n += 1
        name = name or f"{op}_{self._n}"
        outputs = outputs or [f"{name}/out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))
        return outputs

    def op(self, op: str, *inputs: str, domain: str = "", name: str = "", **attrs) -> str:
        return self.node(op, list(inputs), 1, domain, name, **attrs)[0]
