"""tensorfile's port of llama-quantize's type mix against the real llama-quantize.

tests/data/gguf_mix_refs.json holds llama-quantize's choices for small GGUF files of many layouts
(tests/fixtures/make_gguf_mix_refs.py); the `llamacpp`-marked test makes random layouts and runs
the live binary.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from tensorfile.convert.gguf.mix import QUANTS, TensorSpec, choose_types, file_type, quantize_order

REFS = json.loads((Path(__file__).parent / "data" / "gguf_mix_refs.json").read_text(encoding="utf-8"))
CASES = REFS["cases"]
CODES: dict[str, str] = REFS["codes"]
RUNS = [(case, key) for case, ref in CASES.items() for key in ref["results"]]


def _choose(ref: dict[str, Any], key: str) -> dict[str, str]:
    quant, _, imatrix = key.partition("+")
    return choose_types(
        ref["arch"],
        [TensorSpec(name, tuple(shape)) for name, shape, _ in ref["tensors"]],
        quant,
        n_layer=ref["n_layer"],
        n_expert=ref["n_expert"],
        n_head=ref["n_head"],
        n_head_kv=ref["n_head_kv"],
        source_types={name: source for name, _, source in ref["tensors"]},
        has_imatrix=imatrix == "imatrix",
    )


@pytest.mark.parametrize(("case", "key"), RUNS, ids=[f"{c}-{k}" for c, k in RUNS])
def test_types_match_llama_quantize(case: str, key: str) -> None:
    ref = CASES[case]
    expected = ref["results"][key]
    if expected is None:  # llama-quantize refused: no imatrix for the mix, or no fallback type
        with pytest.raises(ValueError):
            _choose(ref, key)
        return
    names = [name for name, _, _ in ref["tensors"]]
    want = {name: CODES[code] for name, code in zip(names, expected, strict=True)}
    got = _choose(ref, key)
    assert list(got) == [names[i] for i in ref["order"]]
    assert {n: (got[n], want[n]) for n in names if got[n] != want[n]} == {}
    assert file_type(key.partition("+")[0]) == ref["file_type"][key]


def test_refs_cover_the_types() -> None:
    """Every name choose_types accepts was run, and the decisions add up to a real sample."""
    keys = {key.partition("+")[0] for ref in CASES.values() for key in ref["results"]}
    assert keys == set(QUANTS)
    decisions = sum(len(ref["tensors"]) for ref in CASES.values() for r in ref["results"].values() if r)
    assert decisions > 40_000


def test_order_and_aliases() -> None:
    names = ["blk.10.attn_v.weight", "output.weight", "blk.2.ffn_down.weight", "blk.2.attn_k.weight", "a"]
    assert quantize_order(names) == [
        "a",
        "output.weight",
        "blk.2.attn_k.weight",
        "blk.2.ffn_down.weight",
        "blk.10.attn_v.weight",
    ]
    assert file_type("q4_k") == file_type("Q4_K_M") == 15
    with pytest.raises(ValueError):
        file_type("Q7_K")


def _random_case(rng: random.Random) -> Any:
    """A random decoder layout: arch, depth, widths (some not multiples of 256 or 32), GQA, experts,
    tied embeddings, fused qkv, source type, shuffled file order."""
    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    import make_gguf_mix_refs as gen

    arch = rng.choice(["llama", "qwen2", "qwen3", "falcon", "gemma3"])
    n_head = rng.choice([2, 4, 8])
    case = gen.Case(
        arch,
        rng.randint(1, 20),
        rng.choice([256, 512, 320, 192, 200]),
        n_head,
        rng.choice([k for k in (1, 2, n_head) if n_head % k == 0]),
        n_ff=rng.choice([256, 512, 448, 96]),
        n_expert=rng.choice([0, 0, 4, 8]) if arch in ("llama", "qwen3") else 0,
        norm_eps_key="plain" if arch == "falcon" else "rms",
    )
    gen.dense(
        case,
        weight=rng.choice(["F32", "F16", "BF16"]),
        tied=rng.random() < 0.5,
        qkv=rng.random() < 0.3,
        vocab=rng.choice([16, 40]),
        rows=8,
    )
    rng.shuffle(case.tensors)
    return gen, case


@pytest.mark.llamacpp
@pytest.mark.parametrize("seed", [3, 7, 14, 16, 24, 34])  # qwen2, MoE 4 and 8, falcon, gemma3
def test_live_llama_quantize(seed: int, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.llamacpp import paths

    p = paths()
    if not p.quantize.is_file():
        pytest.skip(f"llama-quantize not built at {p.quantize} (python bench/llamacpp.py)")
    gen, case = _random_case(random.Random(seed))
    src = tmp_path / "in.gguf"
    gen.write_case(case, src)
    quants = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"]
    quants += ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16", "IQ4_XS", "IQ4_NL", "MXFP4_MOE"]
    for quant in quants:
        got = gen.quantize(p, src, tmp_path / f"{quant}.gguf", quant, None)
        specs = [TensorSpec(name, shape) for name, shape, _ in case.tensors]
        kwargs = {"n_layer": case.n_layer, "n_expert": case.n_expert, "n_head": case.n_head}
        sources = {name: source for name, _, source in case.tensors}
        if got == "error":
            with pytest.raises(ValueError):
                choose_types(
                    case.arch, specs, quant, n_head_kv=case.n_head_kv, source_types=sources, **kwargs
                )
            continue
        assert isinstance(got, dict)
        mine = choose_types(case.arch, specs, quant, n_head_kv=case.n_head_kv, source_types=sources, **kwargs)
        assert mine == got["types"], quant
        assert list(mine) == got["order"]
        assert file_type(quant) == got["file_type"]
