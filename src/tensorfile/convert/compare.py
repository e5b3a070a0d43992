"""`diff`: compare two models tensor by tensor, streaming both through memory maps.

Names are matched after each side is opened as `convert` opens it (the model part of a training
checkpoint, safetensors aliases resolved to the tensor they name). Values are compared in float64
(complex128 for complex) chunk by chunk, so memory stays at a few chunks whatever the model size.
A pair is within tolerance when |a - b| <= atol + rtol * |b| everywhere, as numpy.isclose: NaN
matches only NaN at the same place, an infinity only the same infinity. Integers are compared
exactly (not through float64, which rounds past 2**53).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UsageError
from ..source import resolve_input
from .run import _open_source
from .tensors import CHUNK_BYTES, FileMaps, SourceTensor, TensorSet, tensor_chunks

# 16 MB chunks of the wider side; both sides step by the same element count.
_ELEMENTS = CHUNK_BYTES // 8


@dataclass
class TensorDiff:
    """One name's comparison. status: identical | close | different | shape | missing | extra."""

    name: str
    status: str
    dtype_a: str | None = None
    dtype_b: str | None = None
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    mismatched: int = 0  # elements outside the tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "dtype_a": self.dtype_a,
            "dtype_b": self.dtype_b,
            "shape_a": list(self.shape_a) if self.shape_a is not None else None,
            "shape_b": list(self.shape_b) if self.shape_b is not None else None,
            "exact": self.status == "identical",
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "mismatched": self.mismatched,
        }


@dataclass
class DiffReport:
    a: str
    b: str
    atol: float
    rtol: float
    tensors: list[TensorDiff] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tensors if t.status == status)

    @property
    def equal(self) -> bool:
        """Same names and shapes, every value within tolerance (dtypes may differ)."""
        return all(t.status in ("identical", "close") for t in self.tensors)

    @property
    def exit_code(self) -> int:
        return 0 if self.equal else 1

    def summary(self) -> dict[str, int]:
        statuses = ("identical", "close", "different", "shape", "missing", "extra")
        counts = {s: self.count(s) for s in statuses}
        counts["dtype_changed"] = sum(
            1 for t in self.tensors if t.dtype_a and t.dtype_b and t.dtype_a != t.dtype_b
        )
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "atol": self.atol,
            "rtol": self.rtol,
            "equal": self.equal,
            "summary": self.summary(),
            "tensors": [t.to_dict() for t in self.tensors],
        }


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    trust: bool = False,
) -> DiffReport:
    """Compare every tensor of `a` with the tensor of the same name in `b`."""
    for option, value in (("--atol", atol), ("--rtol", rtol)):
        if not 0 <= value < float("inf"):  # also refuses nan, which would make every check fail
            raise UsageError(f"{option} must be a finite number >= 0, not {value}")
    left, right = _open_source(resolve_input(a), trust), _open_source(resolve_input(b), trust)
    names_a, names_b = _by_name(left), _by_name(right)
    report = DiffReport(str(a), str(b), atol, rtol)
    with FileMaps() as maps:
        for name, ta in names_a.items():
            tb = names_b.get(name)
            if tb is None:
                report.tensors.append(TensorDiff(name, "missing", ta.dtype, None, ta.shape))
                continue
            report.tensors.append(_compare(name, ta, tb, maps, atol, rtol))
        for name, tb in names_b.items():
            if name not in names_a:
                report.tensors.append(TensorDiff(name, "extra", None, tb.dtype, None, tb.shape))
    return report


def _by_name(tensors: TensorSet) -> dict[str, SourceTensor]:
    return {t.name: t for t in tensors.tensors}


def _compare(
    name: str, ta: SourceTensor, tb: SourceTensor, maps: FileMaps, atol: float, rtol: float
) -> TensorDiff:
    result = TensorDiff(name, "identical", ta.dtype, tb.dtype, ta.shape, tb.shape)
    if ta.shape != tb.shape:
        result.status = "shape"
        return result
    exact = ta.dtype == tb.dtype
    max_abs = max_rel = 0.0
    for ca, cb in zip(_chunks(ta, maps), _chunks(tb, maps), strict=True):
        if exact and ca.tobytes() != cb.tobytes():
            exact = False
        if exact:
            continue
        wa, wb = _wide(ca), _wide(cb)
        with np.errstate(invalid="ignore", over="ignore"):
            integers = ca.dtype.kind in "iub" and cb.dtype.kind in "iub"
            # Integers exactly (float64 rounds past 2**53); equal infinities and NaN-with-NaN are the same.
            same = (ca == cb) if integers else (wa == wb) | (np.isnan(wa) & np.isnan(wb))
            delta = np.abs(wa - wb)
            delta[same] = 0.0
            delta[np.isnan(delta)] = np.inf  # NaN on one side only, or inf against -inf
            if integers:
                np.maximum(delta, np.where(same, 0.0, 1.0), out=delta)  # differing ints differ by >= 1
            scale = np.abs(wb)
            bad = ~same
            if atol or rtol:
                finite = np.isfinite(wa) & np.isfinite(wb)
                bad &= ~(finite & (delta <= atol + rtol * scale))
            rel = np.divide(delta, scale, out=np.where(delta > 0, np.inf, 0.0), where=scale > 0)
        result.mismatched += int(np.count_nonzero(bad))
        if delta.size:
            max_abs = max(max_abs, float(delta.max()))
            max_rel = max(max_rel, float(rel.max()))
    result.max_abs, result.max_rel = max_abs, max_rel
    if not exact:
        result.status = "different" if result.mismatched else "close"
    return result


def _chunks(t: SourceTensor, maps: FileMaps) -> Iterator[np.ndarray]:
    """1-D chunks of exactly _ELEMENTS elements (the last one shorter), so both sides line up."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in tensor_chunks(t, maps, _ELEMENTS * t.itemsize):
        pending.append(chunk)
        held += chunk.size
        while held >= _ELEMENTS:
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield joined[:_ELEMENTS]
            rest = joined[_ELEMENTS:]
            pending, held = ([rest] if rest.size else []), rest.size
    if held:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def _wide(chunk: np.ndarray) -> np.ndarray:
    return chunk.astype(np.complex128 if chunk.dtype.kind == "c" else np.float64)
