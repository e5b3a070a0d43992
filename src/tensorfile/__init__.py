"""tensorfile: tell what a model file really is, look inside it without loading it.

Public API::

    import tensorfile
    info = tensorfile.identify("model.safetensors")
    info.format, info.can_execute_code, info.evidence
"""

from __future__ import annotations

from .errors import FormatError, InputError, TensorfileError, UnsupportedError, UsageError
from .identify import identify
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
