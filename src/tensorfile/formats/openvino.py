"""OpenVINO IR: an XML <net> graph (.xml) whose weights live in a .bin of the same stem."""

from __future__ import annotations

from typing import Any

from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe
from ..xmlhead import read_root


def detect_file(probe: FileProbe) -> Detection | None:
    root = read_root(probe.head)
    if root is None or root.tag != "net" or root.namespace:
        return None
    if "layers" not in root.children and "version" not in root.attributes:
        return None
    version = root.attributes.get("version")
    details: dict[str, Any] = {"ir_version": version, "name": root.attributes.get("name")}
    evidence = [f"XML root <net> with IR version {version}"]
    if "layers" in root.children:
        evidence.append("<layers> and <edges> graph")
    warnings: list[str] = []
    weights = probe.sibling(probe.path.with_suffix(".bin").name)
    if weights:
        details["weights_file"] = weights.name
        evidence.append(f"weights file {weights.name}")
    else:
        warnings.append(f"weights file {probe.path.with_suffix('.bin').name} not found beside the XML")
    confidence = CERTAIN if version and "layers" in root.children else STRONG
    return Detection("openvino-ir", confidence, evidence, details, warnings)


def detect_weights_bin(probe: FileProbe) -> Detection | None:
    """A .bin whose same-stem .xml is an OpenVINO graph: the weights half of an IR pair."""
    if probe.ext != ".bin":
        return None
    xml = probe.sibling(probe.path.with_suffix(".xml").name)
    if xml is None:
        return None
    try:
        with xml.open("rb") as fh:
            root = read_root(fh.read(4096))
    except OSError:
        return None
    if root is None or root.tag != "net":
        return None
    return Detection(
        "openvino-ir",
        STRONG,
        [f"raw weights beside OpenVINO graph {xml.name}"],
        {"graph_file": xml.name, "part": "weights"},
    )
