"""ONNX nodes that bring Python with them: source code in an attribute, or a module to import.

Three ways a Python function reaches an ONNX graph, and what the model file itself carries:

- onnxruntime-extensions' PyOp (`@onnx_op(op_type=...)`): a node of domain `ai.onnx.contrib`
  names an op type; onnxruntime calls the Python function that the *loading program* registered
  under that name. The model carries no code, only the name (and string attributes handed to the
  function): lower risk, reported with the custom domain.
- onnxruntime's language-interop `PyOp` (a build with --enable_language_interop_ops): the node's
  `module` and `class_name` (early builds: `function`) attributes make onnxruntime import that
  module and call into it. The model names code that is installed elsewhere, as a pickle global does.
- Python source in a string attribute of a custom-domain node: an op implementation that compiles
  its attribute runs code shipped inside the model. That is the high-risk case.

Only non-standard domains are looked at: the ops of the ONNX standard never execute a string.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..formats.onnx import MAX_GRAPH_DEPTH, Message
from ..protowire import LEN
from ..source import CachedSource, open_source
from .findings import Finding
from .rules import classify

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"})
_MAX_ATTRIBUTE = 1 << 20  # a string attribute longer than this is looked at in its first MiB only
_EXCERPT = 80
_HINT = re.compile(
    r"(?m)^[ \t]*(?:def|class|import|from|async[ \t]+def|lambda|for|while|with|try)\b"
    r"|\b(?:exec|eval|compile|__import__|getattr|open)[ \t]*\(|\blambda\b"
)
_STRUCTURE = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Import,
    ast.ImportFrom,
    ast.Lambda,
    ast.For,
    ast.While,
    ast.With,
    ast.Try,
)


@dataclass
class OnnxNodeFacts:
    """What the node walk found: code-carrying nodes as findings, custom op types per domain."""

    findings: list[Finding] = field(default_factory=list)
    op_types: dict[str, set[str]] = field(default_factory=dict)


def check_onnx_nodes(path: Path) -> OnnxNodeFacts:
    """Walk every node (main graph, subgraphs, model-local functions) of the ONNX file at `path`."""
    facts = OnnxNodeFacts()
    with open_source(path) as raw:
        model = Message(CachedSource(raw), 0, raw.size)
        for number, wire, offset, length in model.fields():
            if wire != LEN:
                continue
            if number == 7:  # ModelProto.graph
                _graph(model.sub(offset, length), "graph", 0, path, facts)
            elif number == 25:  # ModelProto.functions: FunctionProto.node is field 7
                function = model.sub(offset, length)
                name = _first_text(function, 1) or "?"
                for node in _repeated(function, 7):
                    _node(node, f"function {name}", 0, path, facts)
    return facts


def _graph(msg: Message, where: str, depth: int, path: Path, facts: OnnxNodeFacts) -> None:
    for node in _repeated(msg, 1):  # GraphProto.node
        _node(node, where, depth, path, facts)


def _node(msg: Message, where: str, depth: int, path: Path, facts: OnnxNodeFacts) -> None:
    name = op_type = domain = ""
    attributes: list[Message] = []
    for number, wire, offset, length in msg.fields():
        if wire != LEN:
            continue
        if number == 3:
            name = msg.text(offset, length, limit=256)
        elif number == 4:
            op_type = msg.text(offset, length, limit=256)
        elif number == 7:
            domain = msg.text(offset, length, limit=256)
        elif number == 5:
            attributes.append(msg.sub(offset, length))
    node = _Node(name or "(unnamed)", domain, op_type, f"{where} › node {name or op_type}", path)
    custom = domain not in STANDARD_DOMAINS
    if custom:
        facts.op_types.setdefault(domain, set()).add(op_type)
    strings: dict[str, str] = {}
    for attribute in attributes:
        attr_name, values, graphs = _attribute(attribute, custom or op_type == "PyOp")
        for value in values:
            strings.setdefault(attr_name, value)
            finding = _code_finding(node, attr_name, value) if custom else None
            if finding is not None:
                facts.findings.append(finding)
        if depth < MAX_GRAPH_DEPTH:  # If/Loop/Scan bodies
            for graph in graphs:
                _graph(graph, f"{node.where} › {attr_name}", depth + 1, path, facts)
    if op_type == "PyOp" and "module" in strings:
        facts.findings.append(_module_finding(node, strings))


@dataclass(frozen=True)
class _Node:
    name: str
    domain: str
    op_type: str
    where: str
    path: Path

    @property
    def label(self) -> str:
        return f"node '{self.name}' ({self.domain or 'ai.onnx'} {self.op_type})"


def _code_finding(node: _Node, attr_name: str, value: str) -> Finding | None:
    tree = python_source(value)
    if tree is None:
        return None
    severity, reason = "high", ""
    for dotted in _called_names(tree):
        module, _, func = dotted.rpartition(".")
        verdict = classify(module or "builtins", func, "called")
        if verdict.severity == "critical":
            severity, reason = "critical", f" It calls {dotted}, which {verdict.reason}."
            break
    return Finding(
        "onnx-python-code",
        severity,
        f"The {node.label} carries Python source in its attribute '{attr_name}': an implementation of "
        f"this custom op that compiles the attribute runs code shipped inside the model.{reason}",
        f"{node.domain}::{node.op_type} '{node.name}' attribute {attr_name}: {excerpt(value)}",
        f"{node.path.name} {node.where}",
        "do not run this model with custom-op libraries that execute attributes; remove the node",
    )


def _module_finding(node: _Node, strings: dict[str, str]) -> Finding:
    module = strings["module"]
    target = strings.get("class_name") or strings.get("function") or ""
    verdict = classify(module, target or "?", "called")
    critical = verdict.severity == "critical"
    return Finding(
        "onnx-python-module",
        "critical" if critical else "high",
        f"The {node.label} makes onnxruntime's Python operator (language-interop builds) import "
        f"{module} and call {target or 'into it'}"
        + (f", which {verdict.reason}." if critical else ": code outside the model runs when it is."),
        f"{node.domain}::{node.op_type} '{node.name}' module={module} {target}".rstrip(),
        f"{node.path.name} {node.where}",
        "run it only where that module is known and reviewed",
    )


def python_source(text: str) -> ast.Module | None:
    """The parse tree when `text` is Python code (definitions, imports, statements with calls), else None.

    Parsing never runs anything. Plain words, JSON, regular expressions, einsum equations and
    arithmetic formulas are not code: they have no definition, import or call statement.
    """
    if len(text) < 8 or not (_HINT.search(text) or "\n" in text.strip()):
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    nodes = list(_bounded_walk(tree))
    if any(isinstance(n, _STRUCTURE) for n in nodes):
        return tree
    calls = [n for n in nodes if isinstance(n, ast.Call)]
    if not calls:
        return None
    if len(tree.body) > 1 or any(isinstance(n, (ast.Assign, ast.AugAssign)) for n in nodes):
        return tree
    return tree if any(_dotted(c.func) in ("exec", "eval", "compile", "__import__") for c in calls) else None


def _bounded_walk(tree: ast.AST, limit: int = 100_000) -> Iterator[ast.AST]:
    for count, node in enumerate(ast.walk(tree)):
        if count >= limit:
            return
        yield node


def _called_names(tree: ast.AST) -> Iterator[str]:
    for node in _bounded_walk(tree):
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted:
                yield dotted


def _dotted(func: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return ""
    parts.append(func.id)
    return ".".join(reversed(parts))


def excerpt(text: str) -> str:
    """The first lines of the source on one line, cut to a short quote."""
    flat = " ⏎ ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def _attribute(msg: Message, read_strings: bool) -> tuple[str, list[str], list[Message]]:
    """An AttributeProto's name, UTF-8 string values (.s 4, .strings 9), subgraphs (.g 6, .graphs 11)."""
    name, values, graphs = "?", [], []
    for number, wire, offset, length in msg.fields():
        if wire != LEN:
            continue
        if number == 1:
            name = msg.text(offset, length, limit=256)
        elif number in (4, 9) and read_strings:
            data = msg.source.read_at(offset, min(length, _MAX_ATTRIBUTE))
            if length > _MAX_ATTRIBUTE:  # cut at a line end, where a cut program still parses
                data = data[: data.rfind(b"\n") + 1]
            try:
                values.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                continue
        elif number in (6, 11):
            graphs.append(msg.sub(offset, length))
    return name, values, graphs


def _repeated(msg: Message, number: int) -> Iterator[Message]:
    for n, wire, offset, length in msg.fields():
        if n == number and wire == LEN:
            yield msg.sub(offset, length)


def _first_text(msg: Message, number: int) -> str | None:
    for n, wire, offset, length in msg.fields():
        if n == number and wire == LEN:
            return msg.text(offset, length, limit=256)
    return None
