"""Core ML: `.mlmodel` protobuf specifications and `.mlpackage` folders.

detect finds both; inspector reads a spec through spec (the Model message, pipelines, GLMs), which
hands neural networks to neural_network, ML programs to mil and tree ensembles to tree_ensemble;
walk holds the state they share.
"""

from __future__ import annotations

from .detect import MODEL_TYPES, detect_dir, detect_file
from .inspector import INSPECTS, inspect_mlmodel, inspect_mlpackage
from .mil import BLOB_DTYPES, MIL_DTYPES
from .spec import ARRAY_DTYPES

__all__ = [
    "ARRAY_DTYPES",
    "BLOB_DTYPES",
    "INSPECTS",
    "MIL_DTYPES",
    "MODEL_TYPES",
    "detect_dir",
    "detect_file",
    "inspect_mlmodel",
    "inspect_mlpackage",
]
