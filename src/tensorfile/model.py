"""The data every part of tensorfile shares: what a detector found and what `identify` reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

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


# --- inspect ------------------------------------------------------------------------------------

# Roles a stored tensor can play; parameter counts include all of them (the counting rule)
# while the report also shows each role separately.
ROLES = ("weight", "buffer", "optimizer", "constant", "quant-aux")


def add_warning(warnings: list[str], message: str, limit: int = 100) -> None:
    """Record a problem; a hostile file can lie about every tensor, so the list stays readable."""
    if len(warnings) < limit:
        warnings.append(message)
    elif len(warnings) == limit:
        warnings.append("more problems not listed")


@dataclass
class TensorInfo:
    """One stored tensor, described from headers only."""

    name: str
    dtype: str  # canonical name from the dtypes table: F32, BF16, Q4_K, …
    shape: tuple[int, ...]
    nbytes: int
    file: str | None = None  # which file holds the data (relative to the model path for folders)
    offset: int | None = None  # absolute byte offset of contiguous data in `file`
    role: str = "weight"
    # a quantized tensor's own parameters (torch qtensors: qscheme, scale, zero_point or axis)
    quantization: dict[str, Any] | None = None

    @property
    def numel(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "numel": self.numel,
            "nbytes": self.nbytes,
            "file": self.file,
            "offset": self.offset,
            "role": self.role,
            **({"quantization": self.quantization} if self.quantization is not None else {}),
        }


# --- training checkpoints ---------------------------------------------------------------------------
#
# One shape for the training state of every framework (PyTorch, Keras, Flax), so `--json` readers and
# the CLI line need no per-format code. TypedDicts rather than classes: the value is the JSON document
# itself, and `info.checkpoint["kind"]` works in Python as it reads in the JSON.


class TensorGroup(TypedDict):
    """How much one part of a checkpoint holds."""

    tensor_count: int
    parameter_count: int
    total_bytes: int


class OptimizerState(TypedDict):
    """The optimizer's share of a checkpoint."""

    # As the file records it: the compiled class (Keras config), or the optimizer's own name in Keras 3
    # weights ("adam"). None when the file does not say (torch state dicts, optax states).
    name: str | None
    tensor_count: int
    parameter_count: int
    total_bytes: int
    slots: list[str]  # per-parameter state kinds: exp_avg, exp_avg_sq, step / momentum, velocity / mu, nu
    hyperparameters: dict[str, Any]  # plain values the file keeps: lr, betas, weight_decay…
    in_tensor_table: bool  # whether its tensors are in ModelInfo.tensors (role "optimizer")
    tensors: list[dict[str, Any]]  # its tensors, only when they are not in the main table (Keras)


# "class" is a Python keyword, hence the functional form.
Checkpoint = TypedDict(
    "Checkpoint",
    {
        "kind": str,  # state-dict | training-checkpoint | lightning-checkpoint | pickled-module | …
        "framework": str,  # pytorch | keras | flax
        "model": TensorGroup,  # everything that is not optimizer state
        "optimizer": OptimizerState | None,
        "counters": dict[str, Any],  # plain numbers at the top: epoch, step, global_step, iterations…
        "class": str | None,  # the pickled object's class, for whole pickled objects
        "top_level_keys": list[str],
        "extra": dict[str, Any],  # format-specific: other plain values, Keras metric state…
    },
)

CHECKPOINT_KEYS = ("kind", "framework", "model", "optimizer", "counters", "class", "top_level_keys", "extra")


def tensor_group(tensors: Iterable[TensorInfo]) -> TensorGroup:
    count = params = size = 0
    for t in tensors:
        count += 1
        params += t.numel
        size += t.nbytes
    return {"tensor_count": count, "parameter_count": params, "total_bytes": size}


def optimizer_state(
    tensors: Iterable[TensorInfo],
    *,
    name: str | None = None,
    slots: Iterable[str] = (),
    hyperparameters: dict[str, Any] | None = None,
    in_tensor_table: bool = True,
) -> OptimizerState:
    """The optimizer part; its tensors are listed here only when the main table leaves them out."""
    tensors = list(tensors)
    return {
        "name": name,
        **tensor_group(tensors),
        "slots": list(dict.fromkeys(slots)),
        "hyperparameters": dict(hyperparameters or {}),
        "in_tensor_table": in_tensor_table,
        "tensors": [] if in_tensor_table else [t.to_dict() for t in tensors],
    }


def new_checkpoint(
    kind: str,
    framework: str,
    model: Iterable[TensorInfo],
    optimizer: OptimizerState | None = None,
    *,
    counters: dict[str, Any] | None = None,
    object_class: str | None = None,
    top_level_keys: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> Checkpoint:
    return {
        "kind": kind,
        "framework": framework,
        "model": tensor_group(model),
        "optimizer": optimizer,
        "counters": dict(counters or {}),
        "class": object_class,
        "top_level_keys": [str(k) for k in top_level_keys],
        "extra": dict(extra or {}),
    }


def is_plain_number(value: Any) -> bool:
    """An int or float counter value (bool is an int in Python, but never a counter)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class ModelInfo:
    """What `inspect` reports for one model file or folder."""

    path: str
    format: str
    files: list[dict[str, Any]] = field(default_factory=list)  # [{"path", "size_bytes"}]
    tensors: list[TensorInfo] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    architecture: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    # The shared training-state summary (see Checkpoint); SavedModel still fills a plain dict.
    checkpoint: Checkpoint | dict[str, Any] | None = None
    pickle: dict[str, Any] | None = None  # imports and calls a pickle would make
    components: dict[str, ModelInfo] = field(default_factory=dict)  # Diffusers parts
    warnings: list[str] = field(default_factory=list)

    @property
    def tensor_count(self) -> int:
        return len(self.tensors)

    @property
    def parameter_count(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def parameters_by_dtype(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tensors:
            counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def parameters_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tensors:
            counts[t.role] = counts.get(t.role, 0) + t.numel
        return counts

    @property
    def tensor_types(self) -> str:
        from .dtypes import tensor_types_line

        return tensor_types_line(self.parameters_by_dtype)

    def summary(self) -> dict[str, Any]:
        """The counts without the tensor list (for Diffusers components)."""
        return {
            "format": self.format,
            "tensor_count": self.tensor_count,
            "parameter_count": self.parameter_count,
            "parameters_by_dtype": self.parameters_by_dtype,
            "tensor_types": self.tensor_types,
            "total_bytes": self.total_bytes,
        }

    def to_dict(self, tensors: list[TensorInfo] | None = None) -> dict[str, Any]:
        shown = self.tensors if tensors is None else tensors
        return {
            "path": self.path,
            "format": self.format,
            "files": self.files,
            "size_bytes": sum(int(f.get("size_bytes", 0)) for f in self.files),
            "tensor_count": self.tensor_count,
            "parameter_count": self.parameter_count,
            "parameters_by_dtype": self.parameters_by_dtype,
            "parameters_by_role": self.parameters_by_role,
            "tensor_types": self.tensor_types,
            "total_bytes": self.total_bytes,
            "metadata": self.metadata,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "checkpoint": self.checkpoint,
            "pickle": self.pickle,
            "components": {k: v.summary() for k, v in self.components.items()},
            "warnings": self.warnings,
            "tensors": [t.to_dict() for t in shown],
        }


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list[tuple[int, int, str]]:
    """Numbers in names compared as numbers: layers.2 before layers.10, vars/2 before vars/10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name)]
