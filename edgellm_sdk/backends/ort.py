"""onnxruntime backend for decoder graphs in the Optimum / transformers.js layout.

Two KV strategies, picked from the graph:
- in place (our converter's graphs, metadata ``edgellm.kv_inplace=1``): one static
  [1, kv_heads, max_context, head_dim] buffer per layer bound as both past and present,
  so GroupQueryAttention writes new keys straight into it; nothing is copied per step.
  The buffers are calloc'ed, so only pages holding real tokens count towards RSS.
- growing (any other export): present tensors are fed back as the next step's past.
The KV cache is float32 (profiles.KV_DTYPES says why not float16); a graph that keeps it in
another type is refused at load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from ..errors import MissingDependency, ModelError, ProviderUnavailable
from ..profiles import KV_DTYPES, default_threads

try:
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover
    raise MissingDependency("onnxruntime", "core") from e

_PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)")


_KV_TYPES = {"float32": "tensor(float)"}  # kv_dtype -> onnxruntime's name of the graph's past type


def _check_providers(requested: Sequence[str], present: Sequence[str], problem: str) -> None:
    """Every requested execution provider must be there: a silent CPU fallback would break latency
    and memory assumptions the device profile was made for."""
    missing = [p for p in requested if p not in present]
    if missing:
        raise ProviderUnavailable(
            f"execution provider {', '.join(missing)} {problem}; onnxruntime has {', '.join(present)}. On a Jetson "
            "install the JetPack-matched onnxruntime-gpu wheel (pip uninstall onnxruntime first; see devices/jetson); "
            "elsewhere use a CPU profile (x86-64, rpi4, rpi5)"
        )


class OrtBackend:
    def __init__(
        self,
        path: str | os.PathLike,
        *,
        max_context: int = 2048,
        threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        inter_op_threads: int = 1,
        kv_dtype: str = "float32",
    ):
        if kv_dtype not in _KV_TYPES:
            raise ValueError(f"kv_dtype must be one of {', '.join(KV_DTYPES)}, got {kv_dtype!r}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        _check_providers(providers, ort.get_available_providers(), "is not in this onnxruntime build")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=list(providers))
        except Exception as e:  # onnxruntime raises its own untyped Fail/InvalidGraph
            raise ModelError(f"onnxruntime could not load {path}: {e}") from e
        _check_providers(providers, self.session.get_providers(), "could not be initialised (driver, CUDA libraries?)")
        self.providers = tuple(self.session.get_providers())
        inputs = {i.name: i for i in self.session.get_inputs()}
        kv_type = inputs["past_key_values.0.key"].type if "past_key_values.0.key" in inputs else None
        if kv_type is not None and kv_type != _KV_TYPES[kv_dtype]:
            raise ModelError(
                f"{path} keeps its KV cache as {kv_type}; the runtime keeps it as {kv_dtype} only "
                "(see edgellm_sdk.profiles): use a variant with float32 past_key_values (fp32, q8, q4)"
            )
        self.input_names = set(inputs)
        for required in ("input_ids", "attention_mask"):
            if required not in inputs:
                raise ModelError(f"{path} has no {required!r} input; not a decoder in the Optimum layout")
        past = sorted((int(m[1]), m[2]) for n in inputs if (m := _PAST.fullmatch(n)))
        self.num_layers = len(past) // 2
        shape = inputs["past_key_values.0.key"].shape if past else [1, 1, 0, 1]
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        logits_shape = self.session.get_outputs()[0].shape
        self.vocab_size = int(logits_shape[-1]) if isinstance(logits_shape[-1], int) else -1
        meta = self.session.get_modelmeta().custom_metadata_map
        self.inplace = meta.get("edgellm.kv_inplace") == "1"
        self.max_context = max_context
        self._pos = 0
        self._io = self.session.io_binding()
        self._ones = np.ones((1, max_context), np.int64)
        self._positions = np.arange(max_context, dtype=np.int64)[None, :]
        self._keep_one = np.array(1, np.int64)
        self._logits_one = np.empty((1, 1, max(self.vocab_size, 1)), np.float32)
        self._kv_names = [
            (f"past_key_values.{i}.{kv}", f"present.{i}.{kv}")
            for i in range(self.num_layers)
            for kv in ("key", "value")
        ]
        self._io.bind_output("logits", "cpu")  # first, so it stays output 0 when rebound
        if self.inplace:
            self._kv = [np.zeros((1, self.kv_heads, max_context, self.head_dim), np.float32) for _ in self._kv_names]
            for (past_name, present_name), buf in zip(self._kv_names, self._kv):
                value = ort.OrtValue.ortvalue_from_numpy(buf)
                self._io.bind_ortvalue_input(past_name, value)
                self._io.bind_ortvalue_output(present_name, value)
        else:
            empty = np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)
            self._kv = [empty] * len(self._kv_names)

    @property
    def position(self) -> int:
        return self._pos

    def forward(self, ids: Sequence[int], *, all_logits: bool = False, last: int | None = None) -> np.ndarray:
        n = len(ids)
        if n == 0:
            raise ValueError("forward() needs at least one token")
        end = self._pos + n
        if end > self.max_context:
            raise ModelError(f"KV cache full: {end} tokens > max_context {self.max_context}")
        keep = n if all_logits else max(1, min(last or 1, n))  # logits of the last `keep` positions
        io = self._io
        io.bind_cpu_input("input_ids", np.asarray(ids, dtype=np.int64)[None, :])
        io.bind_cpu_input("attention_mask", self._ones[:, :end])
        if "position_ids" in self.input_names:
            io.bind_cpu_input("position_ids", self._positions[:, self._pos : end])
        has_keep = "num_logits_to_keep" in self.input_names
        if has_keep:
            io.bind_cpu_input("num_logits_to_keep", self._keep_one if keep == 1 else np.array(keep, np.int64))
        use_fixed_output = self.vocab_size > 0 and keep == 1 and (has_keep or n == 1)
        if use_fixed_output:
            io.bind_output(
                "logits",
                "cpu",
                element_type=np.float32,
                shape=self._logits_one.shape,
                buffer_ptr=self._logits_one.ctypes.data,
            )
        else:
            io.bind_output("logits", "cpu")
        if not self.inplace:
            for (past, present), value in zip(self._kv_names, self._kv):
                io.bind_cpu_input(past, value) if isinstance(value, np.ndarray) else io.bind_ortvalue_input(past, value)
                io.bind_output(present, "cpu")
        self.session.run_with_iobinding(io)
        outputs = [] if self.inplace and use_fixed_output else io.get_outputs()
        if not self.inplace:
            self._kv = list(outputs[1:])
        self._pos = end
        if use_fixed_output:
            return self._logits_one[0]  # reused buffer: valid until the next forward()
        logits = outputs[0].numpy()[0]
        return logits[-keep:]

    def snapshot(self, length: int) -> list[np.ndarray]:
        """Copies of the K/V tensors for the first ``length`` cached tokens."""
        if not 0 < length <= self._pos:
            raise ValueError(f"snapshot length must be in [1, {self._pos}], got {length}")
        return [np.array(_as_numpy(v)[:, :, :length]) for v in self._kv]

    def restore(self, arrays: list[np.ndarray], length: int) -> None:
        """Load the first ``length`` tokens of a snapshot as the cache contents."""
        if len(arrays) != len(self._kv) or length > arrays[0].shape[2] or length > self.max_context:
            raise ValueError("snapshot does not fit this model's KV layout")
        if self.inplace:
            for buf, src in zip(self._kv, arrays):
                buf[:, :, :length] = src[:, :, :length]
        else:
            self._kv = [np.ascontiguousarray(src[:, :, :length]) for src in arrays]
        self._pos = length

    def truncate(self, length: int) -> None:
        if not 0 <= length <= self._pos:
            raise ValueError(f"truncate length must be in [0, {self._pos}], got {length}")
        if not self.inplace and length < self._pos:
            self._kv = [np.ascontiguousarray(_as_numpy(v)[:, :, :length]) for v in self._kv]
        self._pos = length  # in place: positions >= length are masked out and overwritten

    def close(self) -> None:
        self._io.clear_binding_inputs()
        self._io.clear_binding_outputs()
        self._kv = []
        self.session = None


def _as_numpy(value) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else value.numpy()
