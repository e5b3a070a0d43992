"""`estimate`: peak GPU memory to run or fine-tune a model, which GPUs hold it, and the seed's rules.

    from tensorfile.estimate import estimate_memory
    est = estimate_memory("7B", task="train", method="qlora", seq_len=1024)
    est.per_gpu_bytes, est.breakdown

The model is a path (file, folder or config.json) or a size like "7B"; settings are the CLI's
options as keywords. Submodules: spec (model shapes), model_source (a spec from a path, a
config.json or a size), architectures (exact parameter counts per model type), run (settings),
weights (bytes per quantization), memory (the phase model: the entry point, over breakdown,
activations, inference, training_states and training), gpus (fit and solvers), quick (the
seed's table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .breakdown import Part
from .memory import MemoryEstimate, estimate
from .model_source import spec_from_config, spec_from_path, spec_from_size
from .run import RunSpec, make_run
from .spec import ModelSpec, SpecError, looks_like_size, parse_size

__all__ = [
    "MemoryEstimate",
    "ModelSpec",
    "Part",
    "RunSpec",
    "describe_model",
    "estimate",
    "estimate_memory",
    "make_run",
    "parse_size",
    "spec_from_config",
    "spec_from_path",
    "spec_from_size",
]

SHAPE_OPTIONS = (
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "vocab_size",
    "intermediate_size",
    "head_dim",
    "experts",
    "experts_per_token",
    "sliding_window",
    "tie_word_embeddings",
)


def describe_model(model: str | Path | ModelSpec, **shape: Any) -> tuple[ModelSpec, dict[str, Any]]:
    """(spec, facts) for a path, a size string like '7B' or an existing spec; shape overrides apply."""
    if isinstance(model, ModelSpec):
        return model, {}
    text = str(model)
    overrides = {k: v for k, v in shape.items() if k in SHAPE_OPTIONS and v is not None}
    from ..hub.refs import is_remote

    if not is_remote(text) and not Path(text).exists():
        if not looks_like_size(text):
            raise SpecError(f"{text}: no such file or folder, and not a size like 7B")
        # a size, even an implausible one, gets parse_size's own reason (too small, too large)
        return spec_from_size(parse_size(text), overrides), {}
    return spec_from_path(text, overrides)


def default_weights(facts: dict[str, Any]) -> str | None:
    """--weights as the file stores them: its quantization or its dominant float dtype."""
    quant = facts.get("quantization") or {}
    method = str(quant.get("method") or "").lower()
    if method in ("gptq", "awq"):
        return method
    if method == "bitsandbytes" or method.startswith("bnb"):
        bits = quant.get("bits")
        return "int8" if bits == 8 else "nf4"
    if method == "gguf":
        types = {k: v for k, v in (quant.get("types") or {}).items() if k not in ("F32", "F16", "BF16")}
        chosen = quant.get("file_type") or (max(types, key=lambda k: types[k]) if types else None)
        if chosen:
            return f"gguf:{chosen}"
    by_dtype = facts.get("parameters_by_dtype") or {}
    floats = {k: v for k, v in by_dtype.items() if k in ("F32", "F16", "BF16")}
    if floats:
        return {"F32": "fp32", "F16": "fp16", "BF16": "bf16"}[max(floats, key=floats.get)]
    dtype = str(facts.get("torch_dtype") or "")
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype)


def estimate_memory(model: str | Path | ModelSpec, **settings: Any) -> MemoryEstimate:
    """Describe the model, apply the settings (the CLI's option names) and estimate one GPU's peak."""
    spec, facts = describe_model(model, **settings)
    run_settings = {k: v for k, v in settings.items() if k not in SHAPE_OPTIONS}
    method = run_settings.get("method") or "full"
    inference = run_settings.get("task", "inference") == "inference" and method == "full"
    # the file's own dtype is the default for running it and for PEFT's frozen base
    if run_settings.get("weights") is None and method != "qlora" and (inference or method != "full"):
        run_settings["weights"] = default_weights(facts)
    return estimate(spec, make_run(**run_settings))
