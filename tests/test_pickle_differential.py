"""The differential referee: tensorfile's pickle reader against CPython's own unpickler, and its
clean/unsafe verdict on torch files against torch.load(weights_only=True).

Globals. For every pickle in the test fixtures, the example models and ../shared/corpus (bytes
only; skipped when absent), and for generated and mutated programs (hypothesis; a longer run of
the same families is bench/pickle_differential.py), the globals the reader says find_class is
asked for must be exactly, in order, the ones CPython's C unpickler asks for, resolve to the same
names, and the load must fail where CPython's fails. Both ways C reads are checked: as one run
(pickle.loads, a file with peek) and through its frame buffer (a stream without peek, as
torch.load hands it a zip record).

Why stand-ins and not record-and-raise: raising in find_class stops the unpickler at the first
global, so a pickle with three imports would show one. Re-running with that global replaced would
take one run per global and still could not follow what a real object does next. Instead the
child's find_class records the name and lets the real C find_class run with imports diverted to an
inert stand-in module (so the Python 2 mapping and the dotted-path walk are CPython's own), and
every object it can reach is an inert stand-in: a class whose every attribute, dunders included,
is another stand-in, whose instances take any call, item or state and do nothing. The load then
runs to its end, or to the error CPython itself raises, and every global on the way is seen. An
audit hook refuses every event but pickle.find_class, so nothing real is imported, opened, run
or started; the child's address space is capped.

Torch. For torch files written here with torch and the corpus's torch files (bytes, in the child,
weights_only=True only: torch's restricted unpickler refuses globals outside its allowlist), the
verdict must agree with torch's accept/reject except in the cases tabled in docs/SCAN.md, where
tensorfile is deliberately stricter (it reads what torch.load skips) or deliberately more
permissive (weights_only refuses whatever is not on its list; tensorfile judges what would run).
"""

from __future__ import annotations

import base64
import io
import json
import random
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorfile.scan import scan_file

from .conftest import CORPUS, ROOT
from .pickle_asm import Asm
from .pickle_programs import FAMILIES
from .pickle_referee import Referee, Tally, TorchReferee, compare, files_pickles, torch_files

# Fixture makers whose files hold pickles (PyTorch zips and legacy stacks, TorchScript, joblib,
# numpy object arrays, npz, plain pickles, HF folders with pytorch_model.bin).
PICKLE_FIXTURES = [
    "pytorch_state_dict",
    "pytorch_hf_bin",
    "pytorch_training_checkpoint",
    "pytorch_legacy",
    "pytorch_full_module",
    "torchscript",
    "npy_object",
    "npz",
    "pickle",
    "pickle_protocol0",
    "joblib",
    "bnb_dir",
]


@pytest.fixture(scope="module")
def referee() -> Iterator[Referee]:
    with Referee() as child:
        yield child


def _agree(referee: Referee, pickles: list[tuple[str, bytes]]) -> Tally:
    tally = Tally()
    for label, data in pickles:
        compare(label, data, referee.ask(data), tally)
    assert not tally.disagreements, "\n".join(tally.disagreements[:10])
    return tally


def test_fixture_and_example_pickles_agree(referee: Referee, made: Callable[[str], Path]) -> None:
    pickles: list[tuple[str, bytes]] = []
    for name in PICKLE_FIXTURES:
        pickles += [(f"{name}/{label}", data) for label, data in files_pickles(made(name).parent)]
    pickles += list(files_pickles(ROOT / "tests" / "fixtures"))
    pickles += list(files_pickles(ROOT / "examples"))
    tally = _agree(referee, pickles)
    assert tally.cases >= len(PICKLE_FIXTURES) and tally.globals >= 40, tally.line()


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus absent")
def test_corpus_pickles_agree(referee: Referee) -> None:
    tally = _agree(referee, list(files_pickles(CORPUS)))
    assert tally.cases >= 120, tally.line()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 2**32 - 1))
def test_generated_and_mutated_pickles_agree(referee: Referee, family: str, seed: int) -> None:
    data = FAMILIES[family](random.Random(seed))
    tally = Tally()
    assert compare(f"{family} seed {seed}", data, referee.ask(data), tally) is None


# --- torch.load(weights_only=True) ---------------------------------------------------------------

EVIL = Asm(2).call("os", "system", "echo pwned").stop().build_bytes()

# Where tensorfile's verdict differs from weights_only's accept/reject, on purpose (docs/SCAN.md).
STRICTER = {  # torch accepts, tensorfile flags: it reads what torch.load skips
    "zip: a second pickle member": "a pickle in the archive that torch.load does not read",
    "zip: a second stream after data.pkl": "a pickle after data.pkl's STOP (a second pickle.load runs it)",
    "state dict: a pickle in a bytes value": "a pickle stored as data (the loading code may unpickle it)",
    "state dict: a pickle in a base64 string": "a pickle stored as data (the loading code may unpickle it)",
}
MORE_PERMISSIVE = {  # torch refuses, tensorfile says clean: what would run is plain data or known
    "protocol 4: state dict": "weights_only implements protocol 2 opcodes only",
    "protocol 4: quantized": "weights_only implements protocol 2 opcodes only",
    "full module": "torch.nn classes, rebuilt by their own __setstate__",
    "numpy array": "numpy's own array reconstruction",
    "defaultdict": "a standard container outside torch's list",
    "datetime and Decimal": "standard data types outside torch's list",
    "legacy: uint16": "torch 2.13 cannot read its own legacy file with uint16",
}


def _rezip(src: Path, dst: Path, edit: Callable[[str, bytes, zipfile.ZipFile], bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info), zout))
    return dst


def _torch_cases(torch: Any, folder: Path) -> dict[str, Path]:
    """Torch files written by torch.save, a few edited, each with the verdict it should get."""
    import collections
    import datetime
    import decimal

    import numpy as np

    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())
    optimizer = torch.optim.Adam(model.parameters())
    model(x).sum().backward()
    optimizer.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = {
            "t": torch.quantize_per_tensor(x, 0.01, 3, torch.quint8),
            "c": torch.quantize_per_channel(
                x, torch.rand(3) + 0.1, torch.zeros(3, dtype=torch.long), 0, torch.qint8
            ),
        }
    objects: dict[str, tuple[Any, dict[str, Any]]] = {
        "state dict": (model.state_dict(), {}),
        "legacy: state dict": (model.state_dict(), {"_use_new_zipfile_serialization": False}),
        "dtypes": (
            {
                str(d): torch.ones(2, dtype=d)
                for d in (
                    torch.float16,
                    torch.bfloat16,
                    torch.int8,
                    torch.bool,
                    torch.complex64,
                    torch.float8_e4m3fn,
                    torch.uint16,
                )
            },
            {},
        ),
        "quantized": (quantized, {}),
        "legacy: quantized": (quantized, {"_use_new_zipfile_serialization": False}),
        "sparse": ({"coo": x.to_sparse(), "csr": x.to_sparse_csr()}, {}),
        "parameters": (
            {"p": torch.nn.Parameter(x), "frozen": torch.nn.Parameter(x, requires_grad=False)},
            {},
        ),
        "training checkpoint": (
            {
                "epoch": 3,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "size": torch.Size([2]),
                "dtype": torch.float16,
                "device": torch.device("cpu"),
            },
            {},
        ),
        "views of one storage": ({"a": x, "b": x[1:], "t": x.t()}, {}),
        "meta tensors": ({"m": torch.empty(2, 3, device="meta")}, {}),
        "plain extras": (
            {
                "set": {1},
                "bytes": b"xy",
                "bytearray": bytearray(b"z"),
                "complex": 1j,
                "od": collections.OrderedDict(a=1),
                "counter": collections.Counter("ab"),
            },
            {},
        ),
        "protocol 4: state dict": (model.state_dict(), {"pickle_protocol": 4}),
        "protocol 4: quantized": (quantized, {"pickle_protocol": 4}),
        "full module": (model, {}),
        "numpy array": ({"n": np.arange(3)}, {}),
        "defaultdict": ({"d": collections.defaultdict(list)}, {}),
        "datetime and Decimal": ({"when": datetime.datetime(2024, 1, 1), "lr": decimal.Decimal("0.1")}, {}),
        "legacy: uint16": (
            {"u": torch.ones(2, dtype=torch.uint16)},
            {"_use_new_zipfile_serialization": False},
        ),
        "state dict: a pickle in a bytes value": ({"w": x, "blob": EVIL}, {}),
        "state dict: a pickle in a base64 string": ({"w": x, "blob": base64.b64encode(EVIL).decode()}, {}),
    }
    paths = {}
    for i, (name, (obj, kwargs)) in enumerate(objects.items()):
        paths[name] = folder / f"case{i}.pt"
        torch.save(obj, paths[name], **kwargs)
    base = paths["state dict"]
    paths["zip: hostile data.pkl"] = _rezip(
        base, folder / "evil.pt", lambda n, d, z: EVIL if n.endswith("data.pkl") else d
    )

    def extra_member(name: str, data: bytes, out: zipfile.ZipFile) -> bytes:
        if name.endswith("data.pkl"):
            out.writestr(name.replace("data.pkl", "extra.txt"), EVIL)
        return data

    paths["zip: a second pickle member"] = _rezip(base, folder / "extra.pt", extra_member)
    paths["zip: a second stream after data.pkl"] = _rezip(
        base, folder / "second.pt", lambda n, d, z: d + EVIL if n.endswith("data.pkl") else d
    )
    return paths


def _verdicts(torch_referee: TorchReferee, label: str, path: Path, data: bytes) -> tuple[bool, str]:
    answer = torch_referee.ask(data)
    assert "accepted" in answer, (label, answer)  # never blocked, crashed or timed out
    return answer["accepted"], scan_file(path).verdict("high")


def test_torch_weights_only_agrees_except_where_tabled(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    table: dict[str, tuple[bool, str]] = {}
    with TorchReferee() as torch_referee:
        for label, path in _torch_cases(torch, tmp_path).items():
            table[label] = _verdicts(torch_referee, label, path, path.read_bytes())
    for label, (accepted, verdict) in table.items():
        if label in STRICTER:
            assert (accepted, verdict) == (True, "unsafe"), label
        elif label in MORE_PERMISSIVE:
            assert (accepted, verdict) == (False, "clean"), label
        else:
            assert (accepted, verdict) in ((True, "clean"), (False, "unsafe")), (label, accepted, verdict)
    assert sum(accepted for accepted, _ in table.values()) >= 12


SECURITY = CORPUS / "security"


def _corpus_torch_files() -> Iterator[tuple[str, str, bytes]]:
    """(path, label, bytes) of what a user would hand torch.load: the security samples filed as
    PyTorch, zips holding a data.pkl, and the legacy PyTorch files of corpus/formats."""
    for entry in json.loads((SECURITY / "manifest.json").read_text()):
        data = (SECURITY / entry["path"]).read_bytes()
        data_pkl = any(n.split("/")[-1] == "data.pkl" for n in _names(data))
        if entry["format"] == "pytorch" or (entry["format"] == "zip" and data_pkl):
            yield f"security/{entry['path']}", entry["label"], data
    for label, data in torch_files(CORPUS / "formats"):
        yield f"formats/{label}", "benign", data


def _names(data: bytes) -> list[str]:
    try:
        return zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return []


@pytest.mark.skipif(not (SECURITY / "manifest.json").is_file(), reason="corpus absent")
def test_corpus_torch_files_against_weights_only() -> None:
    pytest.importorskip("torch")
    rows = []
    with TorchReferee() as torch_referee:
        for label, truth, data in _corpus_torch_files():
            answer = torch_referee.ask(data)
            assert "accepted" in answer, (label, answer)
            verdict = scan_file(CORPUS / label).verdict("high")
            rows.append((label, truth, answer["accepted"], answer["error"], verdict))
    assert len(rows) >= 12
    for label, truth, accepted, error, verdict in rows:
        if truth == "malicious":
            assert (accepted, verdict) == (False, "unsafe"), label  # both refuse every hostile one
        elif accepted:
            assert verdict == "clean", label  # what torch accepts is clean
        else:  # not a file torch reads: a PNG, 7 bytes, a zip layout its reader refuses
            assert verdict == "clean", (label, error)
