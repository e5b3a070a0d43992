"""The parameter-count section of docs/ESTIMATES.md: `estimate`'s count from each recorded
config.json beside transformers' (tests/data/param_counts.json, tests/fixtures/make_param_counts.py).

    .venv/bin/python bench/param_count_table.py     # rewrite that section in place

bench/estimate_table.py appends the same section when it rewrites the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "param_counts.json"
DOC = ROOT / "docs" / "ESTIMATES.md"
HEADING = "## Parameter counts from config.json against transformers (issue 15)"


def render() -> str:
    from tensorfile.errors import TensorfileError
    from tensorfile.estimate.model_source import spec_from_config

    doc = json.loads(DATA.read_text(encoding="utf-8"))
    rows = []
    exact = 0
    for model_type in sorted(doc["cases"]):
        case = doc["cases"][model_type]
        ref = case["parameters"]
        try:
            ours = spec_from_config(case["config"]).total_params
        except TensorfileError as exc:
            why = str(exc).split("(")[0].strip()
            rows.append(f"| {model_type} | {case['class']} | {ref:,} | refused | {why} |")
            continue
        diff = "exact" if ours == ref else f"{100 * (ours - ref) / ref:+.3g} % ({ours - ref:+,})"
        exact += ours == ref
        rows.append(f"| {model_type} | {case['class']} | {ref:,} | {ours:,} | {diff} |")
    return (
        f"{HEADING}\n\n"
        "What `estimate` counts from a bare config.json, against `sum(p.numel() for p in\n"
        f"model.parameters())` of the class in `architectures`, built by transformers {doc['transformers']}\n"
        "on torch's meta device: each model type's default config with 2 layers, and variants that\n"
        "change the count (`type:variant`: other head classes, tied or untied embeddings, biases and\n"
        "norms switched on, 3 layers, encoder and decoder of different depths, MoE layouts).\n"
        "tests/fixtures/make_param_counts.py records them; tests/test_estimate_param_counts.py holds\n"
        "every one exact. The counters are src/tensorfile/estimate/architectures/.\n"
        f"Exact: {exact} of {len(rows)}.\n\n"
        "| case | class | transformers | tensorfile | difference |\n"
        "|---|---|---:|---:|---|\n" + "\n".join(rows) + "\n"
    )


def write() -> None:
    text = DOC.read_text(encoding="utf-8")
    head = text.split(HEADING)[0].rstrip("\n")
    DOC.write_text(f"{head}\n\n{render()}", encoding="utf-8")


if __name__ == "__main__":
    write()
