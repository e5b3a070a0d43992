"""SARIF 2.1.0 output, for code-scanning UIs (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .findings import ScanReport

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub sorts alerts by this 0-10 score.
_SCORE = {"critical": "9.8", "high": "8.0", "medium": "5.0", "low": "2.0", "info": "0.0"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_sarif(report: ScanReport) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for file in report.results:
        uri = file.path.replace("\\", "/")
        if file.status == "error":
            rules.setdefault("scan-error", _rule("scan-error", "The file could not be scanned", "high"))
            results.append(_result("scan-error", "high", file.error or "could not be scanned", uri, ""))
        for finding in file.findings:
            if finding.rule not in rules:
                rules[finding.rule] = _rule(finding.rule, finding.message, finding.severity)
            text = finding.message + (f" Evidence: {finding.evidence}." if finding.evidence else "")
            if finding.advice:
                text += f" Safer: {finding.advice}."
            results.append(_result(finding.rule, finding.severity, text, uri, finding.location))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tensorfile",
                        "version": __version__,
                        "informationUri": "https://github.com/tensorfile/tensorfile",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


def _rule(rule_id: str, text: str, severity: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "shortDescription": {"text": rule_id.replace("-", " ")},
        "fullDescription": {"text": text},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {"security-severity": _SCORE[severity], "tags": ["security", "model-file"]},
    }


def _result(rule_id: str, severity: str, text: str, uri: str, location: str) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    entry: dict[str, Any] = {
        "ruleId": rule_id,
        "level": _LEVEL[severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": physical}],
        "properties": {"severity": severity},
    }
    if location:
        entry["locations"][0]["logicalLocations"] = [{"name": location, "kind": "member"}]
    return entry
