"""llama.cpp loads the GGUF files tensorfile writes and decodes from them what transformers does.

For every tiny model of gguf_models.py: tensorfile writes F32, Q8_0 and Q4_K_M files, llama.cpp's
converter writes its own F32 file; llama.cpp (through llama-cpp-python's bindings over the
referee's libllama) greedy-decodes from each, and transformers from the Hugging Face folder.
F32: the same tokens as transformers, and llama.cpp's argmax equal to transformers' at every
position of transformers' sequence, logits within 1e-3 of their largest. Quantized: llama.cpp
loads and decodes them. Needs the referee of bench/llamacpp.py (marked `llamacpp`; it takes a few minutes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tensorfile.convert.run import convert

from .gguf_models import CASES, make_model

ROOT = Path(__file__).resolve().parents[1]
REFEREE = Path(__file__).parent / "fixtures" / "decode_referee.py"
N_NEW = 12
PROMPT = "The quick brown fox"
# Cases where llama.cpp decodes its own converter's file (byte-identical to ours) differently from
# transformers: Phi-3 LongRoPE (rope_factors_short plus the attention factor) departs from the
# 7th generated token of this tiny model on. Recorded, not hidden: the test fails if they agree.
LLAMA_CPP_DIFFERS = {"phi3-longrope"}


def _referee():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))
    from bench.llamacpp import paths

    p = paths()
    if not (p.built() and p.converter_ready()):
        pytest.skip("llama.cpp referee not built (python bench/llamacpp.py)")
    return p


@pytest.mark.llamacpp
@pytest.mark.parametrize("case", list(CASES))
def test_llama_cpp_decodes_what_transformers_does(case: str, tmp_path: Path) -> None:
    p = _referee()
    # a neutral folder name: general.name comes from it, and llama.cpp's vocab loader looks up
    # model-specific special tokens (Phi-3's <|end|>, …) by name, which these tiny tokenizers lack
    folder = make_model(case, tmp_path / case / "model")
    ours = {q: tmp_path / f"ours-{q}.gguf" for q in ("F32", "Q8_0", "Q4_K_M")}
    for quant, path in ours.items():
        convert(folder, path, quant=quant)
    theirs = tmp_path / "llama-cpp-F32.gguf"
    converter = [str(p.convert_python), str(p.converter), str(folder), "--outfile", str(theirs)]
    subprocess.run([*converter, "--outtype", "f32"], env=p.converter_env(), check=True, capture_output=True)
    files = [ours["F32"], theirs, ours["Q8_0"], ours["Q4_K_M"]]
    cmd = [str(p.convert_python), str(REFEREE), str(folder), str(N_NEW), PROMPT, *map(str, files)]
    proc = subprocess.run(cmd, env=p.bindings_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = report["gguf"]
    f32, their_f32 = runs[str(ours["F32"])], runs[str(theirs)]
    assert f32["ids"] == their_f32["ids"], report  # llama.cpp reads our file as its own
    if case in LLAMA_CPP_DIFFERS:  # llama.cpp itself, on its own converter's file, disagrees
        assert their_f32["ids"] != report["hf"], f"{case} now agrees with transformers: drop it"
        return
    assert f32["ids"] == report["hf"], report
    assert f32["forced_argmax"] == report["hf"]
    # float32 summed in other orders (ggml's blocked dot products, torch's BLAS): ~1e-4 relative.
    # A mixture-of-experts router can pick another expert on a near-tie at a position (then that
    # position's logits differ while its argmax agreed above): at most one in ten positions.
    tolerance = 1e-3 * f32["max_abs_logit"]
    off = [d for d in f32["max_abs_logit_diff_by_position"] if d >= tolerance]
    moe = bool(CASES[case][0].get("num_experts") or CASES[case][0].get("num_local_experts"))
    assert len(off) <= (len(f32["max_abs_logit_diff_by_position"]) // 10 if moe else 0), f32
    for quant in ("Q8_0", "Q4_K_M"):
        assert len(runs[str(ours[quant])]["ids"]) == N_NEW
