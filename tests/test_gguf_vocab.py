"""The GGUF tokenizer keys against llama.cpp's converter, key by key and byte for byte.

tests/fixtures/make_gguf_tokenizers.py made real tokenizers with transformers / sentencepiece /
tokenizers and ran convert_hf_to_gguf.py --vocab-only on a tiny model for each case; the keys its
`set_vocab()` wrote are in gguf_tokenizers/expected_vocab.json with the sha256 of each key's bytes
as written. Here `add_vocab` writes the same case into a fresh GGUFWriter and each key must match
in order, name, type and bytes. The `llamacpp` test reruns the live converter instead, also on
the full (untrimmed) Qwen2 and Llama 3 vocabularies.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gguf
import pytest

from tensorfile.convert.gguf.hparams import load_hparams
from tensorfile.convert.gguf.vocab import add_vocab
from tensorfile.convert.gguf.vocab_bpe import CHKTXT, PRE_TOKENIZERS
from tensorfile.convert.gguf.vocab_spm import read_pieces
from tensorfile.errors import UnsupportedError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "gguf_tokenizers"
EXPECTED = json.loads((FIXTURES / "expected_vocab.json").read_text(encoding="utf-8"))

_spec = importlib.util.spec_from_file_location(
    "make_gguf_tokenizers", ROOT / "tests/fixtures/make_gguf_tokenizers.py"
)
assert _spec is not None and _spec.loader is not None
maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(maker)


def our_entries(folder: Path, arch: str) -> list[dict[str, Any]]:
    """add_vocab's keys, described as the referee's are (key, types, sha256 of the bytes, …)."""
    writer = gguf.GGUFWriter(None, arch)
    before = set(writer.kv_data[0])  # general.architecture
    add_vocab(writer, folder, arch, load_hparams(folder))
    out = []
    for key, v in writer.kv_data[0].items():
        if key in before:
            continue
        raw = writer._pack_val(key, gguf.GGUFValueType.STRING, add_vtype=False)
        raw += writer._pack_val(v.value, v.type, add_vtype=True, sub_type=v.sub_type)
        types = [v.type]
        if v.type == gguf.GGUFValueType.ARRAY:
            types.append(v.sub_type or gguf.GGUFValueType.get_type(v.value[0]))
        value = v.value
        if v.type == gguf.GGUFValueType.ARRAY and len(value) <= 8:
            value = [x.decode() if isinstance(x, bytes) else x for x in value]
        out.append(maker.entry(key, raw, types, value))
    return out


def _assert_same(ours: list[dict[str, Any]], ref: list[dict[str, Any]]) -> None:
    assert [e["key"] for e in ours] == [e["key"] for e in ref]
    for a, b in zip(ours, ref, strict=True):
        assert a == b, a["key"]


@pytest.mark.parametrize("case", sorted(EXPECTED["cases"]))
def test_vocab_matches_converter(case: str, tmp_path: Path) -> None:
    expected = EXPECTED["cases"][case]
    folder = maker.make_case(case, tmp_path / case, FIXTURES, weights=False)
    _assert_same(our_entries(folder, expected["arch"]), expected["keys"])


def test_every_case_recorded() -> None:
    assert set(EXPECTED["cases"]) == {*maker.CASES, *maker.VARIANTS}


def _vendored_converter() -> Path:
    sys.path.insert(0, str(ROOT))
    from bench.llamacpp import paths

    base = paths().source / "conversion" / "base.py"
    if not base.is_file():
        pytest.skip("llama.cpp's source is not unpacked (python bench/llamacpp.py)")
    return base


def test_pre_tokenizer_table_is_the_converters() -> None:
    source = _vendored_converter().read_text(encoding="utf-8")
    body = source.split("Marker: Start get_vocab_base_pre")[1].split("Marker: End get_vocab_base_pre")[0]
    pairs = re.findall(r'if chkhsh == "([0-9a-f]{64})":\s*\n(?:\s*#[^\n]*\n)*\s*res = "([^"]+)"', body)
    assert len(pairs) == body.count("chkhsh ==")  # every `if` of the table
    table: dict[str, str] = {}
    for chkhsh, name in pairs:  # plain `if`s: the last match wins
        table[chkhsh] = name
    assert table == PRE_TOKENIZERS
    chktxt = re.search(r"^\s*chktxt = (.*)$", body, re.M)
    assert chktxt is not None and ast.literal_eval(chktxt.group(1)) == CHKTXT


def test_unknown_pre_tokenizer_is_refused(tmp_path: Path) -> None:
    folder = maker.make_case("qwen2", tmp_path / "qwen2", FIXTURES, weights=False)
    doc = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    doc["pre_tokenizer"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": False,
        "use_regex": True,
    }
    (folder / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UnsupportedError, match=r"chkhsh [0-9a-f]{64}"):
        add_vocab(gguf.GGUFWriter(None, "qwen2"), folder, "qwen2", load_hparams(folder))


def test_unsupported_arch_is_refused(tmp_path: Path) -> None:
    folder = maker.make_case("llama-spm", tmp_path / "m", FIXTURES, weights=False)
    with pytest.raises(UnsupportedError, match="bert"):
        add_vocab(gguf.GGUFWriter(None, "bert"), folder, "bert", load_hparams(folder))


def test_spm_pieces_match_sentencepiece() -> None:
    spm = pytest.importorskip("sentencepiece")
    path = FIXTURES / "llama-spm" / "tokenizer.model"
    proc = spm.SentencePieceProcessor(model_file=str(path))
    pieces = read_pieces(path)
    assert len(pieces) == proc.vocab_size()
    for i, (piece, score, kind) in enumerate(pieces):
        assert piece == proc.IdToPiece(i) and score == proc.GetScore(i)
        want = (
            2
            if proc.IsUnknown(i)
            else 3
            if proc.IsControl(i)
            else 5
            if proc.IsUnused(i)
            else 6
            if proc.IsByte(i)
            else 1
        )
        assert kind == want, i


@pytest.mark.llamacpp
def test_live_converter(tmp_path: Path) -> None:
    """Every case, and the untrimmed Qwen2 / Llama 3 vocabularies, against the converter now."""
    sys.path.insert(0, str(ROOT))
    from bench.llamacpp import paths

    p = paths()
    if not p.converter_ready():
        pytest.skip("llama.cpp's converter venv is not ready (python bench/llamacpp.py)")
    full = tmp_path / "full"
    cmd = [str(p.convert_python), str(ROOT / "tests/fixtures/make_gguf_tokenizers.py"), "--full", str(full)]
    subprocess.run(cmd, env=p.converter_env(), check=True, capture_output=True)
    for name in ("llama-spm", "llama-hf"):
        shutil.copytree(FIXTURES / name, full / name)
    everything = (*maker.CASES, *maker.VARIANTS)
    for source, cases in ((FIXTURES, everything), (full, ("llama-bpe", "qwen2", "qwen3moe", "qwen2-legacy"))):
        for case in cases:
            folder = maker.make_case(case, tmp_path / f"{source.name}-{case}", source)
            ref = maker.referee_vocab(folder, tmp_path / f"{source.name}-{case}.gguf")
            _assert_same(our_entries(folder, maker.case_arch(case)), ref)
