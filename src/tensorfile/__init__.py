"""tensorfile: tell what a model file really is, look inside it without loading it.

Public API::

    import tensorfile
    info = tensorfile.identify("model.safetensors")
    info.format, info.can_execute_code, info.evidence
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FormatError, InputError, TensorfileError, UnsupportedError, UsageError

if TYPE_CHECKING:
    from .identification import identify
    from .model import Identification

__version__ = "0.1.0"

__all__ = [
    "FormatError",
    "Identification",
    "InputError",
    "TensorfileError",
    "UnsupportedError",
    "UsageError",
    "__version__",
    "identify",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so that `tensorfile --help` does not pay for every format module.
    if name == "identify":
        from .identification import identify

        return identify
    if name == "Identification":
        from .model import Identification

        return Identification
    raise AttributeError(f"module 'tensorfile' has no attribute {name!r}")
