"""The detection bar on other people's samples: ../shared/corpus/security (picklescan, modelscan
and modelaudit test files, labelled). Skips only when the corpus is absent."""

from __future__ import annotations

import json

import pytest

from tensorfile.scan import scan_file

from .conftest import CORPUS

SECURITY = CORPUS / "security"
pytestmark = pytest.mark.skipif(not (SECURITY / "manifest.json").is_file(), reason="corpus absent")


def test_detection_and_false_positive_bars() -> None:
    manifest = json.loads((SECURITY / "manifest.json").read_text())
    missed, false_pos, errors = [], [], []
    counts = {"malicious": 0, "benign": 0}
    for entry in manifest:
        result = scan_file(SECURITY / entry["path"])
        counts[entry["label"]] += 1
        if result.status == "error":
            errors.append((entry["path"], result.error))
        flagged = result.verdict("high") == "unsafe"
        if entry["label"] == "malicious" and not flagged:
            missed.append(entry["path"])
        if entry["label"] == "benign" and flagged:
            false_pos.append((entry["path"], [f.rule for f in result.findings]))
    assert not errors
    assert len(missed) <= counts["malicious"] // 100, missed  # >= 99 % flagged
    assert len(false_pos) <= counts["benign"] // 100, false_pos  # <= 1 % flagged
