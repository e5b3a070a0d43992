"""What a scan reports: findings with a severity, per-file results, and the whole report.

Every checker in this package returns `Finding`s; the front ends (text, JSON, SARIF) only read
these records, so a rule's wording lives with the rule that raises it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

CONVERT_ADVICE = "convert it to safetensors with `tensorfile convert` and share that instead"


def rank(severity: str) -> int:
    """Position of a severity on the info..critical scale (higher is worse)."""
    return _RANK[severity]


@dataclass
class Finding:
    """One thing a loader would do (or could be tricked into doing) that the user should know.

    `rule` is a stable id (e.g. "pickle-dangerous-global"), `message` one sentence a
    non-expert understands, `evidence` the exact thing seen (a global's name, an op, a member),
    `location` where it is (member path inside an archive, "byte 123" in a pickle, a key),
    `advice` the safe alternative.
    """

    rule: str
    severity: str
    message: str
    evidence: str = ""
    location: str = ""
    advice: str = ""

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"unknown severity {self.severity!r}")

    def within(self, prefix: str) -> Finding:
        """The same finding, located inside `prefix` (an archive member, an embedded pickle)."""
        where = f"{prefix} › {self.location}" if self.location else prefix
        return Finding(self.rule, self.severity, self.message, self.evidence, where, self.advice)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FileResult:
    """The scan of one file (or one model folder's file).

    status: "scanned" when everything that could run code was looked at; "incomplete" when
    some part could not be (an encrypted member, a format we cannot open) — never reported as
    clean; "error" when the file could not be scanned at all (`error` says why).
    """

    path: str
    format: str | None = None
    status: str = "scanned"
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    scanned: list[str] = field(default_factory=list)  # what was looked at: members, streams

    @property
    def worst(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=rank)

    def verdict(self, fail_on: str) -> str:
        """ "unsafe", "error", "incomplete" or "clean" at the given fail level."""
        if self.status == "error":
            return "error"
        if any(rank(f.severity) >= rank(fail_on) for f in self.findings):
            return "unsafe"
        return "incomplete" if self.status == "incomplete" else "clean"

    def to_dict(self, fail_on: str = "high") -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "status": self.status,
            "verdict": self.verdict(fail_on),
            "worst_severity": self.worst,
            "error": self.error,
            "scanned": self.scanned,
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: -rank(f.severity))],
        }


@dataclass
class ScanReport:
    """All files of one `tensorfile scan` run, with the fail level that decides the exit code."""

    results: list[FileResult]
    fail_on: str = "high"

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for result in self.results:
            for finding in result.findings:
                counts[finding.severity] += 1
        return counts

    def verdicts(self) -> dict[str, int]:
        tally = {"clean": 0, "unsafe": 0, "incomplete": 0, "error": 0}
        for result in self.results:
            tally[result.verdict(self.fail_on)] += 1
        return tally

    @property
    def exit_code(self) -> int:
        """2 if any file could not be scanned (fail closed), else 1 if any is unsafe, else 0."""
        verdicts = self.verdicts()
        if verdicts["error"]:
            return 2
        return 1 if verdicts["unsafe"] else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {
                "files": len(self.results),
                "fail_on": self.fail_on,
                "exit_code": self.exit_code,
                "verdicts": self.verdicts(),
                "findings_by_severity": self.counts(),
            },
            "files": [r.to_dict(self.fail_on) for r in self.results],
        }
