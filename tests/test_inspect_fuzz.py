"""inspect on truncated and bit-flipped files: a TensorfileError or a report, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import LIBRARY_FILES, inspect_mutations

FIXTURES = [*LIBRARY_FILES, "pytorch_training_checkpoint", "joblib_gzip"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_mutations_give_errors_not_crashes(made: Callable[[str], Path], tmp_path: Path, fixture: str) -> None:
    src = made(fixture)
    outcomes = inspect_mutations(src.read_bytes(), fixture, 60, tmp_path, src.suffix)
    assert sum(outcomes.values()) == 60
