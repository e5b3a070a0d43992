"""PMML: an XML document whose root is <PMML> in a dmg.org namespace."""

from __future__ import annotations

from typing import Any

from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe
from ..xmlhead import read_root


def detect_file(probe: FileProbe) -> Detection | None:
    root = read_root(probe.head, max_children=16)
    if root is None or root.tag != "PMML":
        return None
    details: dict[str, Any] = {"pmml_version": root.attributes.get("version"), "namespace": root.namespace}
    evidence = [f"XML root <PMML> version {root.attributes.get('version')}"]
    if root.namespace:
        evidence.append(f"namespace {root.namespace}")
    models = [
        c for c in root.children if c.endswith("Model") or c in ("MiningModel", "Scorecard", "NeuralNetwork")
    ]
    if models:
        details["model_elements"] = models
    confidence = CERTAIN if root.namespace and "dmg.org" in root.namespace else STRONG
    return Detection("pmml", confidence, evidence, details)
