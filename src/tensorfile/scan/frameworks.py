"""Code-execution and trust checks for the formats that are not pickles.

Keras configs (Lambda layers carry marshalled bytecode; any `module`/`function` reference is
imported on load), TensorFlow graphs (ops that read, write or call Python), ONNX (external data
outside the model folder, custom-op domains), safetensors headers that lie, TorchScript code.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..source import open_source, read_exact
from .findings import CONVERT_ADVICE, Finding
from .rules import classify

_KERAS_HOME = ("keras", "tensorflow", "tf_keras", "keras_nlp", "keras_hub", "keras_cv", "tensorflow_hub")
_MAX_CONFIG_NODES = 1_000_000


def check_keras_config(config: Any, where: str = "model config") -> list[Finding]:
    """Lambda layers and references to code outside Keras in a Keras model/layer config."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for node, path in _walk_json(config):
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if class_name in ("Lambda", "__lambda__") and path not in seen:
            seen.add(path)
            inner = node.get("config") if isinstance(node.get("config"), dict) else {}
            function = inner.get("function", inner.get("code"))
            bytecode = isinstance(function, (list, dict)) or class_name == "__lambda__"
            findings.append(
                Finding(
                    "keras-lambda",
                    "critical" if bytecode else "high",
                    "A Lambda layer stores Python code that runs when the model is loaded "
                    "(keras.models.load_model with safe_mode=False, or any Keras 2).",
                    f"Lambda layer {inner.get('name', '?')}",
                    f"{where} {path}",
                    "rebuild the layer in code and load weights only; " + CONVERT_ADVICE,
                )
            )
        module = node.get("module")
        if isinstance(module, str) and isinstance(class_name, str) and module:
            name = node.get("config") if class_name == "function" else class_name
            if not isinstance(name, str):
                continue
            top = module.split(".")[0]
            verdict = classify(module, name, "called")
            if verdict.severity == "critical":
                findings.append(
                    Finding(
                        "keras-dangerous-reference",
                        "critical",
                        f"The config makes Keras import and use {module}.{name}, which {verdict.reason}.",
                        f"{module}.{name}",
                        f"{where} {path}",
                        "do not load this model",
                    )
                )
            elif top not in _KERAS_HOME:
                findings.append(
                    Finding(
                        "keras-foreign-module",
                        "high",
                        f"The config makes Keras import {module} and use {name} from it: code outside "
                        "Keras runs when the model is loaded.",
                        f"{module}.{name}",
                        f"{where} {path}",
                        "load only if you trust and have reviewed that module",
                    )
                )
    return findings


def _walk_json(value: Any, path: str = "") -> Iterator[tuple[Any, str]]:
    stack: list[tuple[Any, str]] = [(value, path)]
    count = 0
    while stack and count < _MAX_CONFIG_NODES:
        count += 1
        node, where = stack.pop()
        yield node, where
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node) if isinstance(v, (dict, list)))


def keras_h5_configs(path: Path) -> dict[str, Any]:
    """The JSON root attributes Keras deserializes on load (model_config, training_config) of an HDF5
    file, read by tensorfile.hdf5: no HDF5 C library, no child process, nothing imported."""
    from .. import hdf5

    configs: dict[str, Any] = {}
    with open_source(path) as source, hdf5.File(source, str(path)) as h5:
        for key in _KERAS_H5_CONFIGS:
            text = h5.attrs.get(key)
            if getattr(text, "size", None) == 1:  # a one-element array of a string (damaged or odd writer)
                text = text.reshape(-1)[0]
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            if text is None or (isinstance(text, str) and not text):
                continue
            if not isinstance(text, str):  # Keras writes a string: anything else cannot be its JSON
                raise FormatError(f"{key} attribute is not a string", path)
            try:
                configs[key] = json.loads(str(text))
            except ValueError:
                raise FormatError(f"{key} attribute is not valid JSON", path) from None
    return configs


_KERAS_H5_CONFIGS = ("model_config", "training_config")


# --- TensorFlow graphs ----------------------------------------------------------------------------

_TF_OPS: dict[str, tuple[str, str]] = {
    "PyFunc": ("critical", "calls a Python function when the graph runs"),
    "PyFuncStateless": ("critical", "calls a Python function when the graph runs"),
    "EagerPyFunc": ("critical", "calls a Python function when the graph runs"),
    "WriteFile": ("critical", "writes files when the graph runs"),
    "ReadFile": ("high", "reads files when the graph runs"),
    "MatchingFiles": ("high", "lists files when the graph runs"),
    "ImmutableConst": ("medium", "maps a file from disk when the graph runs"),
    "DeleteSessionTensor": ("low", "manipulates session state"),
}
# Ops a SavedModel's own saver uses to write/restore checkpoints: expected, not reported.
_SAVER_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "Restore", "ShardedFilename"})


def check_tf_graph(path: Path) -> list[Finding]:
    """Dangerous ops in a SavedModel (saved_model.pb) or a frozen GraphDef, nodes and functions."""
    from ..formats.savedmodel import graph_op_counts

    findings: list[Finding] = []
    for op, count in sorted(graph_op_counts(path).items()):
        if op in _SAVER_OPS or op not in _TF_OPS:
            continue
        severity, what = _TF_OPS[op]
        findings.append(
            Finding(
                "tf-dangerous-op",
                severity,
                f"The graph uses {op}, which {what}.",
                f"{op} ×{count}",
                path.name,
                "run it only in a sandbox, or re-export the model without these ops",
            )
        )
    return findings


# --- ONNX -------------------------------------------------------------------------------------------

_ONNX_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.ms.internal.nhwc",
        "org.pytorch.aten",
    }
)


def check_onnx(details: dict[str, Any], path: Path) -> list[Finding]:
    """External data that escapes the model folder; custom-op domains that need native code; nodes
    that carry Python source or name a Python module (scan/onnx_nodes.py)."""
    findings: list[Finding] = []
    from ..formats.onnx import data_file
    from .onnx_nodes import check_onnx_nodes

    for location in details.get("external_data", []) or []:
        if data_file(path.parent, location)[1] in ("outside", "link"):
            findings.append(
                Finding(
                    "onnx-external-path",
                    "high",
                    "A weight is read from a file outside the model's folder: loading the model reads "
                    "that file (a way to leak local files into model outputs).",
                    location,
                    path.name,
                    "keep external data next to the model; reject models that name other paths",
                )
            )
    nodes = check_onnx_nodes(path)
    findings += nodes.findings
    for domain in details.get("opset_import") or {}:
        if domain not in _ONNX_DOMAINS:
            ops = sorted(nodes.op_types.get(domain, ()))
            findings.append(
                Finding(
                    "onnx-custom-domain",
                    "medium",
                    _custom_domain_message(domain),
                    str(domain) + (f": {', '.join(ops[:8])}" + (" …" if len(ops) > 8 else "") if ops else ""),
                    path.name,
                    "load custom-op libraries only from sources you trust",
                )
            )
    return findings


def _custom_domain_message(domain: str) -> str:
    if domain == "ai.onnx.contrib":
        return (
            "The model uses operators of onnxruntime-extensions' domain 'ai.onnx.contrib': each is one "
            "of the extensions' native ops or a Python function that the loading program registers "
            "under that name (@onnx_op). The model names them but carries no code for them: it runs "
            "whatever the loading process registered, a lower risk than code inside the model."
        )
    return (
        f"The model uses operators from the custom domain '{domain}': running it needs a "
        "native custom-op library, which runs code of its own."
    )


# --- safetensors ---------------------------------------------------------------------------------

_MAX_HEADER = 100 * 1024 * 1024


def check_safetensors(path: Path) -> list[Finding]:
    """Headers that lie: oversize, duplicate names, offsets out of range, overlapping tensors."""
    from ..dtypes import lookup, nbytes

    findings: list[Finding] = []

    def lie(message: str, evidence: str, severity: str = "medium") -> None:
        findings.append(
            Finding(
                "safetensors-header",
                severity,
                message + " The safetensors library refuses such a file; other readers may misbehave.",
                evidence,
                path.name,
                "re-download the file from its original source",
            )
        )

    with open_source(path) as source:
        (length,) = struct.unpack("<Q", read_exact(source, 0, 8, "safetensors header length"))
        if length > _MAX_HEADER or 8 + length > source.size:
            lie(
                "The header claims more bytes than allowed or than the file holds.", f"header length {length}"
            )
            return findings
        raw = read_exact(source, 8, length, "safetensors header")
        data_size = source.size - 8 - length
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        counts = Counter(k for k, _ in items)  # keys.count per key was quadratic in the tensors
        duplicates.extend(k for k, n in counts.items() if n > 1)
        return dict(items)

    try:
        header = json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        # a JSONDecodeError has .msg; a UnicodeDecodeError, an int of 5,000 digits or nesting past
        # the recursion limit are bad JSON too
        deep = isinstance(exc, RecursionError)
        reason = "nested too deeply" if deep else getattr(exc, "msg", None) or exc
        lie(f"The header is not valid JSON ({reason}).", "header JSON")
        return findings
    if duplicates:
        lie(
            "The header names the same tensor twice; readers disagree on which one wins.",
            ", ".join(sorted(set(duplicates))[:5]),
        )
    if not isinstance(header, dict):
        lie("The header is not a JSON object.", type(header).__name__)
        return findings
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, dict):
            continue
        offsets = entry.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            lie("A tensor entry has no valid data_offsets.", name)
            continue
        begin, end = offsets
        if begin < 0 or end < begin or end > data_size:
            lie("A tensor's data lies outside the file.", f"{name}: [{begin}, {end}) of {data_size}")
            continue
        shape = entry.get("shape")
        try:
            expected = nbytes(lookup(str(entry.get("dtype"))), _product(shape))
        except (FormatError, ValueError, TypeError):
            expected = None
        if expected is not None and expected != end - begin:
            lie(
                "A tensor's byte range does not match its dtype and shape.",
                f"{name}: {end - begin} bytes, expected {expected}",
            )
        spans.append((begin, end, name))
    spans.sort()
    for (_b1, e1, n1), (b2, _e2, n2) in itertools.pairwise(spans):
        if b2 < e1:
            lie("Two tensors share the same bytes.", f"{n1} and {n2}")
            break
    return findings


def _product(shape: Any) -> int:
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError("bad shape")
    total = 1
    for n in shape:
        total *= n
    return total


# --- TorchScript code -----------------------------------------------------------------------------

_TORCHSCRIPT_RISKY = re.compile(
    rb"\b(?:torch\.ops\.load_library|load_library|__import__|exec|eval|os\.system|subprocess|"
    rb"torch\.classes\.load_library|ops\.aten\.save|open\()"
)


def check_torchscript_code(name: str, code: bytes) -> list[Finding]:
    """Names in TorchScript's serialized Python that reach beyond tensor math."""
    hits = sorted({m.group(0).decode("ascii", "replace") for m in _TORCHSCRIPT_RISKY.finditer(code)})
    if not hits:
        return []
    return [
        Finding(
            "torchscript-code",
            "medium",
            "The TorchScript program calls functions beyond tensor math; they run when the model "
            "is executed (not when it is loaded).",
            ", ".join(hits[:5]),
            name,
            "review the code/ folder of the archive before running the model",
        )
    ]
