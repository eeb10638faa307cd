"""Host-side model toolchain: GGUF -> ONNX conversion, quantization, packaging.

Needs the ``tools`` extra (onnx, gguf). Nothing in the runtime imports this package.
"""
