"""The page's data: the same documents the CLI prints with --json, built by the same library calls.

One document per section, so the server can hand them out one by one and the HTML export can embed
them all: `inspect` (and `inspect_b` with two inputs) is `tensorfile inspect PATH --json`, `scan` is
`tensorfile scan PATH --json`, every row of `estimate` is `tensorfile estimate PATH <settings> --json`
and `diff` is `tensorfile diff A B --json`. A section that cannot be built (an estimate for a model
with no transformer shapes, a diff of unreadable inputs) carries its one-line error instead, so the page
says why it is empty; only `inspect` failing fails the whole view.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..errors import TensorfileError

# Each memory row: (group, label, estimate settings as the CLI's option names). "as stored" is added
# in front with the file's own weights (estimate's default when --weights is not given).
INFERENCE_WEIGHTS = (
    ("FP32", "fp32"),
    ("FP16", "fp16"),
    ("BF16", "bf16"),
    ("FP8", "fp8"),
    ("INT8 (bitsandbytes)", "int8"),
    ("NF4 (bitsandbytes)", "nf4"),
    ("AWQ 4-bit", "awq"),
    ("GPTQ 4-bit", "gptq"),
    ("GGUF Q8_0", "gguf:Q8_0"),
    ("GGUF Q4_K_M", "gguf:Q4_K_M"),
)
FINE_TUNING = (
    ("Full (AMP, AdamW)", {"task": "train", "method": "full"}),
    ("LoRA r8 (q,v)", {"task": "train", "method": "lora"}),
    ("QLoRA nf4 (paged AdamW 8-bit, grad ckpt)", {
        "task": "train", "method": "qlora", "optimizer": "paged-adamw-8bit", "grad_ckpt": True,
    }),
)  # fmt: skip


def _section(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return build()
    except TensorfileError as exc:
        return {"error": str(exc)}


def inspect_document(path: str) -> dict[str, Any]:
    """`tensorfile inspect PATH --json`. Raises TensorfileError: without it there is nothing to view."""
    from ..inspection import inspect

    return inspect(path).to_dict()


def scan_document(paths: list[str]) -> dict[str, Any]:
    """`tensorfile scan PATH... --json`."""
    from ..scan import scan

    return scan(paths).to_dict()


def diff_document(a: str, b: str) -> dict[str, Any]:
    """`tensorfile diff A B --json`: names, dtypes, shapes and values, streamed as diff streams them."""
    from ..convert.compare import diff

    return diff(a, b).to_dict()


def _flags(settings: dict[str, Any]) -> str:
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        else:
            out.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(out)


def estimate_document(path: str) -> dict[str, Any]:
    """Memory at each precision and quantization and for full / LoRA / QLoRA fine-tuning, each row
    the document of `tensorfile estimate PATH <settings> --json`; the model, the seed's rules and the
    GPU table once, from the row as stored (they do not depend on the weights)."""
    from ..estimate import default_weights, describe_model, estimate_memory
    from ..estimate.report import build_report

    spec, facts = describe_model(path)  # the file is read once; every row reuses its shapes
    stored = default_weights(facts)
    settings: list[tuple[str, str, dict[str, Any]]] = [
        ("inference", f"as stored ({stored or 'bf16'})", {"task": "inference"}),
        *(("inference", label, {"task": "inference", "weights": w}) for label, w in INFERENCE_WEIGHTS),
        *(("fine-tuning", label, s) for label, s in FINE_TUNING),
    ]
    rows: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    for group, label, setting in settings:
        run = dict(setting)
        method = run.get("method", "full")
        if "weights" not in run and method != "qlora" and (run["task"] == "inference" or method != "full"):
            run["weights"] = stored  # estimate_memory's default for a path without --weights
        command = f"tensorfile estimate {shlex.quote(path)} {_flags(setting)} --json"
        try:
            report = build_report(estimate_memory(spec, **run)).to_dict()
        except TensorfileError as exc:
            rows.append({"group": group, "label": label, "command": command, "error": str(exc)})
            continue
        if first is None:
            first = report
        rows.append(
            {
                "group": group,
                "label": label,
                "command": command,
                "report": {k: v for k, v in report.items() if k not in ("model", "quick")},
            }
        )
    if first is None:
        return {"error": rows[0].get("error", "no estimate"), "rows": rows}
    return {
        "model": first["model"],
        "quick": first["quick"],
        "stored_weights": stored,
        "rows": rows,
    }


def build_documents(path: str, path_b: str | None = None) -> dict[str, dict[str, Any]]:
    """name -> document, for the page. `inspect` errors propagate (one line, exit 2 in the CLI)."""
    docs: dict[str, dict[str, Any]] = {
        "about": {"tensorfile": __version__, "inputs": [p for p in (path, path_b) if p is not None]},
        "inspect": inspect_document(path),
    }
    if path_b is not None:
        docs["inspect_b"] = inspect_document(path_b)
    docs["scan"] = _section(lambda: scan_document([p for p in (path, path_b) if p is not None]))
    docs["estimate"] = _section(lambda: estimate_document(path))
    if path_b is not None:
        docs["diff"] = _section(lambda: diff_document(path, path_b))
    return docs
