"""`inspect`: what is inside a model file or folder, from headers only, executing nothing.

Data flow: path -> identify (which format) -> that format's inspector -> ModelInfo. Inspectors
read headers, zip directories, pickles (symbolically) and protobuf fields up to the weights;
they never read tensor data.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .errors import UnsupportedError
from .identification import identify
from .model import ModelInfo, TensorInfo, natural_key
from .probe import load_json
from .source import resolve_input

# config.json keys (transformers' many spellings) -> our architecture hint names.
_CONFIG_KEYS = {
    "model_type": ("model_type",),
    "architectures": ("architectures",),
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "intermediate_size": ("intermediate_size", "ffn_dim", "n_inner"),
    "heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "kv_heads": ("num_key_value_heads", "n_kv_heads", "num_kv_heads"),
    "head_dim": ("head_dim",),
    "vocab_size": ("vocab_size", "n_vocab"),
    "context_length": ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"),
    "experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok", "moe_top_k"),
    "sliding_window": ("sliding_window",),
    "tie_word_embeddings": ("tie_word_embeddings",),
    "torch_dtype": ("torch_dtype", "dtype"),
}


def inspect(path: str | os.PathLike[str]) -> ModelInfo:
    """Describe a model file or folder. Raises UnsupportedError for unknown or unreadable formats."""
    from .formats.registry import INSPECTORS

    p = resolve_input(path)
    ident = identify(p)
    if not ident.known:
        raise UnsupportedError(f"not a model file: {ident.reason}", p)
    inspector = INSPECTORS.get(ident.format)
    if inspector is None:
        raise UnsupportedError(f"inspect does not read {ident.format} files yet", p)
    weights = ident.details.get("weights_files") or []
    if ident.kind == "directory" and ident.format in _FILE_INSPECTORS and weights:
        info = _inspect_files(p, [p / w for w in weights], ident, inspector)
    else:
        info = inspector(p, ident)
    if not info.architecture:
        info.architecture = architecture_from_config(config_near(p))
    info.warnings = [*ident.warnings, *info.warnings]
    return info


# Formats whose inspectors read one file: a folder of them (a repo with config.json and a pickled
# pytorch_model.bin, or its shards) is read file by file and summed.
_FILE_INSPECTORS = frozenset(
    {
        "pickle",
        "pytorch-zip",
        "pytorch-legacy",
        "torchscript",
        "gguf",
        "onnx",
        "tflite",
        "flax-msgpack",
        "numpy",
    }
)


def _inspect_files(folder: Path, files: list[Path], ident: Any, inspector: Any) -> ModelInfo:
    from .identification import identify as identify_file

    parts = [inspector(f, identify_file(f)) for f in files]
    info = parts[0]
    if len(parts) == 1:
        info.path = str(folder)
        return info
    merged = ModelInfo(str(folder), ident.format, metadata=info.metadata, checkpoint=info.checkpoint)
    for part in parts:
        merged.files.extend(part.files)
        merged.tensors.extend(part.tensors)
        merged.warnings.extend(part.warnings)
    return merged


def config_near(path: Path) -> dict[str, Any] | None:
    folder = path if path.is_dir() else path.parent
    config = folder / "config.json"
    try:
        if config.is_file() and config.stat().st_size < 16 * 1024 * 1024:
            data = load_json(config.read_bytes())
            return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    return None


def architecture_from_config(config: dict[str, Any] | None) -> dict[str, Any]:
    if not config:
        return {}
    source = dict(config)
    text = config.get("text_config")
    if isinstance(text, dict):  # multimodal configs keep the language model's numbers here
        source = {**text, **{k: v for k, v in config.items() if k not in text}}
    hints: dict[str, Any] = {}
    for name, keys in _CONFIG_KEYS.items():
        for key in keys:
            if key in source and source[key] is not None:
                hints[name] = source[key]
                break
    if hints:
        hints["source"] = "config.json"
    return hints


def select_tensors(
    tensors: list[TensorInfo], pattern: str | None = None, sort: str | None = None, limit: int | None = None
) -> list[TensorInfo]:
    """The tensor table after --filter GLOB, --sort KEY and --limit N."""
    import fnmatch

    chosen = [t for t in tensors if pattern is None or fnmatch.fnmatchcase(t.name, pattern)]
    if sort:
        keys = {
            "name": lambda t: natural_key(t.name),  # layers.2 before layers.10
            "size": lambda t: -t.nbytes,
            "params": lambda t: -t.numel,
            "dtype": lambda t: (t.dtype, t.name),
            "offset": lambda t: (t.file or "", t.offset if t.offset is not None else -1),
        }
        if sort not in keys:
            raise UnsupportedError(f"unknown sort key {sort!r}; choose from {', '.join(keys)}")
        chosen.sort(key=keys[sort])
    return chosen if limit is None else chosen[:limit]


_NUMBERED = re.compile(r"^(.*?\.)(\d+)\.(.*)$")


def _numbered_blocks(names: list[str]) -> tuple[dict[str, tuple[set[int], dict[str, None]]], list[str]]:
    """prefix -> (block numbers, what follows the number), and the names without a block number."""
    blocks: dict[str, tuple[set[int], dict[str, None]]] = {}
    others: list[str] = []
    for name in names:
        match = _NUMBERED.match(name)
        if match is None:
            others.append(name)
            continue
        ids, suffixes = blocks.setdefault(match.group(1), (set(), {}))
        ids.add(int(match.group(2)))
        suffixes[match.group(3)] = None
    return blocks, others


def index_span(ids: set[int]) -> str:
    """{0..31} for a run; {0,1,3} when blocks are missing, so gaps are shown, not hidden in a range."""
    low, high = min(ids), max(ids)
    if len(ids) == 1:
        return f"{{{low}}}"
    if len(ids) == high - low + 1:
        return f"{{{low}..{high}}}"
    return "{" + ",".join(map(str, sorted(ids))) + "}"


def group_layers(names: list[str]) -> list[tuple[str, int]]:
    """Collapse numbered blocks: model.layers.0.x … model.layers.31.x -> ('model.layers.{0..31}', 32)."""
    blocks, _ = _numbered_blocks(names)
    return [(f"{prefix}{index_span(ids)}", len(ids)) for prefix, (ids, _) in blocks.items()]


def collapse_layer_names(names: list[str]) -> str:
    """'model.layers.{0..31}.{self_attn.q_proj, mlp.up_proj}' instead of 224 names (--json has them all)."""
    blocks, others = _numbered_blocks(names)
    parts = []
    for prefix, (ids, suffixes) in blocks.items():
        tail = next(iter(suffixes)) if len(suffixes) == 1 else "{" + ", ".join(suffixes) + "}"
        span = index_span(ids) if len(ids) > 1 else str(min(ids))
        parts.append(f"{prefix}{span}.{tail}")
    return "; ".join([*parts, *others])
