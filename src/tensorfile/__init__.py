"""tensorfile: tell what a model file really is, look inside it without loading it.

Public API::

    import tensorfile
    info = tensorfile.identify("model.safetensors")
    info.format, info.can_execute_code, info.evidence
    model = tensorfile.inspect("model.safetensors")
    model.parameter_count, model.tensor_types, model.tensors[0].shape
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FormatError, InputError, TensorfileError, UnsupportedError, UsageError

if TYPE_CHECKING:
    from .identification import identify
    from .inspection import inspect
    from .model import Identification, ModelInfo, TensorInfo

__version__ = "0.1.0"

__all__ = [
    "FormatError",
    "Identification",
    "InputError",
    "ModelInfo",
    "TensorInfo",
    "TensorfileError",
    "UnsupportedError",
    "UsageError",
    "__version__",
    "identify",
    "inspect",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so that `tensorfile --help` does not pay for every format module.
    if name == "identify":
        from .identification import identify

        return identify
    if name == "inspect":
        from .inspection import inspect

        return inspect
    if name in ("Identification", "ModelInfo", "TensorInfo"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'tensorfile' has no attribute {name!r}")
