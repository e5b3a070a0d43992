"""ONNX: a protobuf ModelProto (no magic number), recognised by its field layout.

detect recognises a model file or a folder of a model and its external data; inspector reads the
ModelProto's fields and hands its graph and functions to walk, which reads fields through
field_scan's Message; external_data and onnx_dtypes hold what detection and the walk share.
"""

from __future__ import annotations

from .detect import detect_dir, detect_file
from .external_data import data_file, escapes, external_problem
from .field_scan import Message, scan_fields
from .inspector import INSPECTS, inspect_onnx
from .onnx_dtypes import ONNX_DTYPES, stored_bytes
from .walk import MAX_GRAPH_DEPTH

__all__ = [
    "INSPECTS",
    "MAX_GRAPH_DEPTH",
    "ONNX_DTYPES",
    "Message",
    "data_file",
    "detect_dir",
    "detect_file",
    "escapes",
    "external_problem",
    "inspect_onnx",
    "scan_fields",
    "stored_bytes",
]
