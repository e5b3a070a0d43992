"""Tiny Hugging Face models for the GGUF writer's referee tests, made the same way every time.

Weights come from a seeded numpy generator and are written by the safetensors library (bf16 via
ml_dtypes), config.json by hand as transformers saves it, the tokenizer copied from the fixture
folders made by tests/fixtures/make_gguf_tokenizers.py. llama.cpp's converter and llama-quantize
ran once on each (tests/fixtures/make_gguf_refs.py) and their outputs' sha256 are committed in
tests/data/gguf_convert_refs.json; the tests convert the same folder with tensorfile and compare.

Row lengths are 256 so every K-quant applies; one case keeps 64-wide rows to exercise
llama-quantize's fallbacks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

TOKENIZERS = Path(__file__).parent / "fixtures" / "gguf_tokenizers"


def llama_config(hidden: int, ff: int, heads: int, kv: int, layers: int, **extra: Any) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": ff,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "num_hidden_layers": layers,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
        **extra,
    }


def _qwen(arch: str, model_type: str, **extra: Any) -> dict[str, Any]:
    return {
        **llama_config(256, 512, 4, 2, 2, rope_theta=1000000.0, rms_norm_eps=1e-06, tie_word_embeddings=True),
        "architectures": [arch],
        "model_type": model_type,
        "use_sliding_window": False,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        **extra,
    }


def _gemma(arch: str, model_type: str, **extra: Any) -> dict[str, Any]:
    return {
        **llama_config(256, 512, 4, 2, 2, rms_norm_eps=1e-06, tie_word_embeddings=True),
        "architectures": [arch],
        "model_type": model_type,
        "head_dim": 64,
        "query_pre_attn_scalar": 64,
        "sliding_window": 128,
        "hidden_activation": "gelu_pytorch_tanh",
        "pad_token_id": 0,
        **extra,
    }


def _phi3(**extra: Any) -> dict[str, Any]:
    return {
        **llama_config(256, 512, 4, 4, 2),
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "max_position_embeddings": 4096,
        "original_max_position_embeddings": 4096,
        "pad_token_id": 0,
        **extra,
    }


# case → (config without vocab_size, tokenizer fixture folder)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "llama-gqa": (llama_config(256, 512, 4, 2, 2), "llama-spm"),
    "llama-narrow": (llama_config(64, 192, 4, 4, 2), "llama-spm"),
    "llama3-rope": (
        llama_config(
            256,
            256,
            4,
            1,
            1,
            rope_theta=500000.0,
            rope_scaling={
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
        ),
        "llama-spm",
    ),
    "mixtral": (
        {
            **llama_config(256, 256, 4, 2, 2),
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
        "llama-spm",
    ),
    "qwen2": (
        {
            **llama_config(
                256, 512, 4, 2, 2, rope_theta=1000000.0, rms_norm_eps=1e-06, tie_word_embeddings=True
            ),
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "use_sliding_window": False,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
        },
        "qwen2-bpe",
    ),
    # Qwen3: q/k norms, no biases; head_dim given (not hidden/heads), tied like the small ones
    "qwen3": (_qwen("Qwen3ForCausalLM", "qwen3", head_dim=64, max_position_embeddings=40960), "qwen2-bpe"),
    # Qwen3-Embedding: a sentence-transformers Pooling module (last token) → the pooling key;
    # with a tokenizer.model, Qwen2Model.set_vocab takes the SentencePiece path
    "qwen3-embed": (
        {**_qwen("Qwen3ForCausalLM", "qwen3", head_dim=64), "bos_token_id": 1, "eos_token_id": 2},
        "llama-spm",
    ),
    # Qwen1.5-MoE layout: 4 experts (top 2) plus a shared expert and its sigmoid gate, q/k/v biases;
    # untied like Qwen1.5-MoE-A2.7B (llama.cpp's qwen2moe loader has no tied-output fallback)
    "qwen2-moe": (
        _qwen(
            "Qwen2MoeForCausalLM",
            "qwen2_moe",
            tie_word_embeddings=False,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=256,
            shared_expert_intermediate_size=512,
        ),
        "qwen2-bpe",
    ),
    "qwen3-moe": (
        _qwen(
            "Qwen3MoeForCausalLM",
            "qwen3_moe",
            head_dim=64,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=256,
            norm_topk_prob=True,
        ),
        "qwen2-bpe",
    ),
    # Gemma 2: four norms per layer stored as w - 1, soft-capping, a sliding window, tied output
    "gemma2": (
        _gemma(
            "Gemma2ForCausalLM",
            "gemma2",
            max_position_embeddings=8192,
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
        ),
        "llama-spm",
    ),
    # Gemma 3 (text, 1B-like), with the linear rope scaling of the larger ones
    "gemma3": (
        _gemma(
            "Gemma3ForCausalLM",
            "gemma3_text",
            rope_theta=1000000.0,
            rope_local_base_freq=10000.0,
            rope_scaling={"factor": 8.0, "rope_type": "linear"},
        ),
        "llama-spm",
    ),
    # Gemma 3 with its vision tower: the text GGUF skips the tower and the projector
    "gemma3-vision": (
        {
            "architectures": ["Gemma3ForConditionalGeneration"],
            "model_type": "gemma3",
            "text_config": {  # as transformers saves a sub-config: no architectures of its own
                k: v
                for k, v in _gemma("Gemma3ForCausalLM", "gemma3_text", num_hidden_layers=1).items()
                if k not in ("architectures", "torch_dtype")
            },
            "vision_config": {
                "model_type": "siglip_vision_model",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 16,
                "vision_use_head": False,
            },
            "mm_tokens_per_image": 4,
            "boi_token_index": 512,
            "eoi_token_index": 513,
            "image_token_index": 514,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
        },
        "llama-spm",
    ),
    # Phi-3 mini 4k: fused qkv_proj and gate_up_proj, no GQA
    "phi3": (_phi3(num_hidden_layers=2, sliding_window=2047), "llama-spm"),
    # Phi-3 mini 128k: longrope short/long factors → rope_factors_* tensors and an attention factor
    "phi3-longrope": (
        _phi3(
            num_hidden_layers=1,
            max_position_embeddings=131072,
            sliding_window=262144,
            rope_scaling={
                "type": "longrope",
                "short_factor": [round(1.0 + 0.01 * i, 2) for i in range(32)],
                "long_factor": [round(1.0 + 0.75 * i, 2) for i in range(32)],
            },
        ),
        "llama-spm",
    ),
}

# Files a case has besides config, weights and tokenizer: {case: {path: JSON content}}
EXTRA_FILES: dict[str, dict[str, Any]] = {
    "qwen3-embed": {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": 256,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": True,
            "include_prompt": True,
        },
    },
}

# Cases whose live llama.cpp check (test_live_llama_cpp_agrees) covers only these kinds in a plain
# run, to keep its time modest: the recorded references cover the rest, -m llamacpp reruns all.
LIVE_KINDS: dict[str, tuple[str, ...]] = dict.fromkeys(
    (
        "qwen3",
        "qwen3-embed",
        "qwen2-moe",
        "qwen3-moe",
        "gemma2",
        "gemma3",
        "gemma3-vision",
        "phi3",
        "phi3-longrope",
    ),
    ("convert:auto", "quantize:Q4_K_M"),
)

# Cases whose embedding is Qwen's 151,647 rows: the default run checks these kinds only (the live
# `llamacpp` test checks every kind); each costs seconds per type there.
QUICK_KINDS: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("qwen3", "qwen2-moe", "qwen3-moe"),
    (
        "convert:auto",
        "convert:f32",
        "quantize:Q8_0",
        "quantize:Q4_K_M",
        "quantize:Q2_K",
        "requantize:Q8_0:Q6_K",
    ),
)


def tokenizer_size(folder: Path) -> int:
    """Vocab size the model's embedding needs: the tokenizer's largest id + 1."""
    path = folder / "tokenizer.json"
    if path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        ids = [*doc["model"]["vocab"].values(), *(t["id"] for t in doc.get("added_tokens", []))]
        return max(ids) + 1
    import sentencepiece

    return int(sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model")).vocab_size())


class _Draw:
    """Seeded values: matrices of N(0, 0.05²), norm weights near 1 (near 0 where stored as w - 1)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def mat(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)

    def norm(self, n: int) -> np.ndarray:
        return np.float32(1.0) + self.rng.standard_normal(n, dtype=np.float32) * np.float32(0.1)

    def bias(self, n: int) -> np.ndarray:
        return self.norm(n) - np.float32(1.0)


_GEMMA = ("gemma2", "gemma3_text")
_QK_NORM = ("qwen3", "qwen3_moe", "gemma3_text")
_QKV_BIAS = ("qwen2", "qwen2_moe")


def _weights(config: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The model's parameters as transformers names and saves them (make_gguf_refs.py checks the
    names and shapes against the model transformers builds from config.json)."""
    text = config.get("text_config", config)
    prefix = "language_model.model." if "text_config" in config else "model."
    draw = _Draw(rng)
    out: dict[str, np.ndarray] = {
        prefix + "embed_tokens.weight": draw.mat(text["vocab_size"], text["hidden_size"])
    }
    for i in range(text["num_hidden_layers"]):
        out.update(_layer(text, draw, f"{prefix}layers.{i}."))
    norm = draw.bias if text["model_type"] in _GEMMA else draw.norm
    out[prefix + "norm.weight"] = norm(text["hidden_size"])
    if not text.get("tie_word_embeddings", config.get("tie_word_embeddings")):
        out["lm_head.weight"] = draw.mat(text["vocab_size"], text["hidden_size"])
    if "vision_config" in config:
        out.update(_vision(config, draw))
    return out


def _layer(cfg: dict[str, Any], draw: _Draw, p: str) -> dict[str, np.ndarray]:
    h, kind = cfg["hidden_size"], cfg["model_type"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    q, k = heads * cfg.get("head_dim", h // heads), kv * cfg.get("head_dim", h // heads)
    norm = draw.bias if kind in _GEMMA else draw.norm
    out = {p + "input_layernorm.weight": norm(h), p + "post_attention_layernorm.weight": norm(h)}
    if kind in _GEMMA:
        out[p + "pre_feedforward_layernorm.weight"] = norm(h)
        out[p + "post_feedforward_layernorm.weight"] = norm(h)
    if kind == "phi3":
        out[p + "self_attn.qkv_proj.weight"] = draw.mat(q + 2 * k, h)
    else:
        out[p + "self_attn.q_proj.weight"] = draw.mat(q, h)
        out[p + "self_attn.k_proj.weight"] = draw.mat(k, h)
        out[p + "self_attn.v_proj.weight"] = draw.mat(k, h)
    out[p + "self_attn.o_proj.weight"] = draw.mat(h, q)
    if kind in _QKV_BIAS:
        out[p + "self_attn.q_proj.bias"] = draw.bias(q)
        out[p + "self_attn.k_proj.bias"] = draw.bias(k)
        out[p + "self_attn.v_proj.bias"] = draw.bias(k)
    if kind in _QK_NORM:
        out[p + "self_attn.q_norm.weight"] = norm(q // heads)
        out[p + "self_attn.k_norm.weight"] = norm(k // kv)
    out.update(_mlp(cfg, draw, p))
    return out


def _mlp(cfg: dict[str, Any], draw: _Draw, p: str) -> dict[str, np.ndarray]:
    h, ff, kind = cfg["hidden_size"], cfg["intermediate_size"], cfg["model_type"]
    out: dict[str, np.ndarray] = {}
    if experts := cfg.get("num_local_experts"):  # Mixtral
        out[p + "block_sparse_moe.gate.weight"] = draw.mat(experts, h)
        for x in range(experts):
            e = f"{p}block_sparse_moe.experts.{x}."
            out[e + "w1.weight"] = draw.mat(ff, h)
            out[e + "w2.weight"] = draw.mat(h, ff)
            out[e + "w3.weight"] = draw.mat(ff, h)
    elif experts := cfg.get("num_experts"):  # Qwen MoE
        moe_ff = cfg["moe_intermediate_size"]
        out[p + "mlp.gate.weight"] = draw.mat(experts, h)
        for x in range(experts):
            out.update(_gated(draw, f"{p}mlp.experts.{x}.", h, moe_ff))
        if shared_ff := cfg.get("shared_expert_intermediate_size"):
            out.update(_gated(draw, f"{p}mlp.shared_expert.", h, shared_ff))
            out[p + "mlp.shared_expert_gate.weight"] = draw.mat(1, h)
    elif kind == "phi3":
        out[p + "mlp.gate_up_proj.weight"] = draw.mat(2 * ff, h)
        out[p + "mlp.down_proj.weight"] = draw.mat(h, ff)
    else:
        out.update(_gated(draw, p + "mlp.", h, ff))
    return out


def _gated(draw: _Draw, p: str, h: int, ff: int) -> dict[str, np.ndarray]:
    return {
        p + "gate_proj.weight": draw.mat(ff, h),
        p + "up_proj.weight": draw.mat(ff, h),
        p + "down_proj.weight": draw.mat(h, ff),
    }


def _vision(config: dict[str, Any], draw: _Draw) -> dict[str, np.ndarray]:
    """Gemma 3's SigLIP tower and projector (no head), as the checkpoint stores them."""
    v = config["vision_config"]
    d, ff, patch = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    p = "vision_tower.vision_model."
    out = {
        p + "embeddings.patch_embedding.weight": draw.mat(d, 3, patch, patch),
        p + "embeddings.patch_embedding.bias": draw.bias(d),
        p + "embeddings.position_embedding.weight": draw.mat((v["image_size"] // patch) ** 2, d),
    }
    for i in range(v["num_hidden_layers"]):
        e = f"{p}encoder.layers.{i}."
        for name, rows, cols in (
            ("self_attn.q_proj", d, d),
            ("self_attn.k_proj", d, d),
            ("self_attn.v_proj", d, d),
        ):
            out[f"{e}{name}.weight"], out[f"{e}{name}.bias"] = draw.mat(rows, cols), draw.bias(rows)
        for name, rows, cols in (("self_attn.out_proj", d, d), ("mlp.fc1", ff, d), ("mlp.fc2", d, ff)):
            out[f"{e}{name}.weight"], out[f"{e}{name}.bias"] = draw.mat(rows, cols), draw.bias(rows)
        for name in ("layer_norm1", "layer_norm2"):
            out[f"{e}{name}.weight"], out[f"{e}{name}.bias"] = draw.norm(d), draw.bias(d)
    out[p + "post_layernorm.weight"], out[p + "post_layernorm.bias"] = draw.norm(d), draw.bias(d)
    h = config["text_config"]["hidden_size"]
    out["multi_modal_projector.mm_input_projection_weight"] = draw.mat(d, h)
    out["multi_modal_projector.mm_soft_emb_norm.weight"] = draw.bias(d)
    return out


def case_config(case: str) -> dict[str, Any]:
    """config.json of the case: its CASES entry with the tokenizer's vocab size filled in."""
    config, tokenizer = CASES[case]
    vocab = {"vocab_size": tokenizer_size(TOKENIZERS / tokenizer)}
    if "text_config" in config:
        return {**config, "text_config": {**config["text_config"], **vocab}}
    return {**config, **vocab}


def make_model(case: str, folder: Path) -> Path:
    """Write the case's model folder (config, bf16 safetensors, tokenizer); return it."""
    from safetensors.numpy import save_file

    source = TOKENIZERS / CASES[case][1]
    folder.mkdir(parents=True, exist_ok=True)
    config = case_config(case)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    rng = np.random.default_rng(sum(map(ord, case)))
    weights = {k: v.astype(ml_dtypes.bfloat16) for k, v in _weights(config, rng).items()}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    for name, content in EXTRA_FILES.get(case, {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return folder
