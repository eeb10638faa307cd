import subprocess
import sys

HEAVY = [
    "onnxruntime",
    "tokenizers",
    "numpy",
    "jinja2",
    "onnx",
    "gguf",
    "vosk",
    "sounddevice",
    "serial",
    "paho",
    "rclpy",
    "torch",
    "piper",
    "tqdm",
]


def test_import_is_light():
    code = f"import sys, edgellm_sdk; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_public_api_resolves():
    import edgellm_sdk

    assert edgellm_sdk.__all__ == sorted(edgellm_sdk.__all__)
    for name in edgellm_sdk.__all__:
        assert getattr(edgellm_sdk, name) is not None
