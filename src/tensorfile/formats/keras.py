"""Keras: HDF5 files (Keras 2 full models and weights, Keras 3 `.weights.h5`) and `.keras` zips."""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..dtypes import UnknownDType, lookup, nbytes
from ..errors import FormatError, TensorfileError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import MAX_ZIP_MEMBER_READ, FileProbe, stored_member_offset
from ..source import FileSource, SliceSource

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_USERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def hdf5_offset(head: bytes) -> int | None:
    """Where the HDF5 superblock starts (0 or a power-of-two user-block size), or None."""
    for offset in _USERBLOCK_OFFSETS:
        if head[offset : offset + 8] == HDF5_MAGIC:
            return offset
    return None


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def detect_hdf5(probe: FileProbe) -> Detection | None:
    offset = hdf5_offset(probe.head)
    if offset is None:
        return None
    try:
        import h5py  # lazy: h5py costs ~0.1 s to import
    except ImportError:  # pragma: no cover - h5py is a dependency
        return Detection("unknown", 0.0, ["HDF5 signature"], {"reason": "HDF5 file; h5py is not installed"})
    evidence = ["HDF5 signature" + (f" after a {offset}-byte user block" if offset else "")]
    try:
        facts = run_isolated(lambda: _detect_facts(h5py, probe.source), probe.path)
    except FormatError as exc:  # the HDF5 library looped or crashed on this file
        return Detection(
            "unknown", 0.0, evidence, {"reason": f"HDF5 file that cannot be read: {exc.message}"}
        )
    if "error" in facts:
        return Detection(
            "unknown", 0.0, evidence, {"reason": f"HDF5 file that cannot be opened: {facts['error']}"}
        )
    attrs, groups, layer_names, keras3 = (
        facts["attrs"],
        facts["groups"],
        facts["layer_names"],
        facts["keras3"],
    )
    details: dict[str, Any] = {"container": "hdf5"}
    for key in ("keras_version", "backend"):
        if key in attrs:
            details[key] = _attr_text(attrs[key])
    if "model_config" in attrs:
        details["variant"] = "full-model"
        details["has_optimizer_weights"] = "optimizer_weights" in groups
        evidence.append(
            "root attribute model_config" + (" and keras_version" if "keras_version" in attrs else "")
        )
        try:
            config = json.loads(_attr_text(attrs["model_config"]))
            details["model_class"] = config.get("class_name")
            details["lambda_layers"] = _count_lambda(config)
        except (ValueError, AttributeError):
            details["model_class"] = None
        if layer_names:
            details["layer_count"] = len(layer_names)
        return Detection("keras-h5", CERTAIN, evidence, details)
    if layer_names:
        details["variant"] = "weights-only"
        details["layer_count"] = len(layer_names)
        evidence.append(f"layer_names attribute listing {len(layer_names)} layers (Keras 2 save_weights)")
        return Detection("keras-h5", CERTAIN, evidence, details)
    if keras3:
        details["variant"] = "keras3-weights"
        evidence.append(keras3)
        return Detection("keras-h5", STRONG, evidence, details)
    kind = "MATLAB v7.3 MAT-file" if probe.head[:10] == b"MATLAB 7.3" else "generic HDF5 data"
    return Detection(
        "unknown",
        0.0,
        evidence,
        {"reason": f"HDF5 file without Keras markers ({kind}; groups: {', '.join(groups[:5])})"},
    )


def _detect_facts(h5py: Any, source: FileSource) -> dict[str, Any]:
    """What the detector needs from an HDF5 file, as plain JSON-able data (runs isolated)."""
    try:
        h5 = h5py.File(source.open_stream(), "r")
    except Exception as exc:  # h5py raises OSError/KeyError/ValueError subclasses for corrupt files
        return {"error": _reason(exc)}
    with h5:
        attrs = {
            k: _attr_text(h5.attrs[k]) for k in h5.attrs if k in ("keras_version", "backend", "model_config")
        }
        groups = list(h5.keys())
        root = h5
        if "model_weights" in groups and "layer_names" in h5["model_weights"].attrs:
            root = h5["model_weights"]
        layer_names = [_attr_text(n) for n in root.attrs.get("layer_names", [])]
        return {"attrs": attrs, "groups": groups, "layer_names": layer_names, "keras3": _keras3_layout(h5)}


def _reason(exc: BaseException) -> str:
    return str(exc).split("(")[0].strip() or type(exc).__name__


# The HDF5 C library can loop forever or crash on a corrupt file (a damaged global heap makes
# reading a string attribute spin), and nothing in Python can interrupt a C call. So every h5py
# read runs in a forked child with a deadline; the child sends back plain JSON, never objects.
HDF5_TIMEOUT = 30.0


def run_isolated(
    fn: Callable[[], dict[str, Any]], name: str | Path, timeout: float | None = None
) -> dict[str, Any]:
    """fn() in a forked child (where fork exists); FormatError if it hangs past `timeout` or dies.

    fn returns JSON-able data; exceptions inside it come back as {"error": reason}.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no isolation, same results
        return _guarded(fn)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow forks
        status = 0
        try:
            os.close(read_fd)
            view = memoryview(json.dumps(_guarded(fn), default=str).encode())
            while view:
                view = view[os.write(write_fd, view) :]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks: list[bytes] = []
    timeout = HDF5_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise FormatError(
                    f"the HDF5 library did not finish reading it within {timeout:g} s: corrupt structure",
                    name,
                )
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise FormatError("the HDF5 library crashed reading it: corrupt structure", name) from None


def _guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except TensorfileError as exc:
        return {"error": exc.message}
    except Exception as exc:  # h5py surfaces corrupt object headers as OSError/KeyError/RuntimeError…
        return {"error": f"HDF5 structure is corrupt: {_reason(exc)}"}


def _keras3_layout(h5: Any) -> str | None:
    """Keras 3 H5IOStore layout: layers/<name>/vars/<i> datasets (and optimizer/vars)."""
    layers = h5.get("layers")
    if layers is None or not hasattr(layers, "keys"):
        return None
    for name in list(layers.keys())[:32]:
        group = layers[name]
        if hasattr(group, "keys") and "vars" in group:
            return "Keras 3 layout: layers/<name>/vars datasets"
    return None


def _count_lambda(config: Any) -> int:
    if isinstance(config, dict):
        own = 1 if config.get("class_name") == "Lambda" else 0
        return own + sum(_count_lambda(v) for v in config.values())
    if isinstance(config, list):
        return sum(_count_lambda(v) for v in config)
    return 0


def detect_keras_zip(probe: FileProbe) -> Detection | None:
    names = set(probe.zip_names)
    if not names or "config.json" not in names:
        return None
    weights = [n for n in ("model.weights.h5", "model.weights.npz") if n in names]
    if "metadata.json" not in names and not weights:
        return None
    details: dict[str, Any] = {"container": "zip", "weights_member": weights[0] if weights else None}
    evidence = [
        "zip with config.json"
        + (", metadata.json" if "metadata.json" in names else "")
        + (f", {weights[0]}" if weights else "")
    ]
    if "metadata.json" in names and probe.is_zip:
        try:
            meta = json.loads(probe.zip_read("metadata.json", 1 << 20))
            if isinstance(meta, dict):
                details["keras_version"] = meta.get("keras_version")
                details["saved_at"] = meta.get("date_saved")
        except (FormatError, ValueError):
            pass
    confidence = CERTAIN if "metadata.json" in names and weights else STRONG
    return Detection("keras-v3", confidence, evidence, details)


def detect_file(probe: FileProbe) -> Detection | None:
    if probe.is_zip or probe.zip_error:
        return detect_keras_zip(probe)
    return detect_hdf5(probe)


# --- inspect --------------------------------------------------------------------------------------
#
# Counting rule for Keras (the issue: "Keras h5 — weight datasets (optimizer weights reported
# separately)"): `tensors`, and so tensor_count / parameter_count, hold the model's weight datasets
# only, which is what Keras' own model.count_params() and the corpus ground truth report. Optimizer
# slots (and metric accumulators) are training state: they go to `checkpoint`, with their own counts
# and tensor table, not into the model's totals. Only HDF5 metadata is read (h5py opens the object
# headers, never the raw chunks), so cost does not grow with the weights.

_MAX_JSON = 64 * 1024 * 1024
_OPTIMIZER_GROUPS = {"optimizer_weights", "optimizer"}
_BUFFER_NAMES = ("moving_mean", "moving_variance", "num_batches_tracked")


def _attr_list(group: Any, name: str) -> list[str]:
    """A string-list attribute, also in the chunked form Keras uses past HDF5's 64 KB header limit."""
    if name in group.attrs:
        return [_attr_text(v) for v in group.attrs[name]]
    out: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(_attr_text(v) for v in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


def _natural_key(name: str) -> list[Any]:
    """vars/2 before vars/10: Keras 3 numbers its variables."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in name.split("/")]


def _h5_dtype(ds: Any) -> str | None:
    """Canonical dtype of a dataset, or None for strings, objects and compound types."""
    if _attr_text(ds.attrs.get("dtype", "")) == "bfloat16":  # Keras 3 stores bfloat16 as 2-byte opaque
        return "BF16"
    text = ds.dtype.str
    if text[:1] == ">":  # big-endian storage: same element type, h5py converts on read
        text = "<" + text[1:]
    try:
        return lookup(text).name
    except UnknownDType:
        return None


def _dataset_tensor(
    ds: Any, name: str, label: str, base: int | None, warnings: list[str]
) -> TensorInfo | None:
    dtype = _h5_dtype(ds)
    if dtype is None:
        warnings.append(f"dataset {name!r} holds {ds.dtype} values, not a tensor type: skipped")
        return None
    shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else ()
    tensor = TensorInfo(name, dtype, shape, 0, label)
    try:
        tensor.nbytes = nbytes(dtype, tensor.numel)
    except ValueError:
        tensor.nbytes = int(ds.id.get_storage_size())
    offset = None
    if base is not None and ds.chunks is None and not ds.is_virtual and not ds.external:
        offset = ds.id.get_offset()  # absolute in the HDF5 file (user block included); None if chunked
        if offset is not None and ds.id.get_storage_size() == 0:
            warnings.append(f"dataset {name!r} has no storage allocated: it reads as its fill value")
            offset = None
    tensor.offset = None if offset is None else base + offset  # type: ignore[operator]
    return tensor


def _ordered_datasets(h5: Any) -> list[tuple[str, Any]]:
    """Every dataset, in Keras' own order where the file records it (layer_names / weight_names)."""
    import h5py

    found: dict[str, Any] = {}

    def collect(name: str, obj: Any) -> None:  # visititems stops at the first non-None return
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    h5.visititems(collect)
    ordered: list[str] = []
    roots = (
        [("model_weights/", h5["model_weights"])] if isinstance(h5.get("model_weights"), h5py.Group) else []
    )
    if not roots and ("layer_names" in h5.attrs or "layer_names0" in h5.attrs):
        roots = [("", h5)]
    for prefix, root in roots:
        for layer in _attr_list(root, "layer_names"):
            group = root.get(layer)
            if isinstance(group, h5py.Group):
                ordered.extend(f"{prefix}{layer}/{w}" for w in _attr_list(group, "weight_names"))
    opt = h5.get("optimizer_weights")
    if isinstance(opt, h5py.Group):
        ordered.extend(f"optimizer_weights/{w}" for w in _attr_list(opt, "weight_names"))
    seen: set[str] = set()
    out: list[tuple[str, Any]] = []
    for name in ordered:
        if name in found and name not in seen:
            seen.add(name)
            out.append((name, found[name]))
    out.extend((n, found[n]) for n in sorted(set(found) - seen, key=_natural_key))
    return out


def _h5_role(name: str) -> str:
    top = name.split("/", 1)[0]
    if top in _OPTIMIZER_GROUPS:
        return "optimizer"
    if "metric" in top or "tracker" in top:
        return "metric"  # compile metrics' accumulators (total, count): neither weights nor optimizer
    leaf = name.rsplit("/", 1)[-1]
    return "buffer" if leaf.startswith(_BUFFER_NAMES) else "weight"


def _read_h5(h5: Any, label: str, base: int | None, info: ModelInfo) -> list[TensorInfo]:
    """All numeric datasets as TensorInfo with a role; the iteration counter goes to info.checkpoint."""
    tensors: list[TensorInfo] = []
    for name, ds in _ordered_datasets(h5):
        tensor = _dataset_tensor(ds, name, label, base, info.warnings)
        if tensor is None:
            continue
        tensor.role = _h5_role(name)
        if tensor.role == "optimizer" and tensor.numel == 1 and tensor.dtype in ("I64", "I32"):
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            if leaf in ("iteration", "iterations", "iter") or name == "optimizer/vars/0":
                # An 8-byte step counter is training state, not weights: worth the tiny read.
                info.metadata["optimizer_iterations"] = int(ds[()])
        tensors.append(tensor)
    return tensors


def _split_training_state(info: ModelInfo, tensors: list[TensorInfo], optimizer_class: str | None) -> None:
    """Model weights into info.tensors; optimizer and metric state into info.checkpoint."""
    info.tensors = [t for t in tensors if t.role in ("weight", "buffer")]
    state: dict[str, Any] = {}
    for role, key in (("optimizer", "optimizer"), ("metric", "metrics")):
        part = [t for t in tensors if t.role == role]
        if not part:
            continue
        for t in part:
            t.role = "optimizer" if role == "optimizer" else "buffer"
        state[key] = {
            "tensor_count": len(part),
            "parameter_count": sum(t.numel for t in part),
            "total_bytes": sum(t.nbytes for t in part),
            "tensors": [t.to_dict() for t in part],
        }
    if state:
        if optimizer_class and "optimizer" in state:
            state["optimizer"]["class"] = optimizer_class
        if "optimizer_iterations" in info.metadata:
            state["iterations"] = info.metadata.pop("optimizer_iterations")
        info.checkpoint = {"kind": "keras-training-state", **state}
    else:
        info.metadata.pop("optimizer_iterations", None)


def _config_summary(config: Any) -> dict[str, Any]:
    """Model class, name, layer count and names from a Keras model config (2 or 3)."""
    out: dict[str, Any] = {}
    if not isinstance(config, dict):
        return out
    out["model_class"] = config.get("class_name")
    inner = config.get("config")
    if isinstance(inner, dict):
        if inner.get("name") is not None:
            out["model_name"] = inner.get("name")
        layers = inner.get("layers")
        if isinstance(layers, list):
            # InputLayer entries are placeholders, not layers with weights: counted apart.
            real = [
                layer
                for layer in layers
                if isinstance(layer, dict)
                and isinstance(layer.get("config", {}), dict)
                and layer.get("class_name") != "InputLayer"
            ]
            out["layer_count"] = len(real)
            out["input_layers"] = len(layers) - len(real)
            out["layer_names"] = [layer.get("config", {}).get("name") or layer.get("name") for layer in real][
                :256
            ]
    out["lambda_layers"] = _count_lambda(config)
    return out


def _optimizer_class(training_config: Any) -> str | None:
    if not isinstance(training_config, dict):
        return None
    opt = training_config.get("optimizer_config") or training_config.get("optimizer")
    if isinstance(opt, dict):
        return opt.get("class_name") or opt.get("registered_name")
    return opt if isinstance(opt, str) else None


def _json_attr(h5: Any, name: str, info: ModelInfo) -> Any:
    if name not in h5.attrs:
        return None
    try:
        return json.loads(_attr_text(h5.attrs[name]))
    except ValueError:
        info.warnings.append(f"root attribute {name} is not valid JSON")
        return None


def _h5_metadata(h5: Any, info: ModelInfo) -> str | None:
    """Root attributes: versions, model config summary, training config. Returns the optimizer class."""
    for key in ("keras_version", "backend"):
        if key in h5.attrs:
            info.metadata[key] = _attr_text(h5.attrs[key])
    info.metadata.update(_config_summary(_json_attr(h5, "model_config", info)))
    weights_root = h5.get("model_weights", h5)
    layer_names = _attr_list(weights_root, "layer_names")
    if layer_names:
        info.metadata["weight_layer_count"] = len(layer_names)
        info.metadata.setdefault("layer_names", layer_names[:256])
    training = _json_attr(h5, "training_config", info)
    if isinstance(training, dict):
        info.metadata["optimizer_class"] = _optimizer_class(training)
        if training.get("loss") is not None:
            info.metadata["loss"] = training.get("loss")
    return info.metadata.get("optimizer_class")


def _h5_payload(
    open_stream: Callable[[], Any], label: str, base: int | None, root_attrs: bool
) -> dict[str, Any]:
    """Metadata, warnings and tensor dicts of one HDF5 file, as JSON-able data (runs isolated)."""
    import h5py

    try:
        h5 = h5py.File(open_stream(), "r")
    except Exception as exc:  # h5py raises OSError/ValueError/KeyError subclasses for corrupt files
        return {"error": f"HDF5 file cannot be opened ({_reason(exc)}): truncated or corrupt"}
    scratch = ModelInfo(label, "keras-h5")
    with h5:
        optimizer_class = _h5_metadata(h5, scratch) if root_attrs else None
        tensors = _read_h5(h5, label, base, scratch)
    return {
        "metadata": scratch.metadata,
        "warnings": scratch.warnings,
        "optimizer_class": optimizer_class,
        "tensors": [t.to_dict() for t in tensors],
    }


def _read_isolated(
    open_stream: Callable[[], Any], label: str, base: int | None, name: str | Path, root_attrs: bool = True
) -> tuple[list[TensorInfo], dict[str, Any], list[str], str | None]:
    import h5py  # noqa: F401 - imported before the fork so the child does not pay for it again

    payload = run_isolated(lambda: _h5_payload(open_stream, label, base, root_attrs), name)
    if "error" in payload:
        raise FormatError(payload["error"], name)
    tensors = [
        TensorInfo(d["name"], d["dtype"], tuple(d["shape"]), d["nbytes"], d["file"], d["offset"], d["role"])
        for d in payload["tensors"]
    ]
    return tensors, payload["metadata"], payload["warnings"], payload["optimizer_class"]


def inspect_h5(path: Path, ident: Identification) -> ModelInfo:
    info = ModelInfo(str(path), "keras-h5")
    with FileSource(path) as source:
        info.files.append({"path": str(path), "size_bytes": source.size})
        tensors, metadata, warnings, optimizer_class = _read_isolated(source.open_stream, str(path), 0, path)
    info.metadata = {"variant": ident.details.get("variant"), **metadata}
    info.warnings.extend(warnings)
    _split_training_state(info, tensors, optimizer_class)
    return info


# --- .keras zip ---------------------------------------------------------------------------------------


def _zip_json(zf: zipfile.ZipFile, name: str, info: ModelInfo) -> Any:
    if name not in zf.namelist():
        return None
    if zf.getinfo(name).file_size > _MAX_JSON:
        info.warnings.append(f"{name} is over {_MAX_JSON} bytes: not read")
        return None
    try:
        return json.loads(zf.read(name))
    except ValueError:
        info.warnings.append(f"{name} is not valid JSON")
        return None


def inspect_keras_zip(path: Path, ident: Identification) -> ModelInfo:
    info = ModelInfo(str(path), "keras-v3")
    with FileSource(path) as source:
        info.files.append({"path": str(path), "size_bytes": source.size})
        try:
            zf = zipfile.ZipFile(source.open_stream())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise FormatError(f"zip central directory is unreadable ({exc})", path) from None
        with zf:
            try:
                meta = _zip_json(zf, "metadata.json", info)
                config = _zip_json(zf, "config.json", info)
                tensors, optimizer_class = _keras_zip_weights(zf, source, path, info, config)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, zlib.error) as exc:
                raise FormatError(f"zip member is unreadable ({exc})", path) from None
    if isinstance(meta, dict):
        for key in ("keras_version", "date_saved"):
            if key in meta:
                info.metadata[key] = meta[key]
    _split_training_state(info, tensors, optimizer_class)
    return info


def _keras_zip_weights(
    zf: zipfile.ZipFile, source: FileSource, path: Path, info: ModelInfo, config: Any
) -> tuple[list[TensorInfo], str | None]:
    info.metadata["zip_members"] = len(zf.namelist())
    info.metadata.update(_config_summary(config))
    optimizer_class = None
    if isinstance(config, dict):
        compile_config = config.get("compile_config")
        info.metadata["compiled"] = isinstance(compile_config, dict)
        if isinstance(compile_config, dict):
            optimizer_class = _optimizer_class(compile_config)
            if optimizer_class:
                info.metadata["optimizer_class"] = optimizer_class
    names = set(zf.namelist())
    if "model.weights.h5" in names:
        member = zf.getinfo("model.weights.h5")
        info.metadata["weights_member"] = member.filename
        start = stored_member_offset(source, member)
        if member.compress_type == zipfile.ZIP_STORED and not member.flag_bits & 0x1:
            if start is None:
                raise FormatError("zip local header of model.weights.h5 is missing", path)
            if start + member.file_size > source.size:
                raise FormatError("model.weights.h5 runs past the end of the zip: truncated", path)
            open_stream = SliceSource(source, start, member.file_size, f"{path}!model.weights.h5").open_stream
            base: int | None = start
        else:
            # Deflated: h5py can still read it through zipfile, but seeks cost decompression and
            # the data has no offset in the .keras file.
            def open_stream() -> Any:
                return zf.open(member)

            base = None
            info.warnings.append("model.weights.h5 is compressed inside the zip: offsets are not available")
        tensors, metadata, warnings, _ = _read_isolated(
            open_stream, str(path), base, f"{path}!model.weights.h5", root_attrs=False
        )
        info.warnings.extend(warnings)
        if "optimizer_iterations" in metadata:
            info.metadata["optimizer_iterations"] = metadata["optimizer_iterations"]
        return tensors, optimizer_class
    if "model.weights.npz" in names:
        info.metadata["weights_member"] = "model.weights.npz"
        return _npz_weights(zf, source, path, info), optimizer_class
    info.warnings.append("no model.weights.h5 or model.weights.npz: the archive holds no weights")
    return [], optimizer_class


def _npz_weights(zf: zipfile.ZipFile, source: FileSource, path: Path, info: ModelInfo) -> list[TensorInfo]:
    """Keras' NpzIOStore: np.savez of {"layers/dense": {"0": arr, …}} — each entry a pickled dict.

    The object arrays are read with the non-executing pickle reader. Their array bytes sit inline in
    the pickle, so this variant cannot be read header-only; members over a cap are reported, not read.
    """
    from ..picklevm import read_pickle
    from .numpy import has_objects, parse_npy_header

    tensors: list[TensorInfo] = []
    with zf.open("model.weights.npz") as raw, zipfile.ZipFile(raw) as inner:
        for member in inner.infolist():
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            if member.file_size > MAX_ZIP_MEMBER_READ:
                info.warnings.append(
                    f"model.weights.npz member {member.filename} is too large to read symbolically"
                )
                continue
            data = inner.read(member)
            header = parse_npy_header(data[:65536])
            if header is None:
                info.warnings.append(f"model.weights.npz member {member.filename} is not an .npy array")
                continue
            if not has_objects(header["descr"]):
                try:
                    dtype = lookup(str(header["descr"])).name
                except UnknownDType:
                    info.warnings.append(f"{key}: dtype {header['descr']!r} is not in the dtypes table")
                    continue
                shape = tuple(int(d) for d in header["shape"])
                t = TensorInfo(key, dtype, shape, 0, str(path))
                t.nbytes = nbytes(dtype, t.numel)
                t.role = _h5_role(key)
                tensors.append(t)
                continue
            result = read_pickle(data, name=f"{path}!{member.filename}", offset=header["_data_offset"])
            for name, dtype, shape in _pickled_arrays(result.value, key):
                t = TensorInfo(name, dtype, shape, 0, str(path))
                t.nbytes = nbytes(dtype, t.numel)
                t.role = _h5_role(name)
                tensors.append(t)
    info.warnings.append("weights are pickled numpy arrays (model.weights.npz): offsets are not available")
    return tensors


def _pickled_arrays(value: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(name, dtype, shape) of each numpy array in a symbolic pickle value (dicts walked by key).

    A pickled ndarray is `_reconstruct(ndarray, (0,), b'b')` with BUILD state
    (version, shape, dtype, fortran, data); its dtype is `dtype('f4', …)` with state (3, '<', …).
    """
    from ..picklevm import Call, Global

    if depth > 32:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _pickled_arrays(v, f"{prefix}/{k}", depth + 1)
        return
    if not isinstance(value, Call) or not isinstance(value.func, Global) or value.func.name != "_reconstruct":
        return
    state = value.state
    if not isinstance(state, tuple) or len(state) != 5:
        return
    shape, dtype_call, data = state[1], state[2], state[4]
    if isinstance(dtype_call, Call) and dtype_call.args and isinstance(dtype_call.args[0], str):
        code = dtype_call.args[0]
        order = (
            dtype_call.state[1] if isinstance(dtype_call.state, tuple) and len(dtype_call.state) > 1 else "|"
        )
        if code.startswith("O"):  # an object array (Keras wraps its dict in a 0-d one): look inside
            for item in data if isinstance(data, list) else []:
                yield from _pickled_arrays(item, prefix, depth + 1)
            return
        try:
            name = lookup(f"{order if order in '<>|' else '<'}{code}".replace(">", "<")).name
        except UnknownDType:
            return
        if isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape):
            yield prefix, name, shape


INSPECTS = {"keras-h5": inspect_h5, "keras-v3": inspect_keras_zip}
