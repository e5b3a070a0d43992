"""inspect on truncated and bit-flipped files: a TensorfileError or a report, never a crash."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tensorfile.errors import TensorfileError
from tensorfile.inspection import inspect

FIXTURES = [
    "pytorch_state_dict",
    "pytorch_training_checkpoint",
    "pytorch_legacy",
    "torchscript",
    "safetensors",
    "gguf",
    "npz",
    "npy",
    "joblib",
    "joblib_gzip",
    "pickle",
]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_mutations_give_errors_not_crashes(made: Callable[[str], Path], tmp_path: Path, fixture: str) -> None:
    src = made(fixture)
    data = src.read_bytes()
    rng = random.Random(fixture)
    outcomes = {"report": 0, "error": 0}
    for i in range(60):
        mutated = bytearray(data)
        if i % 3 == 0:
            mutated = mutated[: rng.randrange(1, len(mutated))]
        else:
            for _ in range(rng.randrange(1, 6)):
                pos = rng.randrange(len(mutated))
                mutated[pos] = rng.getrandbits(8)
        path = tmp_path / f"m{i}{src.suffix}"
        path.write_bytes(bytes(mutated))
        try:
            inspect(path)
            outcomes["report"] += 1
        except TensorfileError:
            outcomes["error"] += 1
    assert sum(outcomes.values()) == 60
