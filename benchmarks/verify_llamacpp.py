"""Correctness against llama.cpp on the same GGUF (needs `pip install llama-cpp-python`).

1. Tokenization: our tokenizer.json (rebuilt from the GGUF vocabulary) vs llama.cpp's
   tokenizer on >= 20 strings including CJK, emoji, digits and whitespace.
2. Next-token agreement: our fp32 graph vs llama.cpp running an F32 GGUF that holds the same
   (dequantized) values, top-1 over >= 200 positions; and every shipped variant vs llama.cpp
   running the original Q4_1 GGUF.

    make verify-llamacpp   # writes benchmarks/results/verify_llamacpp.json
    .venv/bin/python benchmarks/verify_llamacpp.py --model gemma3-270m   # verify_llamacpp_gemma3-270m.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_decode import llama_cpp_safe_kwargs
from gguf_source import gguf_file
from machine import describe, machine

STRINGS = [
    "Hello world",
    "Hello, world!",
    " leading space",
    "trailing space ",
    "  two  spaces  ",
    "tabs\tand\nnewlines\n\n",
    "12345 678.9 -3e10",
    "2024-11-25 07:30:00",
    "x = [1, 2, 3]; y = {'a': 1}",
    "def f(x):\n    return x ** 2\n",
    "你好，世界！",
    "今天的温度是二十一度，湿度百分之四十。",
    "こんにちは、ロボットです。",
    "안녕하세요, 로봇입니다",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "🤖🔋⚡ robots!",
    "family 👨‍👩‍👧 flag 🇫🇷 ok 👍🏽",
    "café naïve résumé e\u0301",
    "Ünïcödé ÀÉÎÕÜ ß ø",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "URL: https://example.com/a?b=c&d=e#f",
    "The quick brown fox jumps over the lazy dog.",
    "ALL CAPS AND lower",
    "can't won't it's y'all",
    "—–-‐ “quotes” ‘single’ …",
]


def write_f32_gguf(src: Path, dst: Path) -> None:
    """Same tensors dequantized to F32, same metadata (llama.cpp row order kept)."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type", "general.alignment"):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, values.reshape([int(d) for d in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama_logits(model: Path, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model),
        n_ctx=1024,
        n_threads=2,
        n_batch=1024,
        logits_all=True,
        verbose=False,
        **llama_cpp_safe_kwargs(),
    )
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def main() -> None:
    from llama_cpp import Llama

    from edgellm_sdk import Engine
    from edgellm_sdk.models.store import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="a known model name (its GGUF is pip-downloaded)")
    model = ap.parse_args().model
    src = gguf_file(model)
    f32 = src.with_name(src.stem + ".F32.gguf")
    if not f32.is_file():
        write_f32_gguf(src, f32)
    report = {"date": time.strftime("%Y-%m-%d"), "model": model}

    vocab_only = Llama(model_path=str(src), vocab_only=True, verbose=False)
    engine = Engine.load(model, variant="fp32", threads=2, max_context=1024)
    mismatches = []
    for s in STRINGS:
        ours = engine.tokenizer.encode(s, add_bos=False)  # llama.cpp is asked without BOS too
        theirs = vocab_only.tokenize(s.encode(), add_bos=False, special=True)
        if ours != theirs:
            mismatches.append({"text": s, "ours": ours, "llama.cpp": theirs})
    report["tokenization"] = {
        "strings": len(STRINGS),
        "identical": len(STRINGS) - len(mismatches),
        "mismatches": mismatches,
    }

    text = (HERE / "data" / "heldout_en.txt").read_text()
    ids = engine.tokenizer.encode(text)[:400]
    engine.close()
    agreement = {}
    ref_f32 = llama_logits(f32, ids)
    ref_q41 = llama_logits(src, ids)
    for variant in ("fp32", "q8", "q4"):
        with Engine.load(model, variant=variant, threads=2, max_context=1024) as e:
            ours = np.concatenate([e.backend.forward([t]).copy() for t in ids])  # as decoding does
        agreement[variant] = {
            "positions": len(ids),
            "top1_vs_llamacpp_f32": float((ours.argmax(-1) == ref_f32.argmax(-1)).mean()),
            "top1_vs_llamacpp_original_gguf": float((ours.argmax(-1) == ref_q41.argmax(-1)).mean()),
            "max_abs_logit_diff_vs_f32": float(np.abs(ours - ref_f32).max()),
        }
    agreement["llama.cpp on the original GGUF"] = {
        "positions": len(ids),
        "top1_vs_llamacpp_f32": float((ref_q41.argmax(-1) == ref_f32.argmax(-1)).mean()),
    }
    report["next_token"] = agreement
    out = HERE / "results" / ("verify_llamacpp.json" if model == DEFAULT_MODEL else f"verify_llamacpp_{model}.json")
    out.parent.mkdir(exist_ok=True)
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    ok = not mismatches and agreement["fp32"]["top1_vs_llamacpp_f32"] >= 0.99
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
