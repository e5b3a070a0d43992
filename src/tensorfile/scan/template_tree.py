"""Parse a Jinja2 template (never render it) and walk its syntax tree for sandbox escapes."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .template_findings import Hit, short
from .template_fold import MAX_FOLD, NOTHING, PERCENT_SPEC, Folder
from .template_names import (
    ATTRIBUTE_FILTERS,
    CHAR_FUNCS,
    DANGEROUS_ATTRS,
    DANGEROUS_KEYS,
    DECODE_FILTERS,
    DUNDER_RE,
    ESCAPE_DUNDER_RE,
    ESCAPE_GLOBALS,
    GENERATOR_FILTERS,
    PY_BUILTINS,
    PY_MODULES,
    STRINGIFY_FILTERS,
    dangerous_text,
    decode_payload,
    is_dunder,
)

_EVIDENCE_CHARS = 140


class _GenerationTag(Extension):
    """`{% generation %}…{% endgeneration %}` (transformers' assistant-mask tag): parsed, body kept."""

    tags = {"generation"}  # noqa: RUF012 (jinja's class attribute)

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


# transformers renders with ImmutableSandboxedEnvironment + loopcontrols + its generation tag;
# `do` is accepted too (other renderers have it). Parsing only (`PARSER.parse`): nothing is ever rendered.
PARSER = ImmutableSandboxedEnvironment(
    extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag]
)


class TreeCheck:
    """The checks of one parsed template: `run()` returns a hit for every suspicious node."""

    def __init__(self, tree: nodes.Template) -> None:
        self.tree = tree
        self.hits: list[Hit] = []
        self.accounted: set[int] = set()  # Name nodes whose use was already judged
        self.consumed: set[int] = set()  # Const nodes already reported in attribute position
        self.blocks: set[str] = set()
        assigns: dict[str, list[nodes.Node]] = {}  # names set with {% set %} / {% with %}
        other: set[str] = set()  # names bound by loops, macros, imports
        unknown = nodes.Name("?", "load")
        self.block_text: set[int] = set()  # literal text that becomes a value, not output
        for node in _walk(tree):
            if isinstance(node, nodes.AssignBlock | nodes.Macro | nodes.CallBlock | nodes.FilterBlock):
                self.block_text.update(id(d) for d in _walk(node) if isinstance(d, nodes.TemplateData))
            if isinstance(node, nodes.Assign):
                simple = isinstance(node.target, nodes.Name)
                for target in _targets(node.target):
                    assigns.setdefault(target, []).append(node.node if simple else unknown)
            elif isinstance(node, nodes.AssignBlock):
                text = _literal_body(node) if isinstance(node.target, nodes.Name) else None
                value = nodes.Const(text, lineno=node.lineno) if text is not None else unknown
                for target in _targets(node.target):
                    assigns.setdefault(target, []).append(value)
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    simple = isinstance(target, nodes.Name)
                    for name in _targets(target):
                        assigns.setdefault(name, []).append(value if simple else unknown)
            elif isinstance(node, nodes.For):
                other.update(_targets(node.target))
            elif isinstance(node, nodes.Macro):
                other.add(node.name)
                other.update(a.name for a in node.args)
            elif isinstance(node, nodes.CallBlock):
                other.update(a.name for a in node.args)
            elif isinstance(node, nodes.Import):
                other.add(node.target)
            elif isinstance(node, nodes.FromImport):
                other.update(n if isinstance(n, str) else n[1] for n in node.names)
            elif isinstance(node, nodes.Block):
                self.blocks.add(node.name)
        self.shadowed: set[str] = other | set(assigns)
        single = {n: exprs[0] for n, exprs in assigns.items() if len(exprs) == 1 and n not in other}
        self.fold = Folder(single)

    def hit(self, rule: str, severity: str, node: nodes.Node, evidence: str | None = None) -> None:
        self.hits.append((rule, severity, evidence if evidence is not None else _src(node), node.lineno or 1))

    def run(self) -> list[Hit]:
        for node in _walk(self.tree):
            kind = type(node)
            if kind is nodes.Getattr:
                self._attr(node.node, node.attr, node)
            elif kind is nodes.Getitem:
                self._item(node)
            elif kind is nodes.Filter:
                self._filter(node)
            elif kind is nodes.Call:
                self._call(node)
            elif kind is nodes.Test:
                if isinstance(node.node, nodes.Name):
                    self.accounted.add(id(node.node))
            elif kind is nodes.Name:
                self._name(node)
            elif kind is nodes.Const:
                self._const(node)
            elif kind is nodes.TemplateData:
                if id(node) in self.block_text and DUNDER_RE.search(node.data):
                    self.hit("template-dunder-string", "high", node, short(node.data, 60))
            elif kind is nodes.Keyword:
                if is_dunder(node.key):
                    self.hit("template-dunder-string", "high", node, f"{node.key}=…")
            elif kind is nodes.Mod:
                self._percent(node.left, node)
            elif kind in (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends):
                self._include(node)
            if kind in _COMPOSITE:
                self._constructed(node)
        return self.hits

    # -- attribute and item access ----------------------------------------------------------

    def _base(self, base: nodes.Node, name: str | None, node: nodes.Node) -> None:
        if not isinstance(base, nodes.Name) or base.name in self.shadowed:
            return
        self.accounted.add(id(base))
        if base.name in ESCAPE_GLOBALS:
            if base.name == "self" and name in self.blocks:
                return
            self.hit("template-global-escape", "critical", node)
        elif base.name in PY_MODULES:
            self.hit("template-python-module", "critical", node)

    def _attr_name(self, name: str, node: nodes.Node) -> None:
        if is_dunder(name):
            self.hit("template-dunder-access", "critical", node)
        elif name in DANGEROUS_ATTRS:
            self.hit("template-dangerous-attribute", "high", node)
        elif name.startswith("_"):
            self.hit("template-private-attribute", "medium", node)

    def _attr(self, base: nodes.Node, name: str, node: nodes.Node) -> None:
        self._attr_name(name, node)
        self._base(base, name, node)

    def _item(self, node: nodes.Getitem) -> None:
        if isinstance(node.arg, nodes.Slice):
            return
        key = self.fold.value(node.arg)
        if isinstance(key, str):
            if isinstance(node.arg, nodes.Const):
                self.consumed.add(id(node.arg))
            if is_dunder(key) or DUNDER_RE.search(key):
                self.hit("template-dunder-access", "critical", node)
            elif key in DANGEROUS_KEYS:
                self.hit("template-dangerous-attribute", "high", node)
        self._base(node.node, key if isinstance(key, str) else None, node)

    def _dotted(self, value: Any, arg: nodes.Node | None, node: nodes.Node) -> None:
        """An attribute path given to a filter (`map(attribute="a.b")`)."""
        if value is NOTHING:
            self.hit("template-dynamic-attribute", "high", node)
            return
        if not isinstance(value, str):
            return
        if isinstance(arg, nodes.Const):
            self.consumed.add(id(arg))
        for part in value.split("."):
            if not part.isdigit():
                self._attr_name(part, node)

    # -- filters and calls -----------------------------------------------------------------

    def _filter(self, node: nodes.Filter) -> None:
        name = node.name
        base = node.node
        if name == "attr":
            arg = node.args[0] if node.args else None
            value = self.fold.value(arg) if arg is not None else NOTHING
            if isinstance(value, str):
                if isinstance(arg, nodes.Const):
                    self.consumed.add(id(arg))
                self._attr_name(value, node)
                if base is not None:
                    self._base(base, value, node)
            else:
                self.hit("template-dynamic-attribute", "high", node)
                if base is not None:
                    self._base(base, None, node)
            return
        if isinstance(base, nodes.Name) and base.name in ESCAPE_GLOBALS and base.name not in self.shadowed:
            self.accounted.add(id(base))
            if name in STRINGIFY_FILTERS:
                self.hit("template-char-harvest", "high", node)
            else:
                self.hit("template-global-reference", "medium", node)
        if name in ATTRIBUTE_FILTERS:
            self._attribute_filter(node)
        if name in DECODE_FILTERS:
            self.hit("template-decode-filter", "high", node)
        if name == "string" and isinstance(base, nodes.Filter) and base.name in GENERATOR_FILTERS:
            self.hit("template-char-harvest", "high", node)
        if name == "format" and base is not None:
            self._percent(base, node)

    def _attribute_filter(self, node: nodes.Filter) -> None:
        name = node.name
        keyword = next((k.value for k in node.kwargs if k.key == "attribute"), None)
        if name == "map":
            if keyword is not None:
                self._dotted(self.fold.value(keyword), keyword, node)
            elif node.args:
                first = self.fold.value(node.args[0])
                if first == "attr":
                    arg = node.args[1] if len(node.args) > 1 else None
                    self._dotted(self.fold.value(arg) if arg is not None else NOTHING, arg, node)
                elif first is NOTHING:
                    self.hit("template-dynamic-attribute", "high", node)
                elif isinstance(first, str) and first in DECODE_FILTERS:
                    self.hit("template-decode-filter", "high", node)
            return
        position = ATTRIBUTE_FILTERS[name]
        arg = keyword
        if arg is None and position is not None and len(node.args) > position:
            arg = node.args[position]
        if arg is not None:
            self._dotted(self.fold.value(arg), arg, node)

    def _call(self, node: nodes.Call) -> None:
        func = node.node
        if isinstance(func, nodes.Name) and func.name not in self.shadowed:
            self.accounted.add(id(func))
            if func.name in PY_BUILTINS:
                self.hit("template-python-builtin", "critical", node)
                if func.name in ("getattr", "setattr", "delattr") and len(node.args) >= 2:
                    value = self.fold.value(node.args[1])
                    if isinstance(node.args[1], nodes.Const):
                        self.consumed.add(id(node.args[1]))
                    if isinstance(value, str):
                        self._attr(node.args[0], value, node)
                    else:
                        self.hit("template-dynamic-attribute", "high", node)
            elif func.name in CHAR_FUNCS:
                self.hit("template-char-construction", "high", node)
        elif isinstance(func, nodes.Getattr) and func.attr in ("format", "format_map"):
            fmt = self.fold.value(func.node)
            if isinstance(fmt, str):
                self._format_fields(fmt, node)

    def _format_fields(self, fmt: str, node: nodes.Node) -> None:
        try:
            fields = list(string.Formatter().parse(fmt[:MAX_FOLD]))
        except ValueError:
            return
        for _literal, field, spec, _conversion in fields:
            if field and re.search(r"[.\[]", field):
                names = re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", field)
                parts = [a or b for a, b in names]
                if any(is_dunder(p) or DUNDER_RE.search(p) for p in parts):
                    self.hit("template-dunder-access", "critical", node)
                else:
                    self.hit("template-format-attribute", "high", node)
            if spec and spec.rstrip().endswith("c"):
                self.hit("template-char-construction", "high", node)

    def _percent(self, fmt_node: nodes.Node, node: nodes.Node) -> None:
        fmt = self.fold.value(fmt_node)
        if isinstance(fmt, str) and any(m.group(5) == "c" for m in PERCENT_SPEC.finditer(fmt[:MAX_FOLD])):
            self.hit("template-char-construction", "high", node)

    # -- names and strings -----------------------------------------------------------------

    def _name(self, node: nodes.Name) -> None:
        if node.ctx != "load":
            return
        if is_dunder(node.name):
            self.hit("template-dunder-access", "critical", node)
            return
        if node.name in self.shadowed or id(node) in self.accounted:
            return
        if node.name in ESCAPE_GLOBALS:
            self.hit("template-global-reference", "medium", node)

    def _const(self, node: nodes.Const) -> None:
        value = node.value
        if not isinstance(value, str) or id(node) in self.consumed or len(value) > 1 << 20:
            return
        if ESCAPE_DUNDER_RE.search(value) or (len(value) <= 40 and DUNDER_RE.search(value)):
            # long text may quote code ("if __name__ == '__main__'"); escape names never appear
            self.hit("template-dunder-string", "high", node)
            return
        decoded = decode_payload(value)
        if decoded is not None:
            self.hit("template-encoded-payload", "high", node, f"{short(value, 40)} → {short(decoded, 60)}")

    def _constructed(self, node: nodes.Node) -> None:
        folded = self.fold.fold(node)
        if folded is None:
            return
        value, leaves = folded
        if not isinstance(value, str) or not value:
            return
        word = dangerous_text(value)
        if word is None:
            return
        if any(word in leaf or word.lower() in leaf.lower() for leaf in leaves):
            return  # written plainly somewhere: not built from pieces (plain strings are judged as such)
        self.hit("template-constructed-name", "high", node, f"{_src(node)} → {short(value, 60)!r}")

    def _include(self, node: nodes.Node) -> None:
        target = node.template
        value = self.fold.value(target)
        paths = value if isinstance(value, list) else [value]
        risky = any(
            not isinstance(p, str) or p.startswith(("/", "\\", "~")) or ".." in p or ":" in p for p in paths
        )
        severity = "high" if risky else "medium"
        self.hit("template-include", severity, node, f"{type(node).__name__.lower()} {_src(target)}")


_COMPOSITE = (
    nodes.Concat,
    nodes.Add,
    nodes.Mul,
    nodes.Mod,
    nodes.Filter,
    nodes.Call,
    nodes.Getitem,
)


def _walk(tree: nodes.Node) -> Iterator[nodes.Node]:
    """Every node, parents before children, without recursion."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        children = list(node.iter_child_nodes())
        children.reverse()
        stack.extend(children)


def _literal_body(node: nodes.AssignBlock) -> str | None:
    """The text of `{% set x %}text{% endset %}` when the body is plain text."""
    if node.filter is not None:
        return None
    parts: list[str] = []
    for item in node.body:
        if not isinstance(item, nodes.Output):
            return None
        for piece in item.nodes:
            if not isinstance(piece, nodes.TemplateData):
                return None
            parts.append(piece.data)
    return "".join(parts)[:MAX_FOLD]


def _targets(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple | nodes.List):
        return [n for item in target.items for n in _targets(item)]
    return []


def _src(node: nodes.Node | None, depth: int = 0) -> str:
    """A short Jinja-like rendering of an expression, for evidence."""
    return short(_render(node, depth), _EVIDENCE_CHARS)


def _render(node: nodes.Node | None, depth: int = 0) -> str:
    if node is None:
        return ""
    if depth > 12:
        return "…"
    d = depth + 1
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value) if not isinstance(node.value, str) else repr(short(node.value, 50))
    if isinstance(node, nodes.Getattr):
        return f"{_render(node.node, d)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_render(node.node, d)}[{_render(node.arg, d)}]"
    if isinstance(node, nodes.Slice):
        step = f":{_render(node.step, d)}" if node.step is not None else ""
        return f"{_render(node.start, d)}:{_render(node.stop, d)}{step}"
    if isinstance(node, nodes.Call | nodes.Filter):
        args = [_render(a, d) for a in node.args[:4]] + [
            f"{k.key}={_render(k.value, d)}" for k in node.kwargs[:3]
        ]
        inner = ", ".join(args)
        if isinstance(node, nodes.Call):
            return f"{_render(node.node, d)}({inner})"
        head = f"{_render(node.node, d)}|" if node.node is not None else "|"
        return f"{head}{node.name}({inner})" if inner else f"{head}{node.name}"
    if isinstance(node, nodes.Concat):
        return " ~ ".join(_render(n, d) for n in node.nodes[:6])
    if isinstance(node, nodes.BinExpr):
        return f"{_render(node.left, d)} {node.operator} {_render(node.right, d)}"
    if isinstance(node, nodes.List | nodes.Tuple):
        items = ", ".join(_render(n, d) for n in node.items[:6])
        return f"[{items}]" if isinstance(node, nodes.List) else f"({items})"
    if isinstance(node, nodes.Dict):
        return "{…}"
    if isinstance(node, nodes.Test):
        return f"{_render(node.node, d)} is {node.name}"
    return type(node).__name__
