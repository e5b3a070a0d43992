"""inspect for quantized Hugging Face folders (AWQ, GPTQ, bitsandbytes) and Diffusers pipelines.

The folders are written with safetensors using the tensor names, shapes and config keys that
AutoAWQ, AutoGPTQ and transformers+bitsandbytes write (those need a GPU to quantize here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tensorfile.inspection import inspect


def test_gptq_logical_and_stored_counts(made: Callable[[str], Path]) -> None:
    info = inspect(made("gptq_dir"))
    q = info.quantization
    assert q is not None
    assert q["method"] == "gptq" and q["bits"] == 4 and q["group_size"] == 64
    assert q["quantized_layers"] == 1
    assert q["quantized_layer_names"] == ["model.layers.0.self_attn.q_proj"]
    # qweight int32 [64/8, 64] holds a 64x64 weight; the embedding is stored as is.
    assert q["logical_parameter_count"] == 64 * 64 + 32 * 64
    assert q["stored_parameter_count"] == info.parameter_count == 32 * 64 + 8 * 64 + 8 + 64 + 64
    roles = {t.name.rsplit(".", 1)[-1]: t.role for t in info.tensors}
    assert roles == {
        "weight": "weight",
        "qweight": "weight",
        "qzeros": "quant-aux",
        "scales": "quant-aux",
        "g_idx": "quant-aux",
    }
    assert info.tensor_types == "F16·I32"


def test_awq_packs_along_output(made: Callable[[str], Path]) -> None:
    q = inspect(made("awq_dir")).quantization
    assert q is not None and q["method"] == "awq"
    assert q["logical_parameter_count"] == 64 * 8 * 8 + 32 * 64


def test_bitsandbytes_nf4(made: Callable[[str], Path]) -> None:
    info = inspect(made("bnb_dir"))
    q = info.quantization
    assert q is not None
    assert q["method"] == "bitsandbytes" and q["bits"] == 4 and q["quant_type"] == "nf4"
    assert q["double_quant"] is False
    assert q["logical_parameter_count"] == 2048 * 2 + 32 * 64
    assert info.parameters_by_role["quant-aux"] == 64 + 16 + 100


def test_diffusers_components_and_total(made: Callable[[str], Path]) -> None:
    info = inspect(made("diffusers_dir"))
    assert set(info.components) == {"unet", "vae"}
    assert all(c.tensor_count == 1 and c.parameter_count == 4 for c in info.components.values())
    assert info.tensor_count == 2 and info.parameter_count == 8
    assert {t.name for t in info.tensors} == {"unet/w", "vae/w"}
    doc = info.to_dict()
    assert doc["components"]["unet"]["tensor_count"] == 1 and "tensors" not in doc["components"]["unet"]
    single = inspect(made("diffusers_dir") / "unet")
    assert single.parameter_count == 4
