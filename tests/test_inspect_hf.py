"""inspect and identify on Hugging Face folders written by the real libraries.

tests/fixtures/make_hf_fixtures.py wrote tests/fixtures/hf/ with transformers (5.24 and, for the
pickled .bin folders, 4.57), bitsandbytes 0.50 on CPU (nf4/fp4 with double quant, nf4 with BF16
storage, LLM.int8), GPTQModel 7.3 on CPU (GPTQ, AWQ GEMM) and diffusers 0.42 (a Stable Diffusion
pipeline with an fp16 variant). Its MANIFEST.json holds what those libraries say about each folder:
safetensors.safe_open / torch.load counts, model.num_parameters() of the unquantized model, the
layers bitsandbytes and GPTQModel replaced, the block size in bitsandbytes' quant_state.
At test time safetensors and torch (weights_only) read the same files once more, for names and bytes.
"""

from __future__ import annotations

import io
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import tensorfile
from tensorfile.inspection import collapse_layer_names
from tensorfile.model import ModelInfo, TensorInfo
from tensorfile.render import inspect_report

HF = Path(__file__).parent / "fixtures" / "hf"
if not (HF / "MANIFEST.json").is_file():  # committed: a missing manifest is a broken checkout
    raise RuntimeError("tests/fixtures/hf/MANIFEST.json is missing: run tests/fixtures/make_hf_fixtures.py")
MANIFEST = json.loads((HF / "MANIFEST.json").read_text())
FIXTURES: dict[str, dict[str, Any]] = {e["path"]: e for e in MANIFEST["fixtures"]}
QUANTIZED = sorted(p for p, e in FIXTURES.items() if "quantization" in e["facts"])
BNB_4BIT = sorted(
    p for p in QUANTIZED if FIXTURES[p]["facts"]["quantization"].get("bits") == 4 and "bnb" in p
)
# The unquantized Llama's model.num_parameters(): every quantized folder's logical count.
MANIFEST_BASE_PARAMETERS = FIXTURES["llama_safetensors"]["facts"]["num_parameters"]
# torch dtype names (bitsandbytes' quant storage) -> tensorfile's names
TORCH_TO_TF = {"uint8": "U8", "bfloat16": "BF16", "float16": "F16", "float32": "F32", "int8": "I8"}


def test_manifest_covers_every_kind_of_folder() -> None:
    assert not MANIFEST["failures"] and not MANIFEST["skipped"]
    assert {e["format"] for e in FIXTURES.values()} == {
        "safetensors",
        "safetensors-sharded",
        "bitsandbytes",
        "gptq",
        "awq",
        "diffusers",
    }
    assert MANIFEST["total_bytes"] < 1_500_000  # committed: keep the folders tiny
    for path, entry in FIXTURES.items():
        listed = {f.relative_to(HF / path).as_posix() for f in (HF / path).rglob("*") if f.is_file()}
        assert listed == set(entry["files"]), path


@pytest.mark.parametrize("path", sorted(FIXTURES))
def test_identify_and_counts_match_the_writing_library(path: str) -> None:
    entry, facts = FIXTURES[path], FIXTURES[path]["facts"]
    ident = tensorfile.identify(HF / path)
    assert ident.format == entry["format"], (ident.format, ident.evidence)
    assert ident.kind == "directory" and ident.warnings == []
    info = tensorfile.inspect(HF / path)
    assert info.format == entry["format"]
    assert info.warnings == []
    assert info.tensor_count == facts["tensor_count"]
    assert info.parameter_count == facts["parameter_count"]
    assert info.parameters_by_dtype == facts["parameters_by_dtype"]
    assert "·".join(facts["parameters_by_dtype"]) == info.tensor_types


@cache
def _library_tensors(file: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """name -> (dtype, shape, raw bytes) as safetensors or torch.load(weights_only=True) give them."""
    import torch

    if file.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - no __iter__
    else:
        state = torch.load(file, map_location="cpu", weights_only=True)
    dtypes = {getattr(torch, k): v for k, v in TORCH_TO_TF.items()} | {torch.int32: "I32"}
    return {
        name: (
            dtypes[t.dtype],
            tuple(t.shape),
            t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes(),
        )
        for name, t in state.items()
    }


def _bytes_at(file: Path, offset: int, nbytes: int) -> bytes:
    with file.open("rb") as f:
        f.seek(offset)
        return f.read(nbytes)


@pytest.mark.parametrize("path", sorted(FIXTURES))
def test_tensor_names_dtypes_shapes_and_data_offsets(path: str) -> None:
    """Every tensor tensorfile lists is the library's, and its (file, offset) holds the library's bytes."""
    info = tensorfile.inspect(HF / path)
    by_file: dict[str, list[TensorInfo]] = {}
    for t in info.tensors:
        assert t.file is not None
        by_file.setdefault(t.file, []).append(t)
    for label, tensors in by_file.items():
        file = HF / path / label
        expected = _library_tensors(file)
        # Diffusers names carry their component: unet/<name>.
        local = {t.name.split("/", 1)[-1] if "/" in label else t.name: t for t in tensors}
        assert set(local) == set(expected), label
        for name, t in local.items():
            dtype, shape, data = expected[name]
            assert (t.dtype, t.shape, t.nbytes) == (dtype, shape, len(data)), name
            assert t.offset is not None and _bytes_at(file, t.offset, t.nbytes) == data, name


@pytest.mark.parametrize("path", QUANTIZED)
def test_quantization_report(path: str) -> None:
    facts = FIXTURES[path]["facts"]
    expected = facts["quantization"]
    info = tensorfile.inspect(HF / path)
    q = info.quantization
    assert q is not None
    assert q["method"] == expected["method"] == FIXTURES[path]["format"]
    assert q["bits"] == expected["bits"]
    # group: GPTQ/AWQ's config group_size, bitsandbytes' quant_state.blocksize, none for LLM.int8
    assert q["group_size"] == expected.get("group_size", expected.get("blocksize"))
    assert q["quantized_layers"] == expected["quantized_layers"] == 14
    assert sorted(q["quantized_layer_names"]) == expected["quantized_layer_names"]
    assert q["stored_parameter_count"] == facts["parameter_count"] == info.parameter_count
    # The unquantized model's model.num_parameters(), whatever the packing.
    assert q["logical_parameter_count"] == facts["logical_parameter_count"] == MANIFEST_BASE_PARAMETERS


@pytest.mark.parametrize("path", QUANTIZED)
def test_terminal_report_collapses_the_quantized_layer_list(path: str) -> None:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    inspect_report(console, tensorfile.inspect(HF / path), [], None)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "quantized_layer_names=model.layers.{0..1}.{" in text
    assert text.count("self_attn.q_proj") == 1  # once in the collapsed form, not once per layer
    for name in FIXTURES[path]["facts"]["quantization"]["quantized_layer_names"]:
        assert name.split(".", 3)[-1] in text


def test_json_lists_every_quantized_layer(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    k, n, group = 128, 64, 128
    tensors = {}
    for i in range(80):  # more layers than a summary would show
        p = f"model.layers.{i}.mlp.down_proj"
        tensors[f"{p}.qweight"] = np.zeros((k // 8, n), np.int32)
        tensors[f"{p}.qzeros"] = np.zeros((k // group, n // 8), np.int32)
        tensors[f"{p}.scales"] = np.zeros((k // group, n), np.float16)
        tensors[f"{p}.g_idx"] = np.zeros(k, np.int32)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    config = {
        "model_type": "llama",
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": group},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    q = tensorfile.inspect(tmp_path).quantization
    assert q is not None and q["quantized_layers"] == 80
    assert q["quantized_layer_names"] == [f"model.layers.{i}.mlp.down_proj" for i in range(80)]
    assert q["logical_parameter_count"] == 80 * k * n


def test_collapse_layer_names_keeps_unnumbered_names() -> None:
    names = ["m.layers.0.q", "m.layers.1.q", "m.layers.3.q", "lm_head", "m.blocks.2.fc"]
    assert collapse_layer_names(names) == "m.layers.{0,1,3}.q; m.blocks.2.fc; lm_head"
    assert collapse_layer_names(["a.0.x", "a.1.x", "a.2.y"]) == "a.{0..2}.{x, y}"


@pytest.mark.parametrize("path", QUANTIZED)
def test_only_side_tensors_are_quant_aux(path: str) -> None:
    """What is not quant-aux is the original model's tensor list, with qweight for packed weights."""
    base = set(_library_tensors(HF / "llama_safetensors" / "model.safetensors"))
    expected = FIXTURES[path]["facts"]["quantization"]
    packed = {f"{n}.weight" for n in expected["quantized_layer_names"]}
    if expected["method"] in ("gptq", "awq"):
        base = (base - packed) | {f"{n}.qweight" for n in expected["quantized_layer_names"]}
    info = tensorfile.inspect(HF / path)
    q = info.quantization
    assert q is not None
    tied = set(q.get("tied_tensors", []))
    kept = {t.name for t in info.tensors if t.role != "quant-aux"}
    assert kept - tied == base
    assert info.parameters_by_role["quant-aux"] > 0


@pytest.mark.parametrize("path", BNB_4BIT)
def test_bitsandbytes_4bit_details(path: str) -> None:
    expected = FIXTURES[path]["facts"]["quantization"]
    q = tensorfile.inspect(HF / path).quantization
    assert q is not None
    assert q["quant_type"] == expected["quant_type"] == expected["quantization_config"]["bnb_4bit_quant_type"]
    assert q["double_quant"] is expected["double_quant"]
    assert q["storage_dtype"] == TORCH_TO_TF[expected["quant_storage"]]
    assert q["bnb_4bit_quant_storage"] == expected["quant_storage"]
    assert not any(k.startswith("llm_int8_threshold") for k in q)  # 8-bit fields of the config are not shown


def test_bitsandbytes_bf16_storage_counts_codes_not_elements() -> None:
    """With quant_storage=bfloat16 each BF16 element packs four 4-bit codes, not one weight."""
    info = tensorfile.inspect(HF / "bnb_nf4_bf16storage_sharded")
    q = info.quantization
    assert q is not None and q["storage_dtype"] == "BF16"
    packed = sum(t.numel for t in info.tensors if t.dtype == "BF16")
    facts = FIXTURES["bnb_nf4_bf16storage_sharded"]["facts"]["quantization"]
    assert packed * 4 == facts["logical_quantized_weights"]  # bitsandbytes' quant_state shapes


def test_sharded_quantized_folder_decided_past_a_plain_first_shard() -> None:
    folder = HF / "bnb_nf4_bf16storage_sharded"
    first = sorted(folder.glob("*.safetensors"))[0]
    assert list(_library_tensors(first)) == ["model.embed_tokens.weight"]  # nothing quantized in it
    ident = tensorfile.identify(folder)
    assert ident.format == "bitsandbytes" and ident.confidence == 1.0
    assert any("bitsandbytes__nf4" in e for e in ident.evidence)
    assert ident.details["weights_files"] == FIXTURES["bnb_nf4_bf16storage_sharded"]["facts"]["weights_files"]


def test_bitsandbytes_int8() -> None:
    expected = FIXTURES["bnb_int8"]["facts"]["quantization"]
    ident = tensorfile.identify(HF / "bnb_int8")
    assert ident.confidence == 1.0
    summary = ident.details["quantization"]
    # transformers writes every bnb_4bit_* field in 8-bit mode too; only the active mode is shown.
    assert summary == {
        "method": "bitsandbytes",
        "load_in_8bit": True,
        "llm_int8_threshold": expected["threshold"],
        "llm_int8_has_fp16_weight": False,
    }
    q = tensorfile.inspect(HF / "bnb_int8").quantization
    assert q is not None and q["storage_dtype"] == "I8" and "quant_type" not in q


@pytest.mark.parametrize("path", ["bnb_nf4_dq_bin", "bnb_int8_bin"])
def test_pickled_bitsandbytes_folder(path: str) -> None:
    """transformers 4 save_pretrained(safe_serialization=False): read by the non-executing pickle reader."""
    facts = FIXTURES[path]["facts"]
    ident = tensorfile.identify(HF / path)
    assert ident.details["container"] == "pytorch"
    assert ident.details["weights_files"] == facts["weights_files"] == ["pytorch_model.bin"]
    assert ident.confidence == 1.0  # config and data.pkl's tensor names agree
    assert ident.can_execute_code is True
    info = tensorfile.inspect(HF / path)
    assert info.pickle is not None
    assert all(name.startswith(("torch.", "collections.")) for name in info.pickle["imports"])
    q = info.quantization
    assert q is not None
    # torch.save keeps the tied lm_head as a second tensor on the embedding's storage: counted as
    # stored (torch.load lists it) but once in the original model.
    assert q["tied_tensors"] == ["lm_head.weight"]
    assert q["stored_parameter_count"] == facts["parameter_count"]
    assert q["logical_parameter_count"] == MANIFEST_BASE_PARAMETERS


@pytest.mark.parametrize("path", ["gptq_gptqmodel", "awq_gptqmodel"])
def test_gptq_awq_config_and_single_file(path: str) -> None:
    config = FIXTURES[path]["facts"]["quantization"]["quantization_config"]
    ident = tensorfile.identify(HF / path)
    assert ident.confidence == 1.0
    summary = ident.details["quantization"]
    assert summary["bits"] == config["bits"] and summary["group_size"] == config["group_size"]
    if path.startswith("gptq"):
        assert (summary["desc_act"], summary["sym"]) == (config["desc_act"], config["sym"])
    else:
        assert (summary["version"], summary["zero_point"]) == (config["version"], config["zero_point"])
    # The weights file alone: tensor names decide, the sibling config.json confirms.
    single = tensorfile.identify(HF / path / "model.safetensors")
    assert single.format == FIXTURES[path]["format"] and single.confidence == 1.0
    q = tensorfile.inspect(HF / path / "model.safetensors").quantization
    assert q is not None and q["logical_parameter_count"] == MANIFEST_BASE_PARAMETERS


def test_llama_folders_architecture_and_shards() -> None:
    llama = tensorfile.inspect(HF / "llama_safetensors")
    config = MANIFEST["llama_config"]
    assert llama.quantization is None
    assert {k: llama.architecture[k] for k in ("layers", "hidden_size", "heads", "kv_heads", "head_dim")} == {
        "layers": config["num_hidden_layers"],
        "hidden_size": config["hidden_size"],
        "heads": config["num_attention_heads"],
        "kv_heads": config["num_key_value_heads"],
        "head_dim": config["head_dim"],
    }
    assert llama.parameter_count == FIXTURES["llama_safetensors"]["facts"]["num_parameters"]
    facts = FIXTURES["llama_sharded"]["facts"]
    sharded = tensorfile.inspect(HF / "llama_sharded")
    assert [f["path"] for f in sharded.files] == facts["weights_files"]
    assert len(facts["weights_files"]) > 1
    assert sharded.total_bytes == facts["index_total_size"]
    assert sharded.parameter_count == facts["num_parameters"]


def _component_counts(info: ModelInfo) -> dict[str, tuple[int, int, dict[str, int]]]:
    return {k: (v.tensor_count, v.parameter_count, v.parameters_by_dtype) for k, v in info.components.items()}


def _expected_counts(facts: dict[str, Any]) -> dict[str, tuple[int, int, dict[str, int]]]:
    return {k: (c["tensor_count"], c["parameter_count"], c["parameters_by_dtype"]) for k, c in facts.items()}


def test_diffusers_pipeline_components() -> None:
    facts = FIXTURES["diffusers_sd_pipeline"]["facts"]
    ident = tensorfile.identify(HF / "diffusers_sd_pipeline")
    assert ident.details["pipeline"] == facts["pipeline"] == "StableDiffusionPipeline"
    assert ident.details["diffusers_version"] == facts["diffusers_version"]
    assert ident.details["components"] == {
        **{k: c["class"] for k, c in facts["components"].items()},
        "scheduler": "DDPMScheduler",
        "tokenizer": "CLIPTokenizer",
    }
    info = tensorfile.inspect(HF / "diffusers_sd_pipeline")
    assert _component_counts(info) == _expected_counts(facts["components"])
    # Diffusers' own model.num_parameters() equals what is stored: no persistent buffers here.
    assert all(
        c.parameter_count == facts["components"][k]["num_parameters"] for k, c in info.components.items()
    )
    # Scheduler and tokenizer hold no weights: listed, not warned about; the fp16 copies not counted.
    assert info.metadata["components_without_weights"] == facts["components_without_weights"]
    assert info.metadata["variants_not_counted"] == ["fp16"]
    assert info.warnings == []
    doc = info.to_dict()
    assert doc["components"]["unet"]["tensor_count"] == facts["components"]["unet"]["tensor_count"]
    assert "tensors" not in doc["components"]["unet"]


def test_diffusers_fp16_variant_alone(tmp_path: Path) -> None:
    """A folder holding only `variant="fp16"` weights is read through that variant."""
    facts = FIXTURES["diffusers_sd_pipeline"]["facts"]
    folder = tmp_path / "pipe"
    shutil.copytree(HF / "diffusers_sd_pipeline", folder)
    for name, component in facts["components"].items():
        for file in component["weights_files"]:
            (folder / name / file).unlink()
    info = tensorfile.inspect(folder)
    assert _component_counts(info) == _expected_counts(facts["fp16_variant"])
    assert info.components["unet"].metadata["variant"] == "fp16"
    assert info.parameters_by_dtype == {"F16": facts["parameter_count"]}


def test_diffusers_single_component() -> None:
    facts = FIXTURES["diffusers_sd_pipeline"]["facts"]["components"]["unet"]
    ident = tensorfile.identify(HF / "diffusers_sd_pipeline" / "unet")
    assert ident.format == "diffusers" and ident.details["single_component"] is True
    assert ident.details["weights"] == facts["weights_files"]
    info = tensorfile.inspect(HF / "diffusers_sd_pipeline" / "unet")
    assert (info.tensor_count, info.parameter_count) == (facts["tensor_count"], facts["parameter_count"])
    assert info.metadata["component_class"] == facts["class"]
    assert info.metadata["variants_not_counted"] == ["fp16"]
