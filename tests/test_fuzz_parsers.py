"""Fuzz every parser (issue 16), short and seeded: identify, inspect and scan over damaged files of
every format, each case in a worker process under a watchdog, with the harness of
bench/fuzz_parsers.py (its long run is recorded in docs/BENCHMARKS.md).

A case fails on a traceback (or scan's "internal error"), on an error identify swallowed into a
report, on a hang (5 s) or on a peak RSS over 64 MB + its size (untraced here, so the run stays
short; the long run also traces Python allocations); HDF5 files also go through the HDF5 reader
on its own. test_inspect_fuzz.py
and test_bad_input.py damage the library files in-process for inspect and identify; this file
adds scan, the rendering the CLI does, the committed heavy and HF fixtures, archives, the CLI
itself, the hand-built hostile files (deep nesting, huge declared lengths, loops, bombs), and the
time and memory bounds. Below the campaigns: regression tests for what fuzzing found.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import pickle
import random
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from bench import fuzz_mutations
from bench.fuzz_mutations import DEEP, st_header
from bench.fuzz_parsers import (
    CLI_VARIANTS,
    Seed,
    Tally,
    archive_seeds,
    baseline_cases,
    fixture_seeds,
    hdf5_seeds,
    random_case,
    random_cases,
    run_campaign,
    run_cli_case,
    seed_from_made,
    sweep_cases,
    synthetic,
)

import tensorfile
from tensorfile.errors import FormatError, TensorfileError
from tensorfile.scan.scanner import scan_file

from .conftest import ROOT
from .pickle_asm import Asm

MASTER_SEED = 16  # the number: the same cases every run
RANDOM_CASES = 40  # per group, on top of each seed as it is and cut at CUTS of its boundaries
CUTS = 4

GROUPS: dict[str, list[str]] = {  # group -> maker names (tests/conftest.py) or fixture families
    "torch-pickle": [
        "pytorch_state_dict",
        "pytorch_legacy",
        "torchscript",
        "pytorch_training_checkpoint",
        "pickle",
        "joblib",
        "joblib_gzip",
        "npy_object",
    ],
    "tensor-files": ["safetensors", "safetensors_sharded_dir", "gguf", "npy", "npz", "onnx", "onnx_external"],
    "heavy": ["fixtures/heavy"],
    "hf": ["llama_sharded", "bnb_nf4_dq_bin", "diffusers"],  # folders: a case scans every file
    "archives": ["archives", "examples"],
    "hdf5": ["hdf5"],  # the pure-Python HDF5 reader, also on its own (fixtures and corpus .h5)
}


def _failures(tally: Tally) -> str:
    lines = [f"{len(tally.failures)} failing cases of {tally.total}:"]
    for f in tally.failures[:20]:
        lines.append(
            f"  {f['case']} [{f['family']}/{f['kind']}] {f['entry']}: {f['outcome']} {f['detail'][:300]}"
        )
    lines.append("replay one with: .venv/bin/python bench/fuzz_parsers.py --replay CASE_ID --seed 16")
    return "\n".join(lines)


def _group_seeds(group: str, made: Callable[[str], Path], folder: Path) -> list[Seed]:
    seeds: list[Seed] = []
    for name in GROUPS[group]:
        if name == "fixtures/heavy":
            seeds += [s for s in fixture_seeds() if "fixtures/heavy" in str(next(iter(s.files.values())))]
        elif name == "hdf5":
            seeds += hdf5_seeds()
        elif name == "examples":
            seeds += [s for s in fixture_seeds() if s.name.startswith("examples/")]
        elif name == "archives":
            bases = ["pytorch_state_dict", "pickle", "npy", "safetensors", "joblib"]
            seeds += archive_seeds([seed_from_made(n, made(n)) for n in bases], folder)
        elif group == "hf":
            seeds += [s for s in fixture_seeds() if s.name.startswith(name)]
        else:
            seeds.append(seed_from_made(name, made(name)))
    return seeds


@pytest.mark.parametrize("group", GROUPS)
def test_fuzz_group(group: str, made: Callable[[str], Path], tmp_path: Path) -> None:
    seeds = _group_seeds(group, made, tmp_path / "seeds")
    assert seeds
    cases = itertools.chain(
        baseline_cases(seeds),
        sweep_cases(seeds, 1 if group == "hf" else CUTS),
        itertools.islice(
            random_cases(seeds, MASTER_SEED), RANDOM_CASES // 4 if group == "hf" else RANDOM_CASES
        ),
    )
    tally = run_campaign(cases, jobs=1, workdir=tmp_path, trace=False)
    assert tally.outcomes["identify"]["ok"] >= len(seeds)
    assert not tally.failures, _failures(tally)


def test_fuzz_hand_built_hostile_files(tmp_path: Path) -> None:
    """Deep nesting, 1 TB declared in 100 bytes, loops, 3,000 entries, 64 MB bombs: all clean."""
    # the NONE/POP pickles are a known open cost of the pickle reader (bench.fuzz_parsers.KNOWN_CASES)
    cases = [c for c in synthetic(bomb_bytes=64 << 20, many=3000) if not c.id.startswith("s:nop-pickle")]
    assert len(cases) > 70
    tally = run_campaign(cases, jobs=1, workdir=tmp_path, trace=False)
    assert not tally.failures, _failures(tally)


def test_fuzz_through_the_cli(made: Callable[[str], Path], tmp_path: Path) -> None:
    """A damaged file of each kind through `python -m tensorfile`: exit 0/1/2, one-line errors."""
    seeds = [seed_from_made(n, made(n)) for n in ("pytorch_state_dict", "safetensors", "gguf", "onnx")]
    seeds += [s for s in fixture_seeds() if s.name in ("keras3_dense.keras", "dense.tflite")]
    for i, variant in enumerate(CLI_VARIANTS):
        case = random_case(seeds, MASTER_SEED, i)
        path = case.write(tmp_path / f"c{i}")
        outcome = run_cli_case(path, variant, timeout=60)
        assert outcome["outcome"] in ("ok", "error"), (case.id, variant, outcome)


# --- regression tests for what fuzzing found ---------------------------------------------------


def test_deep_json_is_bad_json_not_a_recursion_error(tmp_path: Path) -> None:
    # json.loads raises RecursionError past ~1,000 levels; identify swallowed it as "corrupt
    # safetensors data", inspect and a folder's config.json raised it.
    deep = tmp_path / "deep.safetensors"
    deep.write_bytes(st_header(b'{"a":' * DEEP + b"1" + b"}" * DEEP))
    result = tensorfile.identify(deep)
    assert result.format == "safetensors" and not result.alternatives
    with pytest.raises(FormatError, match="nested too deeply"):
        tensorfile.inspect(deep)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text("[" * DEEP + "]" * DEEP)
    (repo / "model.safetensors").write_bytes(
        st_header(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}') + bytes(4)
    )
    assert tensorfile.identify(repo).format == "safetensors"
    assert tensorfile.inspect(repo).architecture == {}


def test_json_just_under_the_parsers_limit_is_refused_too(tmp_path: Path) -> None:
    # 500 levels parse, and would overflow the recursive walks over Keras configs
    from tensorfile.probe import load_json

    with pytest.raises(ValueError, match="deeper than 200"):
        load_json("[" * 500 + "]" * 500)
    assert load_json('{"a": [[1]]}') == {"a": [[1]]}
    h5py = pytest.importorskip("h5py")
    weights = io.BytesIO()
    h5py.File(weights, "w").close()
    keras = tmp_path / "m.keras"
    with zipfile.ZipFile(keras, "w") as zf:
        zf.writestr("config.json", '{"config":{"layers":[' * 160 + "]}}" * 160)
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.h5", weights.getvalue())
    info = tensorfile.inspect(keras)
    assert any("config.json is not valid JSON" in w for w in info.warnings)


def test_xml_in_an_encoding_python_lacks(tmp_path: Path) -> None:
    # expat raised LookupError for <?xml encoding="UTF-2809"?>: identify swallowed it, inspect too
    path = tmp_path / "m.pmml"
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-2809"?><PMML version="4.4"><Header/></PMML>')
    result = tensorfile.identify(path)
    assert "corrupt" not in (result.reason or "")
    with pytest.raises(TensorfileError):
        tensorfile.inspect(path)


def test_cut_short_value_in_a_compressed_pickle(tmp_path: Path) -> None:
    # The pickle reader seeks back after a value that runs past the end; a gzip stream cannot:
    # OSError("cannot seek backwards in a compressed stream") escaped inspect.
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps([b"x" * (1 << 21)], protocol=4)[:64], mtime=0))
    assert tensorfile.identify(path).format == "pickle"
    with pytest.raises(FormatError, match="truncated or corrupt"):
        tensorfile.inspect(path)


def _scan_peak(path: Path) -> int:
    scan_file(path)  # imports and caches first
    tracemalloc.start()
    try:
        scan_file(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_scanning_a_small_json_does_not_allocate_its_read_limit(tmp_path: Path) -> None:
    # stream.read(64 MB + 1) on a BufferedReader allocates 64 MB before reading 50 bytes
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "chat_template": "{{ messages }}"}))
    assert _scan_peak(config) < 8 << 20
    keras = tmp_path / "m.keras"  # the same read of a zip member
    with zipfile.ZipFile(keras, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        zf.writestr("metadata.json", "{}")
    assert _scan_peak(keras) < 8 << 20


def test_7z_members_do_not_keep_their_decoders(tmp_path: Path) -> None:
    # each py7zr pass left its 16 MB LZMA dictionary in reference cycles: 5 members, 100 MB
    py7zr = pytest.importorskip("py7zr")
    path = tmp_path / "bundle.7z"
    with py7zr.SevenZipFile(path, "w") as sz:
        for i in range(5):
            sz.writestr(pickle.dumps({"w": list(range(100))}, protocol=4), f"m{i}.pkl")
    assert scan_file(path).status == "scanned"
    assert _scan_peak(path) < 40 << 20


def test_undecodable_names_keep_json_output_valid(tmp_path: Path) -> None:
    # a zip name with an invalid UTF-8 byte (flag bit 11 set) is kept as a lone surrogate; with a
    # strict stdout `scan --json` died in UnicodeEncodeError, with the default one it wrote
    # invalid UTF-8
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", Asm(2).call("os", "system", "id").stop().build_bytes())
        zf.writestr("archive/version", b"3\n")
    raw = bytearray(out.getvalue().replace(b"archive/data.pkl", b"archive/\x9cata.pkl"))
    for sig, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # every name flagged UTF-8
        pos = raw.find(sig)
        while pos >= 0:
            raw[pos + flags_at + 1] |= 0x08  # bit 11 of the little-endian flags
            pos = raw.find(sig, pos + 4)
    path = tmp_path / "names.zip"
    path.write_bytes(bytes(raw))
    for encoding in ("utf-8:strict", None):
        env = {**os.environ}
        if encoding:
            env["PYTHONIOENCODING"] = encoding
        proc = subprocess.run(
            [sys.executable, "-m", "tensorfile", "scan", "--json", str(path)],
            capture_output=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
        assert b"Traceback" not in proc.stderr, proc.stderr
        doc = json.loads(proc.stdout.decode("utf-8"))
        names = json.dumps(doc)
        assert "archive/\\udc9cata.pkl" in names


def test_json_output_is_streamed(capsys: pytest.CaptureFixture[str]) -> None:
    # json.dumps(indent=2) of a 30,000-tensor report held 42 MB of small strings for 6 MB of text
    from tensorfile.cli.common import _print_json

    doc = {"tensors": [{"name": f"layers.{i}.w", "shape": [i, 2], "dtype": "F32"} for i in range(30_000)]}
    expected = json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    capsys.readouterr()
    tracemalloc.start()
    try:
        _print_json(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert capsys.readouterr().out == expected
    assert peak < len(expected) * 3  # the captured text itself, not 7x it


def test_mutations_are_deterministic_and_change_the_bytes() -> None:
    data = pickle.dumps({"a": [1, 2, 3], "b": "x" * 40}, protocol=4)
    lay = fuzz_mutations.layout(data)
    assert "pickle" in lay.kinds and lay.fields
    for kind in fuzz_mutations.KINDS:
        one = fuzz_mutations.mutate(data, lay, random.Random(kind), kind)
        assert one == fuzz_mutations.mutate(data, lay, random.Random(kind), kind)
        assert one != data, kind


def test_safetensors_header_checks_on_bad_json(tmp_path: Path) -> None:
    # scan's header check read exc.msg of any ValueError (a UnicodeDecodeError, an int of 5,000
    # digits: "internal error"), let json's RecursionError out ("could not be scanned"), and
    # counted duplicate names with keys.count per key (11 s for 30,000 tensors)
    tensor = b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    headers = {
        "undecodable": b'{"\xff":1}',
        "digits": b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}',
        "deep": b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    }
    for name, header in headers.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(st_header(header) + bytes(4))
        result = scan_file(path)
        assert result.status == "scanned", (name, result.error)
        assert any("not valid JSON" in f.message for f in result.findings), name
    dup = tmp_path / "dup.safetensors"
    dup.write_bytes(st_header(b"{" + tensor + b"," + tensor + b"}") + bytes(4))
    assert any("same tensor twice" in f.message for f in scan_file(dup).findings)
    # 30,000 tensors: the duplicate check counts with a Counter (keys.count per key took 22 s)
    many = b",".join(
        b'"t%d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}' % (i, 4 * i, 4 * i + 4)
        for i in range(30_000)
    )
    big = tmp_path / "many.safetensors"
    big.write_bytes(st_header(b"{" + many + b"}") + bytes(120_000))
    assert scan_file(big).findings == []


def test_keras_h5_config_that_is_an_array_is_a_format_error(tmp_path: Path) -> None:
    """A damaged Keras .h5 whose model_config is an array, not a string: scanned as an error naming
    the attribute (`if not text` on the array raised ValueError, 'internal error'); found by fuzzing."""
    import h5py
    import numpy as np

    from tensorfile.scan.scanner import scan_file

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = np.arange(4)
    result = scan_file(path)
    assert result.status == "error" and result.error == "model_config attribute is not a string"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = np.array([b'{"class_name": "Sequential"}'])
    assert scan_file(path).status == "scanned"
