"""PyTorch: torch.save zip archives, TorchScript archives, and the legacy (pre-1.6) pickle stack.

The modules, lowest first: `kind` (what a torch pickle holds), `detect` (zip layout, legacy magic
number, legacy tar), `tensors` (TensorInfo from tensor records and storages), `optimizer` and
`checkpoint` (the training state of an inspected checkpoint), `zip_inspect`, `legacy_tar` and
`legacy_inspect` (one per container). This one holds the entry points (`detect_file`, `INSPECTS`)
and re-exports every name other modules import.
"""

from __future__ import annotations

from ...model import Detection
from ...probe import FileProbe
from .detect import (
    LEGACY_MAGIC_NUMBER,
    MAX_PICKLE_READ,
    archive_layout,
    detect_legacy,
    detect_legacy_tar,
    detect_zip,
    legacy_magic_at,
)
from .kind import checkpoint_kind, is_tensor_rebuild, plain_values
from .legacy_inspect import inspect_legacy, layout_legacy
from .legacy_tar import layout_legacy_tar
from .tensors import Layout
from .zip_inspect import inspect_zip, layout_zip

__all__ = [
    "INSPECTS",
    "LEGACY_MAGIC_NUMBER",
    "MAX_PICKLE_READ",
    "Layout",
    "archive_layout",
    "checkpoint_kind",
    "detect_file",
    "detect_legacy",
    "detect_legacy_tar",
    "detect_zip",
    "inspect_legacy",
    "inspect_zip",
    "is_tensor_rebuild",
    "layout_legacy",
    "layout_legacy_tar",
    "layout_zip",
    "legacy_magic_at",
    "plain_values",
]


# Defined here, not in `detect`: identification names a detector that crashes on hostile bytes by
# its module ("corrupt pytorch data (...)").
def detect_file(probe: FileProbe) -> Detection | None:
    return detect_zip(probe) or detect_legacy(probe) or detect_legacy_tar(probe)


INSPECTS = {"pytorch-zip": inspect_zip, "torchscript": inspect_zip, "pytorch-legacy": inspect_legacy}
