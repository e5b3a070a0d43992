"""Hugging Face model → GGUF, byte for byte what llama.cpp's converter and llama-quantize write.

The references (sha256 of llama.cpp's outputs for the tiny models of gguf_models.py) were made by
tests/fixtures/make_gguf_refs.py; the `llamacpp`-marked test re-runs llama.cpp live.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gguf
import pytest

from tensorfile.convert.run import convert
from tensorfile.errors import TensorfileError

from .conftest import run_cli
from .gguf_models import CASES, LIVE_KINDS, QUICK_KINDS, TOKENIZERS, make_model

REFS = Path(__file__).parent / "data" / "gguf_convert_refs.json"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"


def _refs() -> dict[str, dict[str, dict[str, object]]]:
    return json.loads(REFS.read_text(encoding="utf-8"))["cases"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ours(case: str, kind: str, tmp: Path) -> Path:
    folder = tmp / case
    if not folder.exists():
        make_model(case, folder)
    step, _, rest = kind.partition(":")
    out = tmp / f"{case}-{kind.replace(':', '-')}.gguf"
    if out.exists():  # made already, as another kind's source
        return out
    if step == "convert":
        convert(folder, out, quant=None if rest == "auto" else rest)
    elif step == "quantize" and rest in ("F16", "BF16"):
        # `--quant F16` on a folder is the converter's --outtype f16 (convert:f16); llama-quantize
        # to a float type is the GGUF → GGUF path, from our own auto file
        convert(_ours(case, "convert:auto", tmp), out, quant=rest)
    elif step == "quantize":
        convert(folder, out, quant=rest)
    else:  # requantize:Q8_0:TYPE — from our own Q8_0 file, as llama-quantize was run on its own
        source_type, target = rest.split(":")
        q8 = tmp / f"{case}-quantize-{source_type}.gguf"
        if not q8.exists():
            convert(folder, q8, quant=source_type)
        convert(q8, out, quant=target)
    return out


def _quick(case: str, kind: str) -> bool:
    """Checked in the default run: every kind, except for the cases with Qwen's large vocab."""
    return case not in QUICK_KINDS or kind in QUICK_KINDS[case]


def _llamacpp_selected(config: pytest.Config) -> bool:
    """`-m llamacpp` given: the full set of kinds is wanted."""
    expr = str(config.getoption("markexpr") or "")
    return "llamacpp" in expr and "not llamacpp" not in expr


_KINDS = [
    pytest.param(case, kind, marks=[] if _quick(case, kind) else [pytest.mark.llamacpp])
    for case, refs in _refs().items()
    for kind in refs
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


@pytest.mark.parametrize(("case", "kind"), _KINDS)
def test_same_bytes_as_llama_cpp(case: str, kind: str, work: Path, request: pytest.FixtureRequest) -> None:
    if not _quick(case, kind) and not _llamacpp_selected(request.config):
        pytest.skip("a large-vocab case: this kind runs under -m llamacpp")
    want = _refs()[case][kind]
    out = _ours(case, kind, work)
    assert out.stat().st_size == want["size"]
    assert _sha(out) == want["sha256"]


def test_every_case_and_type_has_a_reference() -> None:
    refs = _refs()
    assert set(refs) == set(CASES)
    for case in CASES:
        assert len([k for k in refs[case] if k.startswith("quantize:")]) == 16
        assert set(QUICK_KINDS.get(case, ())) <= set(refs[case])


def test_every_case_is_what_transformers_builds() -> None:
    """make_gguf_refs.py built each model from its config.json with transformers and found our
    weights' names and shapes equal to its parameters (and from_pretrained loading them cleanly)."""
    checks = json.loads(REFS.read_text(encoding="utf-8"))["transformers_checks"]
    assert set(checks) == set(CASES)
    for case, check in checks.items():
        assert check["state_dict_equal"] is True, case
        assert check["class"] == CASES[case][0]["architectures"][0]


def test_result_reports_types_bits_and_memory(tmp_path: Path) -> None:
    folder = make_model("llama-gqa", tmp_path / "m")
    result = convert(folder, tmp_path / "m.gguf", quant="f16")
    g = result.gguf
    assert g is not None and g["arch"] == "llama" and g["quant"] == "F16"
    assert g["tensors_by_type"] == {"F16": 16, "F32": 5}
    assert 15.5 < g["bits_per_weight"] < 16.5
    assert g["run_memory"]["engine"] == "llama.cpp" and g["run_memory"]["bytes"] > result.total_bytes
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16


def test_cli_json_and_errors(tmp_path: Path) -> None:
    folder = make_model("llama-narrow", tmp_path / "m")
    proc = run_cli("convert", str(folder), str(tmp_path / "m.gguf"), "--quant", "bf16", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["gguf"]["quant"] == "BF16" and doc["files"][0]["size_bytes"] > 0
    bad = run_cli("convert", str(folder), str(tmp_path / "x.gguf"), "--quant", "Q9_K")
    assert bad.returncode == 2 and "Q4_K_M" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.gguf").exists()


def test_unknown_architecture_is_one_error_before_any_byte(tmp_path: Path) -> None:
    folder = make_model("llama-narrow", tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["FancyNewForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TensorfileError, match="FancyNewForCausalLM"):
        convert(folder, tmp_path / "m.gguf", quant="F16")
    assert list(tmp_path.iterdir()) == [folder]
    proc = run_cli("convert", str(folder), str(tmp_path / "m.gguf"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_requantize_needs_a_type(tmp_path: Path) -> None:
    with pytest.raises(TensorfileError, match="--quant"):
        convert(EXAMPLES / "tiny-llama-q8_0.gguf", tmp_path / "x.gguf")


def test_tokenizer_fixtures_are_present() -> None:
    assert any(TOKENIZERS.iterdir())


def _small_qwen_moe(folder: Path, tensors: dict[str, tuple[int, ...]]) -> Path:
    """A config.json and a header-only-sized safetensors: enough for the plan, which fails first."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir()
    config = {**CASES["qwen2-moe"][0], "vocab_size": 8, "num_hidden_layers": 1}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: np.zeros(s, np.float16) for k, s in tensors.items()}, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("fused-experts", "fused expert tensors"),
        ("reranker", "reranker"),
        ("gemma3-softcap", "attn_logit_softcapping"),
        ("phi3-rope", "rope scaling type 'linear'"),
    ],
)
def test_unsupported_variants_fail_before_any_byte(what: str, match: str, tmp_path: Path) -> None:
    if what == "fused-experts":  # transformers 5 saves a layer's experts as one tensor
        shapes = {
            "model.embed_tokens.weight": (8, 256),
            "model.layers.0.mlp.experts.gate_up_proj": (4, 512, 256),
        }
        folder = _small_qwen_moe(tmp_path / "m", shapes)
    else:
        case = {"reranker": "qwen3-embed", "gemma3-softcap": "gemma3", "phi3-rope": "phi3-longrope"}[what]
        folder = make_model(case, tmp_path / "m")
        config = json.loads((folder / "config.json").read_text())
        if what == "reranker":  # the converter would rebuild lm_head as a yes/no classifier
            (folder / "README.md").write_text("# Qwen3-Reranker-0.6B\n")
        elif what == "gemma3-softcap":
            config["attn_logit_softcapping"] = 50.0
        else:
            config["rope_scaling"]["type"] = "linear"
        (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TensorfileError, match=match):
        convert(folder, tmp_path / "m.gguf", quant="Q4_K_M")
    assert list(tmp_path.iterdir()) == [folder]


def _live_cases() -> list[object]:
    return [pytest.param(case, marks=pytest.mark.llamacpp) for case in CASES]


@pytest.mark.parametrize("case", _live_cases())
def test_live_llama_cpp_agrees(case: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.llamacpp import paths

    p = paths()
    if not (p.built() and p.converter_ready()):
        pytest.skip("llama.cpp referee not built (python bench/llamacpp.py)")
    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    from make_gguf_refs import case_refs

    ref_dir, ours_dir = tmp_path / "ref", tmp_path / "ours"
    ref_dir.mkdir()
    ours_dir.mkdir()
    # every kind under -m llamacpp; in a plain run some cases keep to a few kinds
    only = None if _llamacpp_selected(request.config) else LIVE_KINDS.get(case)
    refs = case_refs(p, case, ref_dir, only=only)
    for kind, want in refs.items():
        assert _sha(_ours(case, kind, ours_dir)) == want["sha256"], (case, kind)
    assert refs == {k: v for k, v in _refs()[case].items() if k in refs}, "recorded references are stale"
