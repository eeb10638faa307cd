"""Build a llama or gemma3 decoder as one ONNX graph in the Optimum / transformers.js layout.

Inputs:  input_ids [B,S], attention_mask [B,T], position_ids [B,S],
         past_key_values.{i}.key/value [B,kv_heads,P,head_dim],
         num_logits_to_keep (int64 scalar: logits for the last N positions, 0 = all)
Outputs: logits [B,S',vocab], present.{i}.key/value
The layer is the fused ORT form (SkipSimplifiedLayerNormalization, packed QKV into
GroupQueryAttention with rotary inside). When the caller binds one buffer as both past
and present (size = max context), GQA updates the KV cache in place.
gemma3 adds, in the same graph: per-head RMSNorm of q and k before RoPE, an RMSNorm on each
sublayer's output, GeGLU (tanh GELU), the embedding scaled by sqrt(hidden), and sliding-window
layers (GQA's local_window_size) with their own RoPE base between the global ones.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .gguf_llama import LlamaConfig, LlamaWeights, Matrix
from .onnx_graph import OnnxGraph
from .packing import BLOCK, NBitsWeight, pack_gguf_exact, quantize_rtn8
from .quantspec import PRESETS, QuantSpec, quantize_weight

OPSET = 21
MS = "com.microsoft"
VARIANTS = tuple(PRESETS)


Adapters = dict[str, tuple[np.ndarray, np.ndarray]]  # linear name -> (A [rank, in], scale * B [out, rank])


class _Builder:
    def __init__(self, weights: LlamaWeights, spec: QuantSpec, accuracy_level: int, adapters: Adapters | None):
        self.w, self.cfg, self.spec, self.acc = weights, weights.config, spec, accuracy_level
        self.adapters = adapters or {}
        self.g = OnnxGraph()
        self.c: dict[str, str] = {}  # shared constants
        self.embed_packed: NBitsWeight | None = None  # the 8-bit head, when the embedding is quantized

    def pack(self, m: Matrix, name: str) -> NBitsWeight | np.ndarray:
        spec = self.spec
        if spec.gguf_preset:
            return pack_gguf_exact(m, spec.gguf_preset)
        if spec.keeps_fp32(name):
            return m.dense()
        assert spec.bits is not None  # keeps_fp32 is true without bits
        return quantize_weight(
            m.dense(),
            spec.bits,
            spec.block,
            symmetric=spec.symmetric,
            offsets=spec.offsets,
            method=spec.method,
            importance=spec.importance.get(name),
        )

    def const(self, name: str, array) -> str:
        if name not in self.c:
            self.c[name] = self.g.init(name, np.asarray(array))
        return self.c[name]

    def linear(self, x: str, m: Matrix, name: str) -> str:
        g, packed = self.g, self.pack(m, name)
        if isinstance(packed, np.ndarray):
            y = g.op("MatMul", x, g.init(name + ".weight", packed.T), name=name)
        else:
            y = self.nbits(x, packed, name)
        if name in self.adapters:  # unmerged LoRA in fp32 beside the quantized base: y += (x A^T) (sB)^T
            a, b = self.adapters[name]
            down = g.op(
                "MatMul", x, g.init(name + ".lora_a", np.ascontiguousarray(a.T, np.float32)), name=name + ".lora_a"
            )
            up = g.op(
                "MatMul", down, g.init(name + ".lora_b", np.ascontiguousarray(b.T, np.float32)), name=name + ".lora_b"
            )
            y = g.op("Add", y, up)
        return y

    def nbits(self, x: str, p: NBitsWeight, name: str) -> str:
        g = self.g
        if p.mins is not None:
            return self.nbits_with_offsets(x, p, name)
        inputs = [x, g.init(name + ".qweight", p.b), g.init(name + ".scales", p.scales.reshape(-1))]
        if p.zero_points is not None:
            inputs.append(g.init(name + ".zp", p.zero_points.reshape(-1)))
        return g.op(
            "MatMulNBits",
            *inputs,
            domain=MS,
            name=name,
            K=p.k,
            N=p.n,
            bits=p.bits,
            block_size=p.block,
            accuracy_level=self.acc,
        )

    def nbits_with_offsets(self, x: str, p: NBitsWeight, name: str) -> str:
        """Exact per-block offsets: y = x @ W.T + blocksum(x) @ C.T.

        The block sums come out of the same MatMulNBits as extra output rows (a 0/1 block
        indicator, exact in 4 bits), so they see the same int8-rounded x and cost no extra pass.
        """
        g, nb = self.g, p.k // p.block
        b = np.concatenate([p.b, _indicator_nbits(p.k, p.block)])
        scales = np.concatenate([p.scales, np.ones((nb, nb), np.float32)])
        y = g.op(
            "MatMulNBits",
            x,
            g.init(name + ".qweight", b),
            g.init(name + ".scales", scales.reshape(-1)),
            domain=MS,
            name=name,
            K=p.k,
            N=p.n + nb,
            bits=4,
            block_size=p.block,
            accuracy_level=self.acc,
        )
        main, sums = g.node("Split", [y, self.const(f"split_{p.n}_{nb}", np.array([p.n, nb], np.int64))], 2, axis=-1)
        assert p.mins is not None, "offsets need the blocks' minimums"
        correction = g.op("MatMul", sums, g.init(name + ".offsets", p.mins.T.copy()), name=name + ".offsets")
        return g.op("Add", main, correction)

    def embed(self, ids: str) -> str:
        g, e, spec = self.g, self.w.embed, self.spec
        packed: NBitsWeight | np.ndarray
        if spec.head_bits is None:
            packed = e.dense()
        elif spec.gguf_preset:
            packed = pack_gguf_exact(e, "q8")
        else:
            packed = quantize_rtn8(e.dense())
        if isinstance(packed, np.ndarray):
            self.embed_dense = g.init("embed.weight", packed)
            return g.op("Gather", self.embed_dense, ids)
        # Gather int8 rows of the same initializer MatMulNBits uses for the tied lm_head.
        self.embed_packed = packed
        qweight = g.init("lm_head.qweight", packed.b)
        scales = g.init("lm_head.scales", packed.scales)
        rows = g.op("Cast", g.op("Gather", qweight, ids), to=TensorProto.FLOAT)
        scale = g.op("Unsqueeze", g.op("Gather", scales, ids), self.const("axis_last", np.array([-1], np.int64)))
        centered = g.op("Sub", rows, self.const("q8_zero", np.array(128.0, np.float32)))
        values = g.op("Mul", centered, scale)
        return g.op("Reshape", values, self.const("shape_hidden", np.array([0, 0, self.cfg.hidden_size], np.int64)))

    def lm_head(self, h: str) -> str:
        g, cfg = self.g, self.cfg
        if not cfg.tie_embeddings:
            return self.linear(h, self.w.lm_head, "lm_head")
        if self.spec.head_bits is None:
            flat = g.op("Reshape", h, self.const("shape_flat", np.array([-1, cfg.hidden_size], np.int64)))
            logits = g.op("Gemm", flat, self.embed_dense, transB=1)
            lead = g.op(
                "Slice",
                g.op("Shape", h),
                self.const("zero1", np.array([0], np.int64)),
                self.const("two1", np.array([2], np.int64)),
            )
            shape = g.op("Concat", lead, self.const("vocab1", np.array([cfg.vocab_size], np.int64)), axis=0)
            return g.op("Reshape", logits, shape)
        p = self.embed_packed
        assert p is not None, "embed() packs the head before head() uses it"
        return g.op(
            "MatMulNBits",
            h,
            "lm_head.qweight",
            "lm_head.scales",
            domain=MS,
            name="lm_head",
            K=p.k,
            N=p.n,
            bits=8,
            block_size=p.block,
            accuracy_level=self.acc,
        )

    def rope_cache(self, prefix: str, theta: float) -> tuple[str, str]:
        hd = self.cfg.head_dim
        inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        angles = np.outer(np.arange(self.cfg.max_position, dtype=np.float64), inv_freq)
        return (
            self.g.init(prefix + "cos_cache", np.cos(angles).astype(np.float32)),
            self.g.init(prefix + "sin_cache", np.sin(angles).astype(np.float32)),
        )

    def qkv_sizes(self) -> np.ndarray:
        cfg = self.cfg
        return np.array([cfg.num_heads * cfg.head_dim] + [cfg.num_kv_heads * cfg.head_dim] * 2, np.int64)

    def rms(self, x: str, weight: np.ndarray, name: str) -> str:
        return self.g.node(
            "SimplifiedLayerNormalization",
            [x, self.g.init(name, weight)],
            1,
            name=name,
            epsilon=float(self.cfg.rms_eps),
            axis=-1,
            stash_type=1,
        )[0]

    def head_norm(self, x: str, weight: np.ndarray, name: str) -> str:
        """RMSNorm over each head's vector: [B, S, heads * hd] -> [B, S, heads, hd] and back."""
        g, hd = self.g, self.cfg.head_dim
        heads = g.op("Reshape", x, self.const(f"shape_heads_{hd}", np.array([0, 0, -1, hd], np.int64)))
        return g.op(
            "Reshape", self.rms(heads, weight, name), self.const("shape_merge_heads", np.array([0, 0, -1], np.int64))
        )

    def post_norm(self, x: str, weight: np.ndarray | None, name: str) -> str:
        return x if weight is None else self.rms(x, weight, name)

    def build(self) -> onnx.ModelProto:
        g, cfg = self.g, self.cfg
        hd, n_kv = cfg.head_dim, cfg.num_kv_heads
        f = TensorProto.FLOAT
        inputs = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total_sequence"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]),
        ]
        outputs = [helper.make_tensor_value_info("logits", f, ["batch", "kept_sequence", cfg.vocab_size])]
        for i in range(cfg.num_layers):
            for kv in ("key", "value"):
                inputs.append(
                    helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", f, ["batch", n_kv, "past_sequence", hd])
                )
                outputs.append(
                    helper.make_tensor_value_info(f"present.{i}.{kv}", f, ["batch", n_kv, "present_sequence", hd])
                )
        inputs.append(helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, []))

        # Attention bookkeeping shared by all layers.
        mask_sum = g.op("ReduceSum", "attention_mask", self.const("axis1", np.array([1], np.int64)), keepdims=0)
        seqlens_k = g.op("Cast", g.op("Sub", mask_sum, self.const("one", np.array(1, np.int64))), to=TensorProto.INT32)
        total = g.op("Shape", "attention_mask", start=1, end=2)
        total = g.op("Cast", g.op("Squeeze", total, self.const("axis0", np.array([0], np.int64))), to=TensorProto.INT32)
        rope = {"global": self.rope_cache("", cfg.rope_theta)}
        if cfg.local_rope_theta is not None:
            rope["local"] = self.rope_cache("local_", cfg.local_rope_theta)

        x = self.embed("input_ids")
        if cfg.embed_scale != 1.0:
            x = g.op("Mul", x, self.const("embed_scale", np.array(cfg.embed_scale, np.float32)))
        residual, mlp_out = x, None
        eps = float(cfg.rms_eps)
        for i, layer in enumerate(self.w.layers):
            p = f"layers.{i}"
            attn_norm = g.init(p + ".attn_norm", layer.attn_norm)
            if mlp_out is None:
                h = g.node(
                    "SimplifiedLayerNormalization",
                    [x, attn_norm],
                    1,
                    name=p + ".attn_norm",
                    epsilon=eps,
                    axis=-1,
                    stash_type=1,
                )[0]
            else:
                h, _, _, residual = g.node(
                    "SkipSimplifiedLayerNormalization",
                    [mlp_out, residual, attn_norm],
                    4,
                    MS,
                    p + ".attn_norm",
                    epsilon=eps,
                )
            qkv = self.linear(h, Matrix.concat([layer.q, layer.k, layer.v]), p + ".qkv_proj")
            local = cfg.is_local(i)
            cos, sin = rope["local" if local else "global"]
            if layer.q_norm is not None and layer.k_norm is not None:
                q, k, v = g.node("Split", [qkv, self.const("qkv_split", self.qkv_sizes())], 3, axis=-1)
                qkv_inputs = [
                    self.head_norm(q, layer.q_norm, p + ".q_norm"),
                    self.head_norm(k, layer.k_norm, p + ".k_norm"),
                    v,
                ]
            else:
                qkv_inputs = [qkv, "", ""]
            # ORT's local_window_size counts the query's own position: q - k < window, as llama.cpp and
            # transformers (measured against the numpy reference in tests/test_convert_gemma.py)
            window = {"local_window_size": int(cfg.sliding_window)} if local and cfg.sliding_window else {}
            attn = g.node(
                "GroupQueryAttention",
                [
                    *qkv_inputs,
                    f"past_key_values.{i}.key",
                    f"past_key_values.{i}.value",
                    seqlens_k,
                    total,
                    cos,
                    sin,
                    "position_ids",
                ],
                domain=MS,
                name=p + ".attn",
                outputs=[p + ".attn/out", f"present.{i}.key", f"present.{i}.value"],
                num_heads=cfg.num_heads,
                kv_num_heads=n_kv,
                do_rotary=1,
                rotary_interleaved=0,
                scale=float(1.0 / np.sqrt(hd)),
                **window,
            )[0]
            o = self.post_norm(self.linear(attn, layer.o, p + ".o_proj"), layer.post_attn_norm, p + ".post_attn_norm")
            ffn_norm = g.init(p + ".ffn_norm", layer.ffn_norm)
            h, _, _, residual = g.node(
                "SkipSimplifiedLayerNormalization", [o, residual, ffn_norm], 4, MS, p + ".ffn_norm", epsilon=eps
            )
            gate_up = self.linear(h, Matrix.concat([layer.gate, layer.up]), p + ".gate_up_proj")
            ffn = layer.gate.rows  # per layer: pruning can narrow some layers more than others
            split = self.const(f"ffn_split_{ffn}", np.array([ffn] * 2, np.int64))
            gate, up = g.node("Split", [gate_up, split], 2, axis=-1)
            if cfg.activation == "gelu_tanh":
                act = g.op("Mul", g.op("FastGelu", gate, domain=MS), up)  # GeGLU: GELU(tanh approx.)(gate) * up
            else:
                act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)  # SiLU(gate) * up
            down = self.linear(act, layer.down, p + ".down_proj")
            mlp_out = self.post_norm(down, layer.post_ffn_norm, p + ".post_ffn_norm")
        final_norm = g.init("final_norm", self.w.final_norm)
        assert mlp_out is not None, "a model has at least one layer"
        h = g.node(
            "SkipSimplifiedLayerNormalization", [mlp_out, residual, final_norm], 1, MS, "final_norm", epsilon=eps
        )[0]
        keep = g.op("Reshape", "num_logits_to_keep", self.const("shape_1", np.array([1], np.int64)))
        start = g.op("Neg", keep)  # 0 keeps every position
        h = g.op(
            "Slice",
            h,
            start,
            self.const("int_max", np.array([2**62], np.int64)),
            self.const("axis1", np.array([1], np.int64)),
        )
        g.node("Identity", [self.lm_head(h)], outputs=["logits"])

        graph = helper.make_graph(g.nodes, cfg.arch, inputs, outputs, g.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
            producer_name="edgellm_sdk",
        )
        model.ir_version = 10
        helper.set_model_props(model, {"edgellm.variant": self.spec.gguf_preset or "custom", "edgellm.kv_inplace": "1"})
        return model


def _indicator_nbits(k: int, block: int = BLOCK) -> np.ndarray:
    """MatMulNBits weight [nb, nb, block/2] whose row b is 1 on block b, 0 elsewhere (zp 8, scale 1)."""
    nb = k // block
    q = np.full((nb, nb, block), 8, np.uint8)
    q[np.arange(nb), np.arange(nb)] = 9
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def build_llama_onnx(
    weights: LlamaWeights, variant: str | QuantSpec = "fp32", accuracy_level: int = 4, adapters: Adapters | None = None
) -> onnx.ModelProto:
    """The ONNX graph of ``weights`` for a preset (fp32 | q8 int8 RTN | q4 GGUF Q4_1 blocks, exact) or a
    QuantSpec; ``adapters`` add unmerged LoRA branches (fp32) to the named linears (``layers.3.qkv_proj``)."""
    if isinstance(variant, str):
        if variant not in PRESETS:
            raise ValueError(f"variant must be one of {VARIANTS} or a QuantSpec, got {variant!r}")
        variant = PRESETS[variant]
    return _Builder(weights, variant, accuracy_level, adapters).build()


def hf_config(cfg: LlamaConfig, bos: int, eos: int | list[int], pad: int) -> dict:
    gemma = cfg.arch == "gemma3"
    config: dict[str, object] = {
        "architectures": ["Gemma3ForCausalLM" if gemma else "LlamaForCausalLM"],
        "model_type": "gemma3_text" if gemma else "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "gelu_pytorch_tanh" if gemma else "silu",
        "max_position_embeddings": cfg.max_position,
        "rms_norm_eps": cfg.rms_eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "torch_dtype": "float32",
    }
    if gemma:
        config |= {
            "sliding_window": cfg.sliding_window,
            "rope_local_base_freq": cfg.local_rope_theta,
            "query_pre_attn_scalar": cfg.head_dim,
            "layer_types": [
                "sliding_attention" if cfg.is_local(i) else "full_attention" for i in range(cfg.num_layers)
            ],
        }
    return config
