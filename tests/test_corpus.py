"""Real files other people made (../shared/corpus/formats), checked against their manifest.

The corpus lives beside the project, not in it; where it is absent these tests skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tensorfile

from .conftest import CORPUS

MANIFEST_PATH = CORPUS / "formats" / "manifest.json"
ENTRIES: list[dict[str, Any]] = json.loads(MANIFEST_PATH.read_text()) if MANIFEST_PATH.exists() else []

pytestmark = pytest.mark.skipif(not ENTRIES, reason="../shared/corpus is not present on this machine")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_corpus_file_identified(entry: dict[str, Any]) -> None:
    result = tensorfile.identify(CORPUS / "formats" / entry["path"])
    assert result.format == entry["format"], (result.reason, result.evidence)
    assert result.confidence >= 0.9
    truth = entry.get("ground_truth", {})
    if entry["format"] == "tensorrt":
        assert result.details["layout"] == truth["outer_magic"]
        if truth["outer_magic"] == "ftrt":
            assert result.details["inner_ptrt_offset"] == truth["inner_ptrt_offset"]
            assert result.details["has_NGNE_section"] == truth["has_NGNE_section"]
    if entry["format"] == "coreml-mlmodel":
        assert result.details["specification_version"] == truth["spec_version"]
        assert result.details["model_type"] == truth["model_type"]
        assert result.details["is_updatable"] == truth["is_updatable"]
    if entry["format"] == "pmml":
        assert result.details["pmml_version"] == truth["pmml_version"]
        assert result.details["namespace"] == truth["namespace"]
        assert result.details["model_elements"] == truth["model_elements"]
    if entry["format"] == "pytorch-legacy":
        assert result.details["storage_locations"] == truth["storage_locations"]
        assert result.details["tensor_records"] == truth["tensor_count"]
    if entry["format"] == "keras-h5":
        assert result.details["keras_version"] == truth["hdf5_root_attrs"]["keras_version"]
        assert result.details["backend"] == truth["hdf5_root_attrs"]["backend"]
    if entry["format"] == "caffe":
        assert result.details["prototxt"] == Path(truth["companion"]).name


def test_corpus_walk_has_no_errors() -> None:
    from tensorfile.identification import expand

    outcomes = list(expand([str(CORPUS / "formats")], recursive=True))
    errors = [o for _, o in outcomes if isinstance(o, tensorfile.TensorfileError)]
    assert not errors
    formats = {o.format for _, o in outcomes if isinstance(o, tensorfile.Identification)}
    assert {
        "caffe",
        "coreml-mlmodel",
        "coreml-mlpackage",
        "keras-h5",
        "pmml",
        "pytorch-legacy",
        "tensorrt",
    } <= formats
