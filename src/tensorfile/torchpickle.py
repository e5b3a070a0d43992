"""Tensors inside a PyTorch pickle, found by walking the symbolic object tree.

`picklevm` turns data.pkl into plain containers plus `Call` records. Here we find every call to a
torch tensor-rebuild function, name it by its path in the tree (state-dict keys, optimizer state
indices, module attributes) and describe it from its storage record: dtype, shape, stride and
offset. No torch, no execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

from .picklevm import Call, Global, PersistentRef

# Legacy typed-storage class names -> canonical dtype names.
STORAGE_DTYPES = {
    "DoubleStorage": "F64",
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64",
    "ComplexDoubleStorage": "C128",
    "UInt16Storage": "U16",
    "UInt32Storage": "U32",
    "UInt64Storage": "U64",
    "Float8_e4m3fnStorage": "F8_E4M3",
    "Float8_e5m2Storage": "F8_E5M2",
    "Float8_e4m3fnuzStorage": "F8_E4M3FNUZ",
    "Float8_e5m2fnuzStorage": "F8_E5M2FNUZ",
    "QInt8Storage": "QINT8",
    "QUInt8Storage": "QUINT8",
    "QInt32Storage": "QINT32",
}
# torch.<dtype> globals (used by _rebuild_tensor_v3 and untyped storages).
TORCH_DTYPES = {
    "float64": "F64",
    "double": "F64",
    "float32": "F32",
    "float": "F32",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "long": "I64",
    "int32": "I32",
    "int": "I32",
    "int16": "I16",
    "short": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "complex128": "C128",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "qint8": "QINT8",
    "quint8": "QUINT8",
    "qint32": "QINT32",
}
ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "C64": 8,
    "C128": 16,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E4M3FNUZ": 1,
    "F8_E5M2FNUZ": 1,
    "QINT8": 1,
    "QUINT8": 1,
    "QINT32": 4,
}
QUANTIZED_DTYPES = ("QINT8", "QUINT8", "QINT32")
# torch.<qscheme> globals of _rebuild_qtensor's quantizer parameters.
PER_TENSOR_QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric")
PER_CHANNEL_QSCHEMES = ("per_channel_affine", "per_channel_affine_float_qparams", "per_channel_symmetric")

MAX_VISITS_PER_OBJECT = 64
MAX_DEPTH = 256
OPTIMIZER_KEYS = (
    "optimizer",
    "optimizer_state_dict",
    "optimizer_states",
    "optim",
    "opt_state",
    "optimizers",
)
_MODULE_SLOTS = {"_parameters": "weight", "_buffers": "buffer"}


@dataclass
class TensorRecord:
    """One tensor as its pickle describes it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_key: str
    storage_offset: int  # in elements
    storage_numel: int | None
    location: str | None
    role: str
    # torch quantized tensors: qscheme, and scale/zero_point (per tensor) or axis/channels (per channel)
    quantization: dict[str, Any] | None = None

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def contiguous(self) -> bool:
        return is_contiguous(self.shape, self.stride)


def is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Row-major with no gaps (size-1 dimensions may have any stride, as in torch)."""
    expected = 1
    for dim, step in zip(reversed(shape), reversed(stride), strict=False):
        if dim != 1 and step != expected:
            return False
        expected *= dim
    return True


def _qualname(value: Any) -> str | None:
    return value.qualname if isinstance(value, Global) else None


def _storage(ref: Any) -> tuple[str, str | None, int | None, str | None, int] | None:
    """(key, dtype, numel, location, view offset) from ('storage', type, key, location, numel[, view])."""
    if not isinstance(ref, PersistentRef) or not isinstance(ref.pid, tuple) or len(ref.pid) < 5:
        return None
    _tag, storage_type, key, location, numel = ref.pid[:5]
    # Legacy files may point into a root storage: view metadata (view_key, offset, size).
    view = ref.pid[5] if len(ref.pid) > 5 else None
    view_offset = view[1] if isinstance(view, tuple) and len(view) > 1 and isinstance(view[1], int) else 0
    dtype = None
    name = _qualname(storage_type)
    if name:
        dtype = STORAGE_DTYPES.get(name.rsplit(".", 1)[-1]) or TORCH_DTYPES.get(name.rsplit(".", 1)[-1])
    numel = numel if isinstance(numel, int) else None
    return str(key), dtype, numel, str(location) if location else None, view_offset


def storage_dtypes(refs: list[PersistentRef]) -> dict[str, str]:
    """Storage key -> dtype, from every persistent id of a pickle (also storages only nested tensors
    use, such as a per-channel qtensor's scales), as torch sizes them when it loads."""
    found: dict[str, str] = {}
    for ref in refs:
        storage = _storage(ref)
        if storage is not None and storage[1] is not None:
            found.setdefault(storage[0], storage[1])
    return found


def _as_ints(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, Call) and _qualname(value.func) == "torch.Size" and value.args:
        value = value.args[0]
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def tensor_from_call(call: Call, name: str, role: str) -> TensorRecord | None:
    """Describe a rebuild call, or None when it is not one we can read."""
    func = _qualname(call.func) or ""
    args = call.args
    if func in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state") and args:
        inner = args[0]
        return tensor_from_call(inner, name, role) if isinstance(inner, Call) else None
    if func == "torch._tensor._rebuild_from_type_v2" and len(args) >= 3:
        inner_args = args[2] if isinstance(args[2], tuple) else ()
        return tensor_from_call(Call(args[0], inner_args, "reduce"), name, role)
    if func == "torch._utils._rebuild_qtensor":
        # (storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks)
        if len(args) < 5:
            return None
        rebuild = Call(Global("torch._utils", "_rebuild_tensor_v2"), args[:4], "reduce")
        plain = tensor_from_call(rebuild, name, role)
        if plain is None or plain.dtype not in QUANTIZED_DTYPES:  # torch takes the dtype from the storage
            return None
        params = quantizer_params(args[4], plain.shape)
        if params is None:
            return None
        plain.quantization = params
        return plain
    if func in (
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_tensor",
    ):
        if len(args) < 4:
            return None
        storage = _storage(args[0])
        size, stride = _as_ints(args[2]), _as_ints(args[3])
        if storage is None or size is None or stride is None or not isinstance(args[1], int):
            return None
        key, dtype, numel, location, view_offset = storage
        if func.endswith("_v3") and len(args) > 6:
            dtype = TORCH_DTYPES.get((_qualname(args[6]) or "").rsplit(".", 1)[-1], dtype)
        if dtype is None:
            return None
        return TensorRecord(name, dtype, size, stride, key, args[1] + view_offset, numel, location, role)
    return None


def quantizer_params(params: Any, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """What `_rebuild_qtensor`'s quantizer parameters say, or None when torch would refuse them.

    (qscheme, scale, zero_point) per tensor; (qscheme, scales, zero_points, axis) per channel, where
    scales and zero points are tensors (read from their records: dtype and length, not the values)
    or plain lists, and torch checks the axis and both lengths against the shape.
    """
    if not isinstance(params, tuple) or not params:
        return None
    scheme = (_qualname(params[0]) or "").removeprefix("torch.")
    if scheme in PER_TENSOR_QSCHEMES and len(params) == 3:
        scale, zero_point = params[1], params[2]
        if not isinstance(scale, (int, float)) or not isinstance(zero_point, int) or isinstance(scale, bool):
            return None
        return {"qscheme": scheme, "scale": float(scale), "zero_point": zero_point}
    if scheme in PER_CHANNEL_QSCHEMES and len(params) == 4:
        axis = params[3]
        if not isinstance(axis, int) or isinstance(axis, bool) or not 0 <= axis < len(shape):
            return None
        out: dict[str, Any] = {"qscheme": scheme, "axis": axis, "channels": shape[axis]}
        for key, value in (("scales", params[1]), ("zero_points", params[2])):
            if isinstance(value, list):
                if len(value) != shape[axis]:
                    return None
                out[key] = value if len(value) <= 8 else f"{len(value)} values"
                continue
            record = tensor_from_call(value, key, "quant-aux") if isinstance(value, Call) else None
            if record is None or record.numel != shape[axis]:
                return None
            out[f"{key}_dtype"] = record.dtype
        if scheme == "per_channel_affine" and str(out.get("zero_points_dtype", "")).startswith(("F", "BF")):
            # torch.save writes per_channel_affine for both; float zero points load as float_qparams
            out["qscheme"] = "per_channel_affine_float_qparams"
        return out
    return None


def is_rebuild(value: Any) -> bool:
    name = _qualname(value.func) if isinstance(value, Call) else None
    return bool(name) and name.startswith(("torch._utils._rebuild", "torch._tensor._rebuild"))


def collect_tensors(root: Any, optimizer_role: bool = True) -> tuple[list[TensorRecord], list[str]]:
    """Every tensor reachable from `root`, named by its path; plus names of rebuilds we could not read."""
    found: list[TensorRecord] = []
    unreadable: list[str] = []
    # Shared objects are visited once per reference (tied weights appear under each name, as
    # torch.load shows them); a cap per object stops memo-built cycles from looping forever.
    visits: dict[int, int] = {}
    stack: list[tuple[Any, str, str]] = [(root, "", "weight")]
    while stack:
        value, path, role = stack.pop()
        if isinstance(value, (dict, list, tuple, Call)):
            count = visits.get(id(value), 0)
            if count >= MAX_VISITS_PER_OBJECT or path.count(".") > MAX_DEPTH:
                continue
            visits[id(value)] = count + 1
        if isinstance(value, Call):
            if is_rebuild(value):
                record = tensor_from_call(value, path, role)
                if record is None:
                    unreadable.append(f"{path or '<root>'} ({_qualname(value.func)})")
                else:
                    found.append(record)
                continue
            children: list[tuple[Any, str, str]] = []
            for key, child in value.items.items():
                children.append((child, _join(path, key), _role_for(key, role, optimizer_role)))
            for i, child in enumerate(value.list_items):
                children.append((child, _join(path, i), role))
            if isinstance(value.state, dict):  # an object's __dict__: module attributes
                for key, child in value.state.items():
                    if key in _MODULE_SLOTS or key == "_modules":
                        sub_role = _MODULE_SLOTS.get(key, role)
                        if isinstance(child, (dict, Call)):
                            items = child.items if isinstance(child, Call) else child
                            children.extend((v, _join(path, k), sub_role) for k, v in items.items())
                        continue
                    children.append((child, _join(path, key), role))
            elif value.state is not None:
                children.append((value.state, path, role))
            stack.extend(reversed(children))
        elif isinstance(value, dict):
            stack.extend(
                reversed([(v, _join(path, k), _role_for(k, role, optimizer_role)) for k, v in value.items()])
            )
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(v, _join(path, i), role) for i, v in enumerate(value)]))
    return found, unreadable


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _role_for(key: Any, inherited: str, optimizer_role: bool) -> str:
    if optimizer_role and isinstance(key, str) and key.lower() in OPTIMIZER_KEYS:
        return "optimizer"
    return inherited
