"""What an estimate is made of: named parts with their formulas, and the peak phase they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
MIB = 1024**2


@dataclass
class Part:
    name: str
    bytes: float
    formula: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": round(self.bytes), "formula": self.formula}


@dataclass
class Peak:
    """The largest phase of one run on one device: what is alive then, part by part."""

    parts: list[Part]
    phase: str  # the moment of the peak
    other_phases: dict[str, float] = field(default_factory=dict)
    host_bytes: float = 0.0  # CPU memory the run keeps (offloaded optimizer, llama.cpp embeddings)
    notes: list[str] = field(default_factory=list)
