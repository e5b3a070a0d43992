"""The data every part of tensorfile shares: what a detector found and what `identify` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Confidence levels used by detectors, so that "how sure" means the same in every module.
CERTAIN = 1.0  # magic bytes plus a structure check that only this format passes
STRONG = 0.9  # distinctive structure, but another format could in theory mimic it
LIKELY = 0.7  # several weaker signals agree
WEAK = 0.4  # one weak signal, usually backed by the extension


@dataclass
class Detection:
    """One detector's claim about one input."""

    format: str
    confidence: float
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Identification:
    """The answer `identify` gives for one path."""

    path: str
    kind: str  # "file" or "directory"
    format: str  # a format id from the catalogue, or "unknown"
    confidence: float
    family: str | None
    name: str | None
    frameworks: list[str]
    can_execute_code: bool | None
    execution_risk: str | None
    evidence: list[str]
    details: dict[str, Any]
    warnings: list[str]
    size_bytes: int
    reason: str | None = None  # why the format is unknown
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.format != "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "format": self.format,
            "name": self.name,
            "confidence": round(self.confidence, 2),
            "family": self.family,
            "frameworks": self.frameworks,
            "can_execute_code": self.can_execute_code,
            "execution_risk": self.execution_risk,
            "evidence": self.evidence,
            "details": self.details,
            "warnings": self.warnings,
            "size_bytes": self.size_bytes,
            "reason": self.reason,
            "alternatives": self.alternatives,
        }
