"""ONNX nodes carrying Python: source in a custom op's attribute (high, critical when it calls a
dangerous function), onnxruntime's language-interop PyOp naming a module (high), and
onnxruntime-extensions ops that only name a function registered at runtime (the custom-domain
finding, medium). Fixtures are built with the onnx library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tensorfile.scan import scan_file
from tensorfile.scan.onnx_nodes import python_source

from .conftest import run_cli

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

CONTRIB = "ai.onnx.contrib"
PAYLOAD = 'def compute(x):\n    import os\n    os.system("id > /tmp/owned")\n    return x\n'
PLAIN = "def compute(x, y):\n    return x * 2 + y\n"


def _model(tmp_path: Path, nodes: list, domains: tuple[str, ...] = (CONTRIB,), functions=()) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    graph = helper.make_graph(nodes, "g", [x], [y])
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _findings(path: Path) -> dict[str, list]:
    result = scan_file(path)
    assert result.status == "scanned", result.error
    found: dict[str, list] = {}
    for f in result.findings:
        found.setdefault(f.rule, []).append(f)
    return found


def test_python_source_in_a_contrib_attribute_is_flagged_with_node_and_excerpt(tmp_path: Path) -> None:
    node = helper.make_node("PyFunc", ["x"], ["y"], name="evil", domain=CONTRIB, code=PAYLOAD)
    (finding,) = _findings(_model(tmp_path, [node]))["onnx-python-code"]
    assert finding.severity == "critical"  # os.system is on the denylist
    assert "os.system" in finding.message
    for part in ("ai.onnx.contrib::PyFunc", "'evil'", "attribute code", "def compute(x): ⏎ import os"):
        assert part in finding.evidence, (part, finding.evidence)
    assert "node evil" in finding.location


def test_plain_python_source_is_high_and_the_domain_finding_stays_medium(tmp_path: Path) -> None:
    node = helper.make_node("PyOp", ["x", "x"], ["y"], name="double", domain=CONTRIB, source=PLAIN)
    found = _findings(_model(tmp_path, [node]))
    assert [f.severity for f in found["onnx-python-code"]] == ["high"]
    (domain,) = found["onnx-custom-domain"]
    assert domain.severity == "medium" and domain.evidence == "ai.onnx.contrib: PyOp"
    assert scan_file(tmp_path / "model.onnx").verdict("high") == "unsafe"


def test_source_in_a_list_attribute_a_subgraph_and_a_local_function(tmp_path: Path) -> None:
    carrier = helper.make_node("Exec", [], ["z"], name="inner", domain="my.ops", lines=["x = 1", PLAIN])
    then = helper.make_graph(
        [carrier], "then", [], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3])]
    )
    branch = helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=then)
    body = helper.make_node("Run", ["a"], ["b"], name="fn_node", domain=CONTRIB, script=PAYLOAD)
    function = helper.make_function("local", "Fn", ["a"], ["b"], [body], [helper.make_opsetid(CONTRIB, 1)])
    path = _model(tmp_path, [branch], domains=(CONTRIB, "my.ops", "local"), functions=[function])
    code = {f.location.split(" ", 1)[1]: f for f in _findings(path)["onnx-python-code"]}
    assert set(code) == {"graph › node branch › then_branch › node inner",
                         "graph › node branch › else_branch › node inner",
                         "function Fn › node fn_node"}  # fmt: skip
    assert "attribute lines" in code["graph › node branch › then_branch › node inner"].evidence


def test_a_contrib_op_registered_at_runtime_is_only_the_domain_finding(tmp_path: Path) -> None:
    # onnxruntime-extensions' @onnx_op: the node names the function; its string attributes are data.
    node = helper.make_node(
        "GPT2Tokenizer",
        ["x"],
        ["y"],
        name="tok",
        domain=CONTRIB,
        vocab='{"hello": 1, "world": 2}',
        merges="h e\nl l\nhe ll",
        pattern=r"'s|'t|\s+(?!\S)|\s+",
        padding_length=8,
    )
    found = _findings(_model(tmp_path, [node]))
    assert set(found) == {"onnx-custom-domain"}
    (domain,) = found["onnx-custom-domain"]
    assert domain.severity == "medium" and "GPT2Tokenizer" in domain.evidence
    assert "registers" in domain.message and "carries no code" in domain.message


def test_python_source_in_a_standard_op_is_inert(tmp_path: Path) -> None:
    value = helper.make_tensor("s", TensorProto.STRING, [1], [PAYLOAD.encode()])
    const = helper.make_node("Constant", [], ["y"], name="c", value=value)
    tagged = helper.make_node("Identity", ["x"], ["w"], name="i")
    tagged.doc_string = PAYLOAD
    assert "onnx-python-code" not in _findings(_model(tmp_path, [const, tagged], domains=()))


@pytest.mark.parametrize(
    ("module", "name", "severity"),
    [("mymodule", "Multi_1", "high"), ("os", "system", "critical")],
)
def test_language_interop_pyop_names_a_module(tmp_path: Path, module: str, name: str, severity: str) -> None:
    attrs = {"module": module, ("function" if module == "os" else "class_name"): name}
    node = helper.make_node(
        "PyOp",
        ["x"],
        ["y"],
        name="py1",
        domain="pyopmulti_1",
        input_types=[TensorProto.FLOAT],
        output_types=[TensorProto.FLOAT],
        **attrs,
    )
    (finding,) = _findings(_model(tmp_path, [node], domains=("pyopmulti_1",)))["onnx-python-module"]
    assert finding.severity == severity
    assert finding.evidence == f"pyopmulti_1::PyOp 'py1' module={module} {name}"


@pytest.mark.parametrize(
    "text",
    [
        "relu",
        "ij,jk->ik",
        '{"a": [1, 2], "b": null}',
        r"\s+(?!\S)|\w+",
        "x + 1 * y",
        "max(x, y)",
        "NCHW",
        "h e\nl l\n",
        "a, b, c",
        "The quick brown fox\njumps over the lazy dog",
    ],
)
def test_data_strings_are_not_python_source(text: str) -> None:
    assert python_source(text) is None


@pytest.mark.parametrize(
    "text",
    [PAYLOAD, PLAIN, "import os", "lambda x: x + 1", "exec('print(1)')", "y = np.tanh(x)\nreturn_value = y"],
)
def test_code_strings_are_python_source(text: str) -> None:
    assert python_source(text) is not None


def test_cli_reports_the_node_and_exits_1(tmp_path: Path) -> None:
    node = helper.make_node("PyFunc", ["x"], ["y"], name="evil", domain=CONTRIB, code=PAYLOAD)
    path = _model(tmp_path, [node])
    result = run_cli("scan", "--json", str(path))
    assert result.returncode == 1, result.stderr
    rules = {f["rule"] for r in json.loads(result.stdout)["files"] for f in r["findings"]}
    assert {"onnx-python-code", "onnx-custom-domain"} <= rules
