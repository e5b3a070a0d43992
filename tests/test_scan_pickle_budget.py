"""A pickle longer than the reader's opcode budget is reported as read only so far: incomplete.

The budget (picklevm.MAX_OPCODES, 50 million opcodes) is lowered here so the programs stay small;
the behaviour does not depend on its size.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from tensorfile import picklevm
from tensorfile.errors import FormatError
from tensorfile.picklevm import read_pickle, read_pickle_lenient
from tensorfile.scan import scan, scan_file
from tensorfile.scan.pickles import BUDGET_RULE, scan_pickle

from .pickle_asm import Asm

LONG = pickle.dumps(list(range(5000)), protocol=2)  # about 10,000 opcodes


def _hostile_then_long() -> bytes:
    """os.system called first, then a long run of plain data: the call is within any budget."""
    head = Asm(protocol=2).call("os", "system", "true").pop().build_bytes()
    return head + LONG[2:]  # the long program follows, without its PROTO


def test_reader_stops_at_the_budget_and_says_how_far() -> None:
    result = read_pickle_lenient(io.BytesIO(LONG), max_opcodes=1000)
    assert result.budget_exhausted
    assert result.opcode_count == 1000
    assert 0 < result.end < len(LONG)
    assert "opcode budget" in (result.error or "") and "1,000 opcodes" in (result.error or "")
    assert f"byte {result.end:,}" in (result.error or "")
    whole = read_pickle_lenient(io.BytesIO(LONG))
    assert not whole.budget_exhausted and whole.error is None and whole.end == len(LONG)
    # a program of exactly the budget's length is read whole
    exact = read_pickle_lenient(io.BytesIO(LONG), max_opcodes=whole.opcode_count)
    assert not exact.budget_exhausted and exact.error is None


def test_truncation_is_not_a_budget_stop() -> None:
    cut = read_pickle_lenient(io.BytesIO(LONG[: len(LONG) // 2]))
    assert cut.error and not cut.budget_exhausted


def test_strict_reader_raises_with_the_budget_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picklevm, "MAX_OPCODES", 500)
    with pytest.raises(FormatError, match="opcode budget"):
        read_pickle(LONG)


def test_scan_reports_the_budget_as_incomplete() -> None:
    found = scan_pickle(io.BytesIO(LONG), max_opcodes=1000)
    (budget,) = [f for f in found.findings if f.rule == BUDGET_RULE]
    assert budget.severity == "medium"
    assert "1,000 opcodes" in budget.evidence
    assert found.incomplete == [budget.location]
    assert not any(f.rule == "pickle-malformed" for f in found.findings)
    assert scan_pickle(io.BytesIO(LONG)).incomplete == []


def test_what_comes_before_the_budget_is_still_judged() -> None:
    found = scan_pickle(io.BytesIO(_hostile_then_long()), max_opcodes=1000)
    assert BUDGET_RULE in {f.rule for f in found.findings}
    assert any(f.severity in ("high", "critical") and "os.system" in f.evidence for f in found.findings)


def test_file_verdict_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picklevm, "MAX_OPCODES", 1000)
    plain = tmp_path / "long.pkl"
    plain.write_bytes(LONG)
    # the same program as a torch-style zip record: a member is judged the same way
    archive = tmp_path / "model.pt"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model/data.pkl", LONG)
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(_hostile_then_long())
    for path in (plain, archive):
        result = scan_file(path)
        assert result.status == "incomplete", result
        assert result.verdict("high") == "incomplete"
        assert any(f.rule == BUDGET_RULE for f in result.findings)
    report = scan([plain, archive], jobs=1)
    assert report.verdicts()["incomplete"] == 2 and report.exit_code == 0
    assert scan([plain], fail_on="medium", jobs=1).exit_code == 1  # the finding is medium
    result = scan_file(hostile)  # incomplete does not hide what was found before the budget
    assert result.status == "incomplete" and result.verdict("high") == "unsafe"
    monkeypatch.setattr(picklevm, "MAX_OPCODES", 50_000_000)
    assert scan_file(plain).status == "scanned" and scan_file(plain).verdict("high") == "clean"
