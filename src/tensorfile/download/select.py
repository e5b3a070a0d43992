"""Which files of a repo to download: safe weights first, one weight set, side files always.

The seed's first rule for downloading is "insist on .safetensors". A repo often carries the same
weights two or three times (safetensors, a pickled `pytorch_model.bin`, Meta's `original/`
`consolidated.*.pth`) and other exports (ONNX, OpenVINO, Core ML, GGUF in many quantizations).
`select_files` keeps one weight set, preferring safetensors, always keeps the small side files
(config, tokenizer, chat template, README) and says for every skipped file why.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import UsageError
from ..hub.listing import RemoteFile

SAFETENSORS = "safetensors"
PICKLE = "pickle"
GGUF = "gguf"
EXPORT = "export"
SIDE = "side"

# Folders that hold another export of the same model.
_EXPORT_DIRS = {
    "onnx": "ONNX",
    "openvino": "OpenVINO",
    "coreml": "Core ML",
    "tflite": "TensorFlow Lite",
    "tensorrt": "TensorRT",
    "gguf": "GGUF",
    "mlx": "MLX",
}
_EXPORT_SUFFIXES = {
    ".onnx": "ONNX",
    ".onnx_data": "ONNX",
    ".ort": "ONNX Runtime",
    ".mlmodel": "Core ML",
    ".tflite": "TensorFlow Lite",
    ".engine": "TensorRT",
    ".plan": "TensorRT",
    ".h5": "Keras/TensorFlow",
    ".keras": "Keras",
    ".msgpack": "Flax",
    ".ot": "rust-bert",
    ".npz": "NumPy",
    ".pb": "TensorFlow",
}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".mar")
# Diffusers-style variants next to the main weights: model.fp16.safetensors, unet.non_ema.bin …
_VARIANT = re.compile(r"\.(fp16|bf16|fp32|non_ema|ema|int8|int4)\.[^.]+$", re.IGNORECASE)
# llama.cpp quantization names as GGUF files spell them: Q4_K_M, IQ2_XXS, BF16, F16, Q8_0 …
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|F16|F32|FP16|FP32|MXFP4(?:_MOE)?)(?![A-Za-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Choice:
    """One file of the listing and the decision about it."""

    file: RemoteFile
    kind: str  # safetensors | pickle | gguf | export | side
    chosen: bool
    reason: str


@dataclass
class Selection:
    choices: list[Choice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> list[Choice]:
        return [c for c in self.choices if c.chosen]

    @property
    def skipped(self) -> list[Choice]:
        return [c for c in self.choices if not c.chosen]


def kind_of(path: str) -> str:
    """What a repo file is, by the names hubs use (its content is checked after download)."""
    lowered = path.lower()
    top = lowered.split("/", 1)[0] if "/" in lowered else ""
    name = lowered.rsplit("/", 1)[-1]
    if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
        return SAFETENSORS
    if name.endswith(".gguf"):
        return GGUF
    if top in _EXPORT_DIRS or any(name.endswith(s) for s in _EXPORT_SUFFIXES) or ".mlpackage/" in lowered:
        return EXPORT
    if top == "original" or name.startswith("consolidated.") or name.endswith(_PICKLE_SUFFIXES):
        return PICKLE
    if name.endswith(".bin.index.json") or name.endswith(".pt.index.json"):
        return PICKLE
    if name in ("params.json",) and top == "original":
        return PICKLE
    return SIDE


def _export_label(path: str) -> str:
    lowered = path.lower()
    top = lowered.split("/", 1)[0] if "/" in lowered else ""
    if top in _EXPORT_DIRS:
        return _EXPORT_DIRS[top]
    if ".mlpackage/" in lowered:
        return "Core ML"
    for suffix, label in _EXPORT_SUFFIXES.items():
        if lowered.endswith(suffix):
            return label
    return "another format"


def quant_of(path: str) -> str | None:
    """The llama.cpp quantization a GGUF file name carries (Q4_K_M, IQ2_XXS, F16, …), upper-cased."""
    name = path.rsplit("/", 1)[-1]
    found = _QUANT.findall(name.rsplit(".", 1)[0])
    if not found:
        return None
    quant = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p) or path == p for p in patterns)


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def select_files(
    files: Iterable[RemoteFile],
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    take_all: bool = False,
    quant: str | None = None,
) -> Selection:
    """Decide every file. `include` (positional files and --include) takes exactly what matches,
    as the hub clients' allow patterns do; otherwise safe-first applies. `exclude` always wins."""
    listing = sorted(files, key=lambda f: f.path)
    include, exclude = list(include), list(exclude)
    selection = Selection()
    kinds = {f.path: kind_of(f.path) for f in listing}

    def decide(file: RemoteFile, chosen: bool, reason: str) -> None:
        if chosen and exclude and _matches(file.path, exclude):
            chosen, reason = False, "excluded by --exclude"
        selection.choices.append(Choice(file, kinds[file.path], chosen, reason))

    if take_all:
        for f in listing:
            decide(f, True, "--all")
        return selection
    if include:
        for f in listing:
            hit = _matches(f.path, include)
            decide(f, hit, "asked for" if hit else "not matched by the files or --include asked for")
        if not any(c.chosen for c in selection.choices):
            raise UsageError(f"no file of this repo matches {', '.join(include)}")
        return selection

    gguf_files = [f for f in listing if kinds[f.path] == GGUF]
    quants = sorted({q for f in gguf_files if (q := quant_of(f.path)) and not _is_mmproj(f.path)})
    if quant is not None:
        quant = quant.upper()
        if not gguf_files:
            raise UsageError(f"--quant {quant}: this repo has no GGUF files")
        if quant not in quants:
            raise UsageError(
                f"--quant {quant}: not in this repo; it has {', '.join(quants) or 'no named quants'}"
            )
    safetensor_folders = {_folder(f.path) for f in listing if kinds[f.path] == SAFETENSORS}
    pickle_folders = {_folder(f.path) for f in listing if kinds[f.path] == PICKLE}
    has_weights = bool(safetensor_folders or pickle_folders)
    use_gguf = quant is not None or (not has_weights and bool(gguf_files))
    if use_gguf and quant is None and len(quants) > 1:
        raise UsageError(
            f"this repo holds {len(quants)} GGUF quantizations; choose one with --quant "
            f"({', '.join(quants)}), or --all"
        )
    # folders whose safetensors include a plain (non-variant) set: their fp16/ema variants are extra
    main_folders = {
        _folder(f.path) for f in listing if kinds[f.path] == SAFETENSORS and not _VARIANT.search(f.path)
    }
    for f in listing:
        kind = kinds[f.path]
        if kind == SIDE:
            decide(f, True, "config, tokenizer or other small file")
        elif use_gguf:
            if kind == GGUF and (quant is None or quant_of(f.path) == quant or _is_mmproj(f.path)):
                decide(f, True, f"GGUF {quant_of(f.path) or ''}".strip())
            elif kind == GGUF:
                decide(
                    f, False, f"other quantization ({quant_of(f.path) or 'unnamed'}; --quant {quant} asked)"
                )
            else:
                decide(f, False, "not needed: --quant asked for the GGUF weights" if quant else "")
        elif kind == SAFETENSORS:
            if _VARIANT.search(f.path) and _folder(f.path) in main_folders:
                decide(f, False, "variant of the main safetensors weights (ask for it with --include)")
            else:
                decide(f, True, "safetensors weights")
        elif kind == PICKLE:
            if _covered_by_safetensors(f.path, safetensor_folders):
                decide(f, False, _duplicate_reason(f.path))
            else:
                decide(
                    f, True, "pickled weights: no safetensors for them in this repo (scanned before placing)"
                )
        elif kind == GGUF:
            decide(
                f, False, f"other export: GGUF {quant_of(f.path) or ''} (ask with --quant)".replace("  ", " ")
            )
        else:  # EXPORT
            if has_weights:
                decide(f, False, f"other export: {_export_label(f.path)} (ask for it with --include)")
            else:
                decide(f, True, f"{_export_label(f.path)} weights: the only weights in this repo")
    if not has_weights and not gguf_files and not any(c.kind == EXPORT for c in selection.choices):
        selection.notes.append("this repo lists no weight files")
    if pickle_folders and not safetensor_folders:
        selection.notes.append(
            "no safetensors in this repo: its weights are pickled and can run code when loaded"
        )
    return selection


def _duplicate_reason(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    if path.lower().startswith("original/"):
        return "Meta's original checkpoint: a pickled duplicate of the safetensors weights"
    if name.startswith(
        ("pytorch_model", "model", "diffusion_pytorch_model", "consolidated", "adapter_model")
    ):
        return "pickled duplicate of the safetensors weights (can run code on load)"
    return "pickled file beside safetensors weights (training state; not needed to load them)"


def _is_mmproj(path: str) -> bool:
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


def _covered_by_safetensors(path: str, safetensor_folders: set[str]) -> bool:
    """A pickle whose folder (or, for Meta's original/, the repo root) has safetensors weights."""
    folder = _folder(path)
    if folder in safetensor_folders:
        return True
    top = path.split("/", 1)[0].lower()
    return top == "original" and "" in safetensor_folders
