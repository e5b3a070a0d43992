"""Check the estimator against measured peaks: rows in the schema of tests/data/MEMORY_VALIDATION.md.

Each row names a model's shapes, a setting and what was measured with which counter; `check_row`
turns it into a spec and a run, estimates, and returns the signed error. Used by the tests and by
bench/estimate_table.py, which writes docs/ESTIMATES.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .breakdown import GIB
from .memory import estimate
from .run import RunSpec, make_run
from .spec import ModelSpec, spec_from_shapes

UNIT_BYTES = {"GiB": GIB, "GB": 1e9, "MiB": 1024**2, "MB": 1e6}
# the setting keys a row may carry: RunSpec's fields (framework and notes are for people)
_RUN_KEYS = frozenset(RunSpec.__dataclass_fields__) - {"counter"}


@dataclass(frozen=True)
class Checked:
    row: dict[str, Any]
    spec: ModelSpec
    run: RunSpec
    measured_bytes: float
    estimated_bytes: float

    @property
    def error(self) -> float:
        """Signed relative error of the estimate: +0.10 means 10 % too high."""
        return self.estimated_bytes / self.measured_bytes - 1.0

    @property
    def kind(self) -> str:
        return (
            "inference"
            if self.run.task == "inference"
            else ("training" if self.run.method == "full" else "peft")
        )


def load_rows(*paths: str | Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(json.loads(Path(path).read_text(encoding="utf-8"))["rows"])
    return rows


def measured_bytes(row: dict[str, Any]) -> float:
    """The measured peak in bytes. `unit_basis` says whether the printed unit was binary (GiB: a
    script divided by 1024**3) or decimal; unknown is taken as binary, as torch-based scripts print.
    Unit "B" is a byte count as logged (no basis to pick)."""
    value, unit = float(row["measured"]["value"]), str(row["measured"]["unit"])
    if unit.upper() in ("B", "BYTES"):  # a raw byte count, as torch.cuda.max_memory_* return
        return value
    basis = row.get("unit_basis")
    small = unit.upper() in ("MB", "MIB", "M")
    if basis in ("MB", "GB"):  # decimal
        return value * (1e6 if small else 1e9)
    return value * (1024**2 if small else GIB)


def row_spec(row: dict[str, Any]) -> ModelSpec:
    arch = dict(row["arch"])
    return spec_from_shapes(row["model"], arch, params=int(arch.get("params") or 0), source="validation row")


def row_run(row: dict[str, Any]) -> RunSpec:
    setting = {k: v for k, v in row["setting"].items() if k in _RUN_KEYS and v is not None}
    counter = row.get("counter_assumed") or row.get("counter")
    setting["counter"] = counter if counter in ("allocated", "reserved", "nvidia-smi") else "allocated"
    return make_run(**setting)


def check_row(row: dict[str, Any]) -> Checked:
    spec, run = row_spec(row), row_run(row)
    est = estimate(spec, run).per_gpu_bytes
    if row.get("scope") == "total":
        est *= run.gpus
    return Checked(row, spec, run, measured_bytes(row), float(est))
