"""The README's Python examples run as written, from the project root, and print what they say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
# What each block prints, in README order.
EXPECTED = [
    "{'clean': 7} ['gguf', 'onnx', 'pickle', 'pytorch-zip', 'safetensors']",
    "Q4_0 {'F32': 5, 'Q4_0': 16}",
    "gguf:Q8_0 llama.cpp",
    "no/such/file.pt: no such file or directory",
    "F32 ['model_state_dict.weight', 'model_state_dict.bias']",
    "pickle [('info', 'sklearn.tree._classes.DecisionTreeClassifier'), ('info', 'sklearn.tree._tree.Tree')]",
    "['bias', 'weight']",
]


def test_every_block_has_an_expectation() -> None:
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), list(zip(BLOCKS, EXPECTED, strict=False)))
def test_readme_example_runs(
    code: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})  # our own documentation
    assert expected in capsys.readouterr().out
