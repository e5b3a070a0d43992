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


def _llama(hidden: int, ff: int, heads: int, kv: int, layers: int, **extra: Any) -> dict[str, Any]:
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


# case → (config without vocab_size, tokenizer fixture folder)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "llama-gqa": (_llama(256, 512, 4, 2, 2), "llama-spm"),
    "llama-narrow": (_llama(64, 192, 4, 4, 2), "llama-spm"),
    "llama3-rope": (
        _llama(
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
            **_llama(256, 256, 4, 2, 2),
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
        "llama-spm",
    ),
    "qwen2": (
        {
            **_llama(256, 512, 4, 2, 2, rope_theta=1000000.0, rms_norm_eps=1e-06, tie_word_embeddings=True),
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "use_sliding_window": False,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
        },
        "qwen2-bpe",
    ),
}


def tokenizer_size(folder: Path) -> int:
    """Vocab size the model's embedding needs: the tokenizer's largest id + 1."""
    path = folder / "tokenizer.json"
    if path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        ids = [*doc["model"]["vocab"].values(), *(t["id"] for t in doc.get("added_tokens", []))]
        return max(ids) + 1
    import sentencepiece

    return int(sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model")).vocab_size())


def _weights(config: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, ff = config["hidden_size"], config["intermediate_size"]
    heads, kv, vocab = config["num_attention_heads"], config["num_key_value_heads"], config["vocab_size"]
    head_dim = h // heads
    experts = config.get("num_local_experts")

    def mat(rows: int, cols: int) -> np.ndarray:
        return rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.05)

    def norm(n: int) -> np.ndarray:
        return np.float32(1.0) + rng.standard_normal(n, dtype=np.float32) * np.float32(0.1)

    out: dict[str, np.ndarray] = {"model.embed_tokens.weight": mat(vocab, h)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = norm(h)
        out[p + "post_attention_layernorm.weight"] = norm(h)
        out[p + "self_attn.q_proj.weight"] = mat(heads * head_dim, h)
        out[p + "self_attn.k_proj.weight"] = mat(kv * head_dim, h)
        out[p + "self_attn.v_proj.weight"] = mat(kv * head_dim, h)
        out[p + "self_attn.o_proj.weight"] = mat(h, heads * head_dim)
        if config["model_type"] == "qwen2":  # Qwen2 has q/k/v biases
            out[p + "self_attn.q_proj.bias"] = norm(heads * head_dim) - np.float32(1.0)
            out[p + "self_attn.k_proj.bias"] = norm(kv * head_dim) - np.float32(1.0)
            out[p + "self_attn.v_proj.bias"] = norm(kv * head_dim) - np.float32(1.0)
        if experts:
            out[p + "block_sparse_moe.gate.weight"] = mat(experts, h)
            for x in range(experts):
                e = f"{p}block_sparse_moe.experts.{x}."
                out[e + "w1.weight"] = mat(ff, h)
                out[e + "w2.weight"] = mat(h, ff)
                out[e + "w3.weight"] = mat(ff, h)
        else:
            out[p + "mlp.gate_proj.weight"] = mat(ff, h)
            out[p + "mlp.up_proj.weight"] = mat(ff, h)
            out[p + "mlp.down_proj.weight"] = mat(h, ff)
    out["model.norm.weight"] = norm(h)
    if not config.get("tie_word_embeddings"):
        out["lm_head.weight"] = mat(vocab, h)
    return out


def make_model(case: str, folder: Path) -> Path:
    """Write the case's model folder (config, bf16 safetensors, tokenizer); return it."""
    from safetensors.numpy import save_file

    config, tokenizer = CASES[case]
    source = TOKENIZERS / tokenizer
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "vocab_size": tokenizer_size(source)}
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    rng = np.random.default_rng(sum(map(ord, case)))
    weights = {k: v.astype(ml_dtypes.bfloat16) for k, v in _weights(config, rng).items()}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    return folder
