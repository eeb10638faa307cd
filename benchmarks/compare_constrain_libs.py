"""Compare constrained-decoding libraries on the default model's tokenizer: llguidance (what the
SDK uses, edgellm_sdk/constrain/guidance.py), outlines-core and xgrammar.

For each JSON schema it measures, per library:
  * tokenizer set-up (once per model) and cold grammar compile time, plus the first mask;
  * per-token mask time (median / p95 µs) and advance time, replaying a real decoded sequence;
  * correctness along that sequence: every token must be allowed by each library's mask, the end
    (EOS) must be accepted, and each step's allowed-token set is compared with llguidance's;
  * whether JSON Schema features (multipleOf, maxLength, pattern, anyOf, ...) compile AND are
    enforced (a valid document accepted, an invalid one rejected, token by token);
  * the end-to-end decode rate of the Engine with each library's masks (greedy, interleaved runs).

The token sequences come from real constrained greedy decoding with our Engine (llguidance).

Install the peers into the SDK's venv (xgrammar depends on torch: install the CPU torch first and
pin it so pip never pulls another build; on this machine the wheel is in /opt/wheels):

    .venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    #   (elsewhere: .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)
    echo "torch==2.13.0" > /tmp/torch-pin.txt
    .venv/bin/pip install -c /tmp/torch-pin.txt xgrammar==0.2.8 outlines-core==0.2.14

Run (a library that is not installed is reported and skipped):

    EDGELLM_HOME=.cache/edgellm .venv/bin/python benchmarks/compare_constrain_libs.py
    # writes benchmarks/results/compare_constrain_libs.json and .md
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from machine import describe, machine

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPLAYS = 5  # replays of each sequence for the mask timings
COMPILE_TRIALS = 3  # cold compiles per library and schema
DECODE_RUNS = 11  # interleaved Engine runs per library for the decode rate
MAX_SHOWN = 8  # tokens listed per disagreeing step

SYSTEM_ROBOT = "You control a home robot. Reply with one JSON command."

OBJECT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "id": {"type": "integer"},
        "battery_pct": {"type": "number"},
        "online": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "position": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "room": {"type": "string"}},
            "required": ["x", "y", "room"],
            "additionalProperties": False,
        },
        "note": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "id", "battery_pct", "online", "tags", "position", "note"],
    "additionalProperties": False,
}

PATTERN_SCHEMA = {
    "type": "object",
    "properties": {
        "serial": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"},
        "firmware": {"type": "string", "pattern": "^v[0-9]+\\.[0-9]+\\.[0-9]+$"},
        "contact": {"type": "string", "pattern": "^[a-z]+@[a-z]+\\.com$"},
    },
    "required": ["serial", "firmware", "contact"],
    "additionalProperties": False,
}


def schemas():
    from edgellm_sdk.robot_demo import DEMO_COMMANDS

    robot = DEMO_COMMANDS.schema()
    return {
        "robot_command": {
            "schema": robot,
            "prompts": [
                [{"role": "system", "content": SYSTEM_ROBOT}, {"role": "user", "content": q}]
                for q in (
                    "turn left 45 degrees",
                    "switch off the bedroom lights",
                    "drive forward 1.5 meters",
                    "close the gripper",
                )
            ],
        },
        "object_mixed": {
            "schema": OBJECT_SCHEMA,
            "prompts": [
                [
                    {
                        "role": "user",
                        "content": "Describe the warehouse robot R2-D2 (id 42, battery 87.5%, "
                        "online, in the kitchen at x=1.5 y=-2) as JSON.",
                    }
                ]
            ],
        },
        "string_patterns": {
            "schema": PATTERN_SCHEMA,
            "prompts": [
                [
                    {
                        "role": "user",
                        "content": "Give the robot's serial number, firmware version and support email as JSON.",
                    }
                ]
            ],
        },
    }


def wrap(prop: dict) -> dict:
    return {"type": "object", "properties": {"v": prop}, "required": ["v"], "additionalProperties": False}


# feature -> (schema, documents that must be accepted, documents that must be rejected)
FEATURES = {
    "multipleOf (number 0.5)": (wrap({"type": "number", "multipleOf": 0.5}), ['{"v":2.5}'], ['{"v":2.3}']),
    "multipleOf (integer 5)": (wrap({"type": "integer", "multipleOf": 5}), ['{"v":15}'], ['{"v":12}']),
    "multipleOf (0.01, robot schema)": (wrap({"type": "number", "multipleOf": 0.01}), ['{"v":1.25}'], ['{"v":1.255}']),
    "maxLength": (wrap({"type": "string", "maxLength": 5}), ['{"v":"abcde"}'], ['{"v":"abcdef"}']),
    "minLength": (wrap({"type": "string", "minLength": 3}), ['{"v":"abc"}'], ['{"v":"ab"}']),
    "pattern": (wrap({"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}), ['{"v":"AB-123"}'], ['{"v":"ab-123"}']),
    "anyOf": (
        wrap({"anyOf": [{"type": "integer"}, {"enum": ["x"]}]}),
        ['{"v":5}', '{"v":"x"}'],
        ['{"v":"y"}', '{"v":true}'],
    ),
    "minimum/maximum (number)": (wrap({"type": "number", "minimum": 0.05, "maximum": 5}), ['{"v":2}'], ['{"v":7}']),
    "minimum/maximum (integer)": (
        wrap({"type": "integer", "minimum": 1, "maximum": 360}),
        ['{"v":90}'],
        ['{"v":400}', '{"v":0}'],
    ),
    "const/enum": (wrap({"enum": ["forward", "backward"]}), ['{"v":"forward"}'], ['{"v":"left"}']),
    "maxItems": (
        wrap({"type": "array", "items": {"type": "integer"}, "maxItems": 2}),
        ['{"v":[1,2]}'],
        ['{"v":[1,2,3]}'],
    ),
    # JSON validity of strings: escapes must be allowed, raw control characters (U+0000-U+001F) rejected
    "string: escapes ok, raw control chars rejected": (
        wrap({"type": "string"}),
        ['{"v":"a\\"b\\n"}'],
        ['{"v":"a\x01b"}', '{"v":"a\tb"}'],
    ),
    "maxLength string: escapes ok, raw control chars rejected": (
        wrap({"type": "string", "maxLength": 10}),
        ['{"v":"a\\"b\\n"}'],
        ['{"v":"a\x01b"}', '{"v":"a\tb"}'],
    ),
}


# --- the tokenizer's byte view ------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable-character map used by ByteLevel BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def token_bytes(hf, vocab_size: int) -> tuple[list[bytes], set[int]]:
    """Each id's bytes, and the ids of special added tokens (never valid inside JSON text)."""
    byte_level = json.loads(hf.to_str()).get("decoder", {}).get("type") == "ByteLevel"
    dec = {c: b for b, c in _bytes_to_unicode().items()}
    out = [b""] * vocab_size
    for tok, i in hf.get_vocab(with_added_tokens=True).items():
        if i < vocab_size:
            if byte_level and all(ch in dec for ch in tok):
                out[i] = bytes(dec[ch] for ch in tok)
            else:
                out[i] = tok.encode("utf-8")
    specials = {i for i, t in hf.get_added_tokens_decoder().items() if t.special and i < vocab_size}
    return out, specials


def allowed_from_bitmask(bitmask: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.unpackbits(np.ascontiguousarray(bitmask).view(np.uint8).reshape(-1), bitorder="little")[
        :vocab_size
    ].astype(bool)


# --- one adapter per library ---------------------------------------------------------------


class Lib:
    """Uniform view: ``setup()`` once per tokenizer; ``compile(schema)``; ``matcher(compiled)``
    gives an object with fill() -> int32 bitmask, consume(token) -> bool, ended() -> bool."""

    name = "?"
    module = "?"

    def __init__(self, hf, vocab_size: int, eos: int):
        self.hf, self.V, self.eos = hf, vocab_size, eos
        self.version = None
        self.setup_s = None
        self.config = ""

    def words(self) -> int:
        return (self.V + 31) // 32


class LLGuidance(Lib):
    name, module = "llguidance", "llguidance"

    def setup(self):
        import llguidance as ll
        import llguidance.numpy

        self.ll = ll
        self.version = getattr(ll, "__version__", None) or _dist_version("llguidance")
        t = time.perf_counter()
        self.tok = ll.LLTokenizer(self.hf.to_str(), n_vocab=self.V, eos_token=self.eos)
        self.setup_s = time.perf_counter() - t
        self.config = 'grammar_from_json_schema(defaults={"whitespace_flexible": False}) as in the SDK'

    def compile(self, schema):
        grammar = self.ll.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        m = self.ll.LLMatcher(self.tok, grammar, log_level=0)
        if m.is_error():
            raise ValueError(m.get_error())
        return grammar, m  # the first matcher is part of compiling (it builds the lexer)

    def matcher(self, compiled, first=None):
        ll = self.ll
        m = first if first is not None else ll.LLMatcher(self.tok, compiled[0], log_level=0)
        bm = ll.numpy.allocate_token_bitmask(1, self.V)
        fill = ll.numpy.fill_next_token_bitmask

        class M:
            def fill(self_):
                fill(m, bm)
                if m.is_error():
                    raise RuntimeError(m.get_error())
                return bm

            def consume(self_, t):
                return m.consume_token(int(t))

            def ended(self_):
                return m.is_stopped()

            def forced(self_):
                """The bytes the grammar forces next (a fixed key, a closing quote...)."""
                return bytes(m.compute_ff_bytes())

        return M()


class OutlinesCore(Lib):
    name, module = "outlines-core", "outlines_core"

    def setup(self):
        import outlines_core

        self.oc = outlines_core
        self.version = _dist_version("outlines-core")
        t = time.perf_counter()
        tb, specials = token_bytes(self.hf, self.V)
        groups: dict[bytes, list[int]] = {}
        for i, b in enumerate(tb):
            if i != self.eos and i not in specials and b:
                groups.setdefault(b, []).append(i)
        self.vocab = outlines_core.Vocabulary(self.eos, groups)
        self.setup_s = time.perf_counter() - t
        self.config = (
            "Vocabulary(eos, {token bytes: ids}) without special tokens; "
            'build_regex_from_schema(whitespace_pattern="") -> Index -> Guide'
        )

    def compile(self, schema):
        from outlines_core.json_schema import build_regex_from_schema

        regex = build_regex_from_schema(json.dumps(schema), whitespace_pattern="")
        return self.oc.Index(regex, self.vocab)

    def matcher(self, index, first=None):
        g = self.oc.Guide(index)
        bm = np.zeros((1, self.words()), np.int32)
        ptr, n = bm.ctypes.data, bm.size

        class M:
            def fill(self_):
                g.write_mask_into(ptr, n, 4)
                return bm

            def consume(self_, t):
                if not g.accepts_tokens([int(t)]):
                    return False
                g.advance(int(t), return_tokens=False)
                return True

            def ended(self_):
                return g.is_finished()

        return M()


class XGrammar(Lib):
    name, module = "xgrammar", "xgrammar"

    def setup(self):
        import xgrammar as xgr

        self.xgr = xgr
        self.version = getattr(xgr, "__version__", None) or _dist_version("xgrammar")
        t = time.perf_counter()
        how = "TokenizerInfo.from_huggingface(PreTrainedTokenizerFast(tokenizer_object=hf))"
        try:
            from transformers import PreTrainedTokenizerFast

            info = xgr.TokenizerInfo.from_huggingface(
                PreTrainedTokenizerFast(tokenizer_object=self.hf), vocab_size=self.V, stop_token_ids=[self.eos]
            )
        except Exception as e:  # noqa: BLE001 - no transformers: build it from the vocabulary as from_huggingface does
            how = f"TokenizerInfo(vocab, metadata from tokenizer.json) ({type(e).__name__}: {e})"
            vocab = [""] * self.V
            for tok, i in self.hf.get_vocab(with_added_tokens=True).items():
                if i < self.V:
                    vocab[i] = tok
            meta = xgr.TokenizerInfo._detect_metadata_from_hf(self.hf.to_str())
            info = xgr.TokenizerInfo(
                vocab,
                vocab_type=meta["vocab_type"],
                vocab_size=self.V,
                stop_token_ids=[self.eos],
                add_prefix_space=meta["add_prefix_space"],
            )
        self.info = info
        self.setup_s = time.perf_counter() - t
        self.config = (
            f'{how}; compile_json_schema(any_whitespace=False, separators=(",", ":"), strict_mode=True), cache disabled'
        )

    def compile(self, schema):
        compiler = self.xgr.GrammarCompiler(self.info, cache_enabled=False)
        return compiler.compile_json_schema(
            json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True
        )

    def matcher(self, compiled, first=None):
        m = self.xgr.GrammarMatcher(compiled)
        bm = np.zeros((1, self.words()), np.int32)
        eos = self.eos

        class M:
            def fill(self_):
                m.fill_next_token_bitmask(bm)
                return bm

            def consume(self_, t):
                return m.accept_token(int(t))

            def ended(self_):
                return m.is_terminated()

            def eos_accepted(self_):
                return m.accept_token(eos)

        return M()


LIBS = (LLGuidance, OutlinesCore, XGrammar)


def _dist_version(name: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# --- measurements ----------------------------------------------------------------------------


def pct(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if values else None


def compile_times(lib: Lib, schema) -> dict:
    """Cold compile (fresh compiler / index each time) and the first mask after it."""
    compile_s, first_mask_s = [], []
    for _ in range(COMPILE_TRIALS):
        t = time.perf_counter()
        compiled = lib.compile(schema)
        compile_s.append(time.perf_counter() - t)
        first = compiled[1] if isinstance(lib, LLGuidance) else None
        m = lib.matcher(compiled, first)
        t = time.perf_counter()
        m.fill()
        first_mask_s.append(time.perf_counter() - t)
    return {
        "compile_ms_first": 1000 * compile_s[0],
        "compile_ms_median": 1000 * statistics.median(compile_s),
        "first_mask_ms_median": 1000 * statistics.median(first_mask_s),
        "time_to_first_mask_ms": 1000 * statistics.median(c + f for c, f in zip(compile_s, first_mask_s)),
    }, compiled


def replay_times(lib: Lib, compiled, seqs) -> dict:
    """Per-token mask and advance time over the decoded sequences (fresh matcher per replay)."""
    mask_us, adv_us, first_us = [], [], []
    for _ in range(REPLAYS):
        for seq in seqs:
            m = lib.matcher(compiled)
            for i, tok in enumerate(list(seq) + [None]):
                t = time.perf_counter_ns()
                m.fill()
                dt = (time.perf_counter_ns() - t) / 1000
                (first_us if i == 0 else mask_us).append(dt)
                if tok is None:
                    break
                t = time.perf_counter_ns()
                m.consume(tok)
                adv_us.append((time.perf_counter_ns() - t) / 1000)
    return {
        "mask_us_p50": pct(mask_us, 50),
        "mask_us_p95": pct(mask_us, 95),
        "mask_us_max": max(mask_us),
        "first_mask_us_p50": pct(first_us, 50),
        "advance_us_p50": pct(adv_us, 50),
        "mask_plus_advance_us_p50": pct([a + b for a, b in zip(mask_us, adv_us)], 50),
        "samples": len(mask_us),
    }


def classify(
    ref: np.ndarray, forced: bytes, only_lib: np.ndarray, tb: list[bytes], specials: set[int]
) -> dict[str, list[int]]:
    """Why a library allows tokens llguidance forbids:
    * "special": a special token (<|endoftext|>...) taken as its literal text;
    * "tokenization": the same text, split differently: the token is a prefix of the bytes llguidance
      forces here (a fixed key, a closing quote: llguidance lets forced text through only as the
      tokenizer's canonical tokens) or a strict prefix of a token llguidance allows;
    * "grammar": anything else (the two grammars accept different text)."""
    ref_bytes = {tb[u] for u in np.flatnonzero(ref)}
    prefixes = {b[:k] for b in ref_bytes for k in range(1, len(b))}
    out: dict[str, list[int]] = {"special": [], "tokenization": [], "grammar": []}
    for t in only_lib:
        t = int(t)
        b = tb[t]
        same_text = b in prefixes or (forced and b and forced.startswith(b))
        out["special" if t in specials else "tokenization" if same_text else "grammar"].append(t)
    return out


def check_sequence(
    lib: Lib, compiled, seq, ref_masks, show, tb=None, specials=frozenset()
) -> tuple[dict, tuple[list, list]]:
    """Drive the matcher along ``seq``; compare each step's allowed set with llguidance's."""
    m = lib.matcher(compiled)
    masks, rejected, disagreements, forced = [], [], [], []
    agree = agree_tok = steps = 0
    kinds = {"special": 0, "tokenization": 0, "grammar": 0, "stricter": 0}
    ok = True
    for i, tok in enumerate(list(seq) + [None]):
        allowed = allowed_from_bitmask(m.fill(), lib.V)
        masks.append(allowed)
        forced.append(m.forced() if hasattr(m, "forced") else b"")
        if ref_masks is not None:
            ref, ref_forced = ref_masks[0][i], ref_masks[1][i]
            steps += 1
            if np.array_equal(ref, allowed):
                agree += 1
            else:
                only_ref, only_lib = np.flatnonzero(ref & ~allowed), np.flatnonzero(allowed & ~ref)
                why = classify(ref, ref_forced, only_lib, tb, specials)
                if only_ref.size == 0 and not why["special"] and not why["grammar"]:
                    agree_tok += 1
                for k, v in why.items():
                    kinds[k] += bool(v)
                kinds["stricter"] += bool(only_ref.size)
                disagreements.append(
                    {
                        "step": i,
                        "after": show(seq[:i])[-40:],
                        "llguidance_forces": ref_forced.decode("utf-8", "backslashreplace"),
                        "n_only_llguidance": int(only_ref.size),
                        "n_only_this": int(only_lib.size),
                        "only_llguidance": [[int(t), show([t])] for t in only_ref[:MAX_SHOWN]],
                        "only_this": {k: [[t, show([t])] for t in v[:MAX_SHOWN]] for k, v in why.items() if v},
                        "n_only_this_by_kind": {k: len(v) for k, v in why.items() if v},
                    }
                )
        if tok is None:
            break
        if not allowed[tok]:
            rejected.append({"step": i, "token": [int(tok), show([tok])], "after": show(seq[:i])[-40:]})
            ok = False
            break
        if not m.consume(tok):
            rejected.append(
                {
                    "step": i,
                    "token": [int(tok), show([tok])],
                    "after": show(seq[:i])[-40:],
                    "note": "allowed by the mask but consume() failed",
                }
            )
            ok = False
            break
    end_ok = bool(ok and masks[-1][lib.eos]) or bool(ok and m.ended())
    if ok and hasattr(m, "eos_accepted"):
        end_ok = end_ok and m.eos_accepted()
    out = {
        "tokens": len(seq),
        "all_tokens_allowed": ok,
        "end_accepted": end_ok,
        "rejected": rejected,
        "mask_sizes": [int(a.sum()) for a in masks],
    }
    if ref_masks is not None:
        agree_tok += agree
        out.update(
            {
                "steps_compared": steps,
                "steps_agreeing": agree,
                "steps_agreeing_up_to_tokenization": agree_tok,
                "steps_with": kinds,
                "disagreements": disagreements,
            }
        )
    return out, (masks, forced)


def check_document(lib: Lib, compiled, ids) -> bool:
    """True when every token of ``ids`` is allowed in turn and the end is accepted."""
    m = lib.matcher(compiled)
    for tok in ids:
        if not allowed_from_bitmask(m.fill(), lib.V)[tok] or not m.consume(tok):
            return False
    end = bool(allowed_from_bitmask(m.fill(), lib.V)[lib.eos]) or m.ended()
    if end and hasattr(m, "eos_accepted"):
        end = m.eos_accepted()
    return end


def feature_support(lib: Lib, encode) -> dict:
    out = {}
    for feat, (schema, good, bad) in FEATURES.items():
        try:
            compiled = lib.compile(schema)
        except Exception as e:  # noqa: BLE001 - an unsupported feature is a result, not a crash
            out[feat] = {"status": "compile error", "error": f"{type(e).__name__}: {str(e)[:300]}"}
            continue
        acc = {d: check_document(lib, compiled, encode(d)) for d in good}
        rej = {d: not check_document(lib, compiled, encode(d)) for d in bad}
        problems = (["accepts an invalid document"] if not all(rej.values()) else []) + (
            ["rejects a valid document"] if not all(acc.values()) else []
        )
        out[feat] = {
            "status": "enforced" if not problems else "compiles, but " + " and ".join(problems),
            "valid_accepted": acc,
            "invalid_rejected": rej,
        }
    return out


# --- decode with each library's masks -------------------------------------------------------


class MaskAdapter:
    """What Engine._run needs (mask / advance / done / grammar) on top of one library's matcher,
    with the same bitmask -> logits code for every library. Times itself in place: ``lib_s`` is the
    library's own calls (fill + consume), ``total_s`` everything including applying the mask."""

    def __init__(self, lib: Lib, compiled):
        self._m = lib.matcher(compiled)
        self.V = lib.V
        self.grammar = lib.name
        self._done = False
        self._eos = lib.eos
        self._next = None
        self.lib_s = self.total_s = 0.0
        self.steps = 0

    def _fill(self):
        t = time.perf_counter()
        bm = self._m.fill()
        self.lib_s += time.perf_counter() - t
        return allowed_from_bitmask(bm, self.V)

    def mask(self, logits):
        t = time.perf_counter()
        allowed = self._next if self._next is not None else self._fill()
        self._next = None
        out = np.asarray(logits, dtype=np.float32).reshape(-1)[: self.V].copy()
        out[~allowed] = -np.inf
        self.total_s += time.perf_counter() - t
        self.steps += 1
        return out

    def advance(self, token):
        t0 = time.perf_counter()
        if token == self._eos:
            self._done = True
            return
        ok = self._m.consume(token)
        self.lib_s += time.perf_counter() - t0
        if not ok:
            raise RuntimeError(f"token {token} rejected")
        # the next step's mask (computed once, here): stop when it allows nothing but EOS, as the SDK does
        self._next = allowed = self._fill()
        self._done = bool(allowed[self._eos]) and int(allowed.sum()) == 1
        self.total_s += time.perf_counter() - t0

    @property
    def done(self):
        return self._done


@contextlib.contextmanager
def engine_constraint(factory):
    import edgellm_sdk.engine as eng

    saved = eng.compile_constraint
    eng.compile_constraint = lambda tokenizer, vocab, **kw: factory(kw["schema"]) if kw.get("schema") else None
    try:
        yield
    finally:
        eng.compile_constraint = saved


def decode_rates(engine, libs, compiled_by_lib, schema, prompt, ref_seq, validate) -> dict:
    """Greedy runs, all variants back to back in a rotating order: unconstrained (as many tokens as
    the reference sequence) and one per library. The slowdown is the median over runs of each run's
    ms/token against the same run's unconstrained ms/token. Also records what each library made the
    model write (its greedy output differs from llguidance's when it allows other tokenizations)."""
    variants = ["unconstrained"] + [lib.name for lib in libs]
    by_name = {lib.name: lib for lib in libs}
    ms_per_tok = {v: [] for v in variants}
    ttft = {v: [] for v in variants}
    in_situ = {v: [] for v in variants[1:]}  # (library ms, all constraint ms) per generated token
    outputs = {}
    n = len(ref_seq)
    eos_saved = engine.tokenizer.eos_ids
    for run in range(DECODE_RUNS):
        k = run % len(variants)
        for name in variants[k:] + variants[:k]:
            engine.reset()
            if name == "unconstrained":
                engine.tokenizer.eos_ids = frozenset()  # always n tokens
                try:
                    c = engine.complete(prompt, max_tokens=n)
                finally:
                    engine.tokenizer.eos_ids = eos_saved
            else:
                lib = by_name[name]
                made = []

                def factory(_schema, lib=lib, made=made):
                    made.append(MaskAdapter(lib, compiled_by_lib[lib.name]))
                    return made[-1]

                with engine_constraint(factory):
                    c = engine.complete(prompt, max_tokens=2 * n + 8, schema=schema)
                outputs[name] = c
                a = made[0]
                in_situ[name].append((1000 * a.lib_s / a.steps, 1000 * a.total_s / a.steps))
            u = c.usage
            ms_per_tok[name].append(1000 * (u.total_s - u.ttft_s) / max(1, u.completion_tokens - 1))
            ttft[name].append(1000 * u.ttft_s)
    out = {"reference_tokens": n, "runs": DECODE_RUNS}
    for v in variants:
        ratios = [a / b for a, b in zip(ms_per_tok[v], ms_per_tok["unconstrained"])]
        out[v] = {
            "ms_per_token_p50": statistics.median(ms_per_tok[v]),
            "ms_per_token_min": min(ms_per_tok[v]),
            "ttft_ms_p50": statistics.median(ttft[v]),
            "slowdown_pct": 100 * (statistics.median(ratios) - 1),
            "slowdown_pct_range": [100 * (min(ratios) - 1), 100 * (max(ratios) - 1)],
        }
        if v in in_situ:
            lib_ms = statistics.median(x[0] for x in in_situ[v])
            all_ms = statistics.median(x[1] for x in in_situ[v])
            out[v].update(
                {
                    "in_situ_library_ms_per_token": lib_ms,
                    "in_situ_constraint_ms_per_token": all_ms,
                    "in_situ_library_pct_of_decode": 100 * lib_ms / out[v]["ms_per_token_p50"],
                    "in_situ_constraint_pct_of_decode": 100 * all_ms / out[v]["ms_per_token_p50"],
                }
            )
        if v in outputs:
            c = outputs[v]
            out[v].update(
                {
                    "tokens": len(c.token_ids),
                    "token_ids": list(c.token_ids),
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                    "same_tokens_as_reference": list(c.token_ids) == list(ref_seq),
                    "valid_for_schema": validate(c.text),
                }
            )
    return out


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    from edgellm_sdk import Engine

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "libraries": {},
        "schemas": {},
        "features": {},
        "skipped": {},
        "loadavg_start": os.getloadavg(),
    }
    if os.getloadavg()[0] > 0.5:
        print(f"note: load average {os.getloadavg()[0]:.2f}: another process is busy, decode timings will be noisy")
    with Engine.load("smollm2-135m", threads=2, prefix_cache=False) as engine:
        hf = engine.tokenizer.hf
        V = engine.backend.vocab_size if getattr(engine.backend, "vocab_size", -1) > 0 else engine.tokenizer.vocab_size
        eos = min(engine.tokenizer.eos_ids)
        report["model"] = {
            "name": engine.manifest.name,
            "tokenizer": str(engine.manifest.root / "tokenizer.json"),
            "vocab_size": V,
            "eos": eos,
        }
        tb, specials = token_bytes(hf, V)

        def show(ids):
            return b"".join(tb[int(i)] for i in ids).decode("utf-8", "backslashreplace")

        def encode(text):
            return hf.encode(text, add_special_tokens=False).ids

        libs = []
        for cls in LIBS:
            lib = cls(hf, V, eos)
            try:
                lib.setup()
            except ImportError as e:
                msg = f"{lib.name} is not installed ({e}); skipping it (see the pip command at the top of this script)"
                print(f"SKIP: {msg}", flush=True)
                report["skipped"][lib.name] = msg
                if isinstance(lib, LLGuidance):
                    raise SystemExit("llguidance is the reference (the SDK's `structured` extra): install it") from e
                continue
            libs.append(lib)
            report["libraries"][lib.name] = {
                "version": lib.version,
                "tokenizer_setup_ms": 1000 * lib.setup_s,
                "config": lib.config,
            }
            print(f"{lib.name} {lib.version}: tokenizer set-up {1000 * lib.setup_s:.0f} ms", flush=True)

        for sname, spec in schemas().items():
            schema = spec["schema"]
            seqs = []
            for prompt in spec["prompts"]:
                engine.reset()
                c = engine.complete(prompt, schema=schema, max_tokens=256)
                seqs.append(
                    {
                        "prompt": prompt[-1]["content"],
                        "text": c.text,
                        "finish_reason": c.finish_reason,
                        "token_ids": list(c.token_ids),
                    }
                )
            print(
                f"\n[{sname}] {len(seqs)} sequence(s), {sum(len(s['token_ids']) for s in seqs)} tokens: "
                + " | ".join(s["text"] for s in seqs),
                flush=True,
            )
            srep = {"sequences": seqs, "libraries": {}}
            ref_masks = {}
            compiled_by_lib = {}
            for lib in libs:
                r = {}
                try:
                    r.update(compile_times(lib, schema)[0])
                    compiled = lib.compile(schema)
                    compiled_by_lib[lib.name] = compiled
                except Exception as e:  # noqa: BLE001 - a schema a library rejects is a result, not a crash
                    r["error"] = f"{type(e).__name__}: {str(e)[:500]}"
                    srep["libraries"][lib.name] = r
                    print(f"  {lib.name}: cannot compile: {r['error']}", flush=True)
                    continue
                r.update(replay_times(lib, compiled, [s["token_ids"] for s in seqs]))
                checks = []
                for k, s in enumerate(seqs):
                    ref = ref_masks.get(k) if lib.name != "llguidance" else None
                    chk, masks = check_sequence(lib, compiled, s["token_ids"], ref, show, tb, specials)
                    if lib.name == "llguidance":
                        ref_masks[k] = masks
                    checks.append(chk)
                r["all_tokens_allowed"] = all(c["all_tokens_allowed"] for c in checks)
                r["end_accepted"] = all(c["end_accepted"] for c in checks)
                if lib.name != "llguidance":
                    comp = sum(c.get("steps_compared", 0) for c in checks)
                    agr = sum(c.get("steps_agreeing", 0) for c in checks)
                    agr_tok = sum(c.get("steps_agreeing_up_to_tokenization", 0) for c in checks)
                    r["agreement_with_llguidance"] = agr / comp if comp else None
                    r["agreement_up_to_tokenization"] = agr_tok / comp if comp else None
                    r["steps_compared"] = comp
                    r["steps_with"] = {k: sum(c["steps_with"][k] for c in checks) for k in checks[0]["steps_with"]}
                r["checks"] = checks
                srep["libraries"][lib.name] = r
                print(
                    f"  {lib.name:14s} compile {r['compile_ms_median']:8.2f} ms (first mask "
                    f"{r['first_mask_ms_median']:.2f} ms) | mask p50 {r['mask_us_p50']:7.1f} µs p95 "
                    f"{r['mask_us_p95']:7.1f} µs | advance p50 {r['advance_us_p50']:5.1f} µs | tokens ok "
                    f"{r['all_tokens_allowed']} end ok {r['end_accepted']}"
                    + (
                        f" | agreement {100 * r['agreement_with_llguidance']:.1f}% exact, "
                        f"{100 * r['agreement_up_to_tokenization']:.1f}% up to tokenization; steps with "
                        f"{r['steps_with']}"
                        if r.get("agreement_with_llguidance") is not None
                        else ""
                    ),
                    flush=True,
                )
                shown = 0
                for c in checks:  # the disagreements that are not just tokenization, a few of them
                    for d in c.get("disagreements", []):
                        if (d["n_only_llguidance"] or set(d["only_this"]) - {"tokenization"}) and shown < 4:
                            shown += 1
                            print(
                                f"      step {d['step']} after {d['after']!r}: only llguidance "
                                f"{d['n_only_llguidance']} {d['only_llguidance'][:4]}, only {lib.name} "
                                f"{d['n_only_this_by_kind']} "
                                f"{ {k: v[:4] for k, v in d['only_this'].items()} }",
                                flush=True,
                            )
                    for rj in c["rejected"]:
                        print(f"      REJECTED {rj}", flush=True)
            # decode with each library, on the longest sequence's prompt
            ok_libs = [lib for lib in libs if lib.name in compiled_by_lib]
            k = max(range(len(seqs)), key=lambda j: len(seqs[j]["token_ids"]))
            ref_lib = libs[0]  # llguidance: does the text satisfy the schema (tokenized canonically)?
            ref_compiled = ref_lib.compile(schema)

            def validate(text, ref_lib=ref_lib, ref_compiled=ref_compiled):
                return check_document(ref_lib, ref_compiled, encode(text))

            srep["decode"] = decode_rates(
                engine, ok_libs, compiled_by_lib, schema, spec["prompts"][k], seqs[k]["token_ids"], validate
            )
            base = srep["decode"]["unconstrained"]["ms_per_token_p50"]
            for lib in ok_libs:
                r = srep["libraries"][lib.name]
                r["mask_plus_advance_pct_of_decode"] = 100 * (r["mask_us_p50"] + r["advance_us_p50"]) / 1000 / base
                r["mask_p95_pct_of_decode"] = 100 * r["mask_us_p95"] / 1000 / base
            print(
                "  decode ms/token: "
                + ", ".join(
                    f"{v} {d['ms_per_token_p50']:.2f} ({d['slowdown_pct']:+.1f}%"
                    + (
                        f"; in situ: library {1000 * d['in_situ_library_ms_per_token']:.0f} µs = "
                        f"{d['in_situ_library_pct_of_decode']:.2f}%, with masking the logits "
                        f"{1000 * d['in_situ_constraint_ms_per_token']:.0f} µs)"
                        if "in_situ_library_ms_per_token" in d
                        else ")"
                    )
                    for v, d in srep["decode"].items()
                    if isinstance(d, dict)
                ),
                flush=True,
            )
            for v, d in srep["decode"].items():
                if isinstance(d, dict) and "text" in d:
                    print(
                        f"    {v:14s} {d['tokens']:3d} tokens, same as reference {d['same_tokens_as_reference']}, "
                        f"valid {d['valid_for_schema']}: {d['text']!r}",
                        flush=True,
                    )
            report["schemas"][sname] = srep

        for lib in libs:
            report["features"][lib.name] = feature_support(lib, encode)
        print("\nfeatures:")
        for feat in FEATURES:
            print(
                f"  {feat:58s} "
                + " | ".join(f"{lib.name}: {report['features'][lib.name][feat]['status']}" for lib in libs)
            )

    report["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    (RESULTS / "compare_constrain_libs.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (RESULTS / "compare_constrain_libs.md").write_text(markdown(report))
    print(f"\nwrote {RESULTS / 'compare_constrain_libs.json'} and .md")


def markdown(rep: dict) -> str:
    libs = list(rep["libraries"])
    L = [
        f"# Constrained-decoding libraries on {rep['model']['name']} (vocab {rep['model']['vocab_size']})",
        "",
        (
            f"{rep['date']}, 2 cores, Engine threads=2, load average at start {rep['loadavg_start'][0]:.2f}. "
            "Generated by `benchmarks/compare_constrain_libs.py` (raw numbers and every disagreeing step: "
            "`compare_constrain_libs.json`). Token sequences: greedy constrained decoding with the Engine "
            "(llguidance); each library's matcher replays them."
        ),
        "",
        "| library | version | tokenizer set-up ms | configuration |",
        "|---|---|---|---|",
    ]
    for n, d in rep["libraries"].items():
        L.append(f"| {n} | {d['version']} | {d['tokenizer_setup_ms']:.0f} | {d['config']} |")
    for n in rep["skipped"]:
        L.append(f"| {n} | not installed: skipped | | |")
    L += [
        "",
        (
            f"Compile: cold, median of {COMPILE_TRIALS}. Mask: one fill of the token bitmask, µs over every "
            f"step of {REPLAYS} replays. Agreement: steps whose allowed-token set equals llguidance's, exactly / "
            "up to tokenization (the other library also allows a shorter token for text llguidance forces as a "
            "longer one). In decode: the library's own calls timed inside Engine decoding (mean per token). "
            f"Decode: Engine greedy decode with that library's masks, median ms per token of {DECODE_RUNS} runs, "
            "all variants back to back in rotating order (unconstrained: as many tokens); the % is the median of "
            "each run's ratio to that run's unconstrained rate (run-to-run noise is a few %)."
        ),
        "",
        (
            "| schema | library | compile ms | first mask ms | mask p50 µs | mask p95 µs | advance p50 µs "
            "| (mask+advance) p50 / decode | tokens allowed | end accepted | agreement exact / up to tok. "
            "| steps with special-token / grammar differences | in decode: library µs/token (% of decode) "
            "| decode ms/token (vs unconstrained) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s, sd in rep["schemas"].items():
        dec = sd["decode"]
        for n in libs:
            r = sd["libraries"].get(n)
            if r is None:
                continue
            if "error" in r:
                L.append(f"| {s} | {n} | error: {r['error'][:100]} |" + " |" * 12)
                continue
            if r.get("agreement_with_llguidance") is None:
                agr, kinds = "reference", ""
            else:
                agr = (
                    f"{100 * r['agreement_with_llguidance']:.0f}% / {100 * r['agreement_up_to_tokenization']:.0f}% "
                    f"of {r['steps_compared']}"
                )
                w = r["steps_with"]
                kinds = f"{w['special']} / {w['grammar'] + w['stricter']}"
            d = dec.get(n)
            dtxt = f"{d['ms_per_token_p50']:.2f} ({d['slowdown_pct']:+.1f}%)" if d else ""
            situ = (
                f"{1000 * d['in_situ_library_ms_per_token']:.0f} ({d['in_situ_library_pct_of_decode']:.2f}%)"
                if d
                else ""
            )
            L.append(
                f"| {s} | {n} | {r['compile_ms_median']:.1f} | {r['first_mask_ms_median']:.2f} | "
                f"{r['mask_us_p50']:.1f} | {r['mask_us_p95']:.0f} | {r['advance_us_p50']:.1f} | "
                f"{r.get('mask_plus_advance_pct_of_decode', float('nan')):.2f}% | "
                f"{'yes' if r['all_tokens_allowed'] else 'NO'} | {'yes' if r['end_accepted'] else 'NO'} | "
                f"{agr} | {kinds} | {situ} | {dtxt} |"
            )
        L.append(f"| {s} | (unconstrained) |" + " |" * 11 + f" {dec['unconstrained']['ms_per_token_p50']:.2f} |")
    L += [
        "",
        (
            "What greedy decoding wrote with each library's masks (validity: llguidance accepts the text "
            "re-tokenized canonically):"
        ),
        "",
        "| schema | library | tokens | same tokens as llguidance | valid | text |",
        "|---|---|---|---|---|---|",
    ]
    for s, sd in rep["schemas"].items():
        for n in libs:
            d = sd["decode"].get(n)
            if d and "text" in d:
                L.append(
                    f"| {s} | {n} | {d['tokens']} | {'yes' if d['same_tokens_as_reference'] else 'no'} | "
                    f"{'yes' if d['valid_for_schema'] else 'NO'} | `{d['text']}` |"
                )
    L += [
        "",
        (
            "JSON Schema features (compile, then valid documents must be accepted and invalid ones rejected, "
            "token by token):"
        ),
        "",
        "| feature | " + " | ".join(libs) + " |",
        "|---|" + "---|" * len(libs),
    ]
    for feat in FEATURES:
        cells = []
        for n in libs:
            f = rep["features"][n][feat]
            cells.append(f["status"] + (f" ({f['error'][:80]})" if "error" in f else ""))
        L.append(f"| {feat} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
