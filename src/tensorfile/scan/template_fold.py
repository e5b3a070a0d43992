"""Constant folding of Jinja expressions: only pure string and number operations, on constants,
with caps, so that a name spelled in pieces (joins, `~`, `|format`, `|replace`, `|reverse`,
slicing, `chr`, `dict(...)|join`, `{% set %}` constants) is seen whole. Nothing is rendered.
"""

from __future__ import annotations

import re
import string
from typing import Any

from jinja2 import nodes

from .template_names import CHAR_FUNCS

MAX_FOLD = 4096  # longest string built by constant folding
_MAX_FOLD_DEPTH = 60
PERCENT_SPEC = re.compile(
    r"%(?:\((\w{1,40})\))?([#0\- +]{0,5})(\d{0,3})(?:\.(\d{0,3}))?([diouxXeEfFgGcrsa%])"
)
_PERCENT_ANY = re.compile(r"%")
_BRACE_SPEC = re.compile(r"^[<>=^]?[+\- ]?#?0?\d{0,3}[,_]?(?:\.\d{0,3})?[bcdeEfFgGnosxX%]?$")
NOTHING = object()


class Folder:
    """Folds the expressions of one template; `assigns` are its names set once to an expression."""

    def __init__(self, assigns: dict[str, nodes.Node]) -> None:
        self.assigns = assigns
        self.cache: dict[int, tuple[Any, tuple[str, ...]] | None] = {}
        self.active: set[str] = set()

    def value(self, node: nodes.Node | None) -> Any:
        """The folded value, or NOTHING when it depends on render-time data."""
        if node is None:
            return NOTHING
        folded = self.fold(node)
        return NOTHING if folded is None else folded[0]

    def fold(self, node: nodes.Node, depth: int = 0) -> tuple[Any, tuple[str, ...]] | None:
        key = id(node)
        if key in self.cache:
            return self.cache[key]
        if depth > _MAX_FOLD_DEPTH:
            return None
        try:
            result = self._fold(node, depth + 1)
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError, MemoryError):
            result = None
        if result is not None and not _small(result[0]):
            result = None
        self.cache[key] = result
        return result

    def _fold(self, node: nodes.Node, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        if isinstance(node, nodes.Const):
            value = node.value
            if isinstance(value, str | int | float | bool) or value is None:
                return value, ((value,) if isinstance(value, str) else ())
            return None
        if isinstance(node, nodes.List | nodes.Tuple):
            return self._all(node.items, depth, list)
        if isinstance(node, nodes.Dict):
            keys = self._all([p.key for p in node.items], depth, list)
            if keys is None or not all(isinstance(k, str) for k in keys[0]):
                return None
            return dict.fromkeys(keys[0], 0), keys[1]
        if isinstance(node, nodes.Name):
            expr = self.assigns.get(node.name)
            if expr is None or node.name in self.active:
                return None
            self.active.add(node.name)
            try:
                return self.fold(expr, depth)
            finally:
                self.active.discard(node.name)
        if isinstance(node, nodes.Concat):
            parts = self._all(node.nodes, depth, list)
            if parts is None:
                return None
            return "".join(_text(v) for v in parts[0]), parts[1]
        if isinstance(node, nodes.BinExpr):
            return self._binary(node, depth)
        if isinstance(node, nodes.Neg | nodes.Pos):
            inner = self.fold(node.node, depth)
            if inner is None or not isinstance(inner[0], int | float):
                return None
            return (-inner[0] if isinstance(node, nodes.Neg) else inner[0]), ()
        if isinstance(node, nodes.Filter):
            return self._filter(node, depth)
        if isinstance(node, nodes.Call):
            return self._call(node, depth)
        if isinstance(node, nodes.Getitem):
            return self._getitem(node, depth)
        return None

    def _all(self, items: list[nodes.Node], depth: int, kind: type) -> tuple[Any, tuple[str, ...]] | None:
        values: list[Any] = []
        leaves: tuple[str, ...] = ()
        for item in items[:256]:
            folded = self.fold(item, depth)
            if folded is None:
                return None
            values.append(folded[0])
            leaves += folded[1]
        if len(items) > 256:
            return None
        return kind(values), leaves

    def _binary(self, node: nodes.BinExpr, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        left = self.fold(node.left, depth)
        right = self.fold(node.right, depth)
        if left is None or right is None:
            return None
        a, b = left[0], right[0]
        leaves = left[1] + right[1]
        if isinstance(node, nodes.Add):
            if isinstance(a, str) and isinstance(b, str):
                return a + b, leaves
            if isinstance(a, list) and isinstance(b, list):
                return a + b, leaves
            if _number(a) and _number(b):
                return a + b, leaves
            return None
        if isinstance(node, nodes.Mul):
            if isinstance(a, str | list) and isinstance(b, int) and not isinstance(b, bool):
                return (a * b if len(a) * max(b, 0) <= MAX_FOLD else None), leaves
            if isinstance(b, str | list) and isinstance(a, int) and not isinstance(a, bool):
                return (b * a if len(b) * max(a, 0) <= MAX_FOLD else None), leaves
            if _number(a) and _number(b) and abs(a) < 1e9 and abs(b) < 1e9:
                return a * b, leaves
            return None
        if isinstance(node, nodes.Mod):
            if isinstance(a, str):
                formatted = _percent_format(a, b)
                return None if formatted is None else (formatted, leaves)
            if _number(a) and _number(b):
                return a % b, leaves
            return None
        if isinstance(node, nodes.Sub | nodes.FloorDiv | nodes.Div) and _number(a) and _number(b):
            if isinstance(node, nodes.Sub):
                return a - b, leaves
            return (a // b if isinstance(node, nodes.FloorDiv) else a / b), leaves
        return None

    def _args(
        self, node: nodes.Filter | nodes.Call, depth: int
    ) -> tuple[list[Any], dict[str, Any], tuple[str, ...]] | None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        args = self._all(node.args, depth, list)
        if args is None:
            return None
        kwargs: dict[str, Any] = {}
        leaves = args[1]
        for keyword in node.kwargs:
            folded = self.fold(keyword.value, depth)
            if folded is None:
                return None
            kwargs[keyword.key] = folded[0]
            leaves += folded[1]
        return args[0], kwargs, leaves

    def _filter(self, node: nodes.Filter, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        if node.node is None:
            return None
        base = self.fold(node.node, depth)
        if base is None:
            return None
        got = self._args(node, depth)
        if got is None:
            return None
        args, kwargs, leaves = got
        value = base[0]
        leaves = base[1] + leaves
        result = _apply_filter(node.name, value, args, kwargs)
        return None if result is NOTHING else (result, leaves)

    def _call(self, node: nodes.Call, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        func = node.node
        got = self._args(node, depth)
        if got is None:
            return None
        args, kwargs, leaves = got
        if isinstance(func, nodes.Name):
            if (
                func.name in CHAR_FUNCS
                and len(args) == 1
                and isinstance(args[0], int)
                and 0 <= args[0] < 0x110000
            ):
                return chr(args[0]), leaves
            if func.name == "dict" and not args:
                return dict(kwargs), leaves + tuple(kwargs)
            return None
        if not isinstance(func, nodes.Getattr):
            return None
        base = self.fold(func.node, depth)
        if base is None:
            return None
        result = _apply_method(func.attr, base[0], args, kwargs)
        return None if result is NOTHING else (result, base[1] + leaves)

    def _getitem(self, node: nodes.Getitem, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        base = self.fold(node.node, depth)
        if base is None or not isinstance(base[0], str | list):
            return None
        seq = base[0]
        if isinstance(node.arg, nodes.Slice):
            bounds = []
            for part in (node.arg.start, node.arg.stop, node.arg.step):
                if part is None:
                    bounds.append(None)
                    continue
                folded = self.fold(part, depth)
                if folded is None or not isinstance(folded[0], int):
                    return None
                bounds.append(folded[0])
            if bounds[2] == 0:
                return None
            return seq[slice(*bounds)], base[1]
        index = self.fold(node.arg, depth)
        if index is None or not isinstance(index[0], int):
            return None
        return seq[index[0]], base[1]


def _apply_filter(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if name == "join":
        sep = args[0] if args else kwargs.get("d", "")
        if not isinstance(sep, str) or len(args) > 1 or "attribute" in kwargs:
            return NOTHING
        items = list(value) if isinstance(value, list | dict | str) else None
        return NOTHING if items is None else sep.join(_text(v) for v in items)
    if name == "replace" and isinstance(value, str):
        if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            count = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
            if args[0] == "" or len(value) * (len(args[1]) + 1) > MAX_FOLD:
                return NOTHING
            return value.replace(args[0], args[1], count)
        return NOTHING
    if name == "reverse" and isinstance(value, str | list):
        return value[::-1]
    if name in ("lower", "upper", "title", "capitalize") and isinstance(value, str):
        return getattr(str, name)(value)
    if name == "trim" and isinstance(value, str):
        chars = args[0] if args and isinstance(args[0], str) else None
        return value.strip(chars)
    if name == "string":
        return _text(value) if isinstance(value, str | int | float | bool) or value is None else NOTHING
    if name == "list" and isinstance(value, str | list | dict):
        return list(value)
    if name in ("first", "last") and isinstance(value, str | list | dict) and len(value):
        items = list(value)
        return items[0] if name == "first" else items[-1]
    if name == "format" and isinstance(value, str):
        if kwargs and args:
            return NOTHING
        result = _percent_format(value, kwargs if kwargs else (args[0] if len(args) == 1 else list(args)))
        return NOTHING if result is None else result
    if name == "int" and isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            return 0
    return NOTHING


def _apply_method(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return NOTHING
    if name == "join" and len(args) == 1 and isinstance(args[0], list | str | dict):
        return value.join(_text(v) for v in args[0])
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        if args[0] == "" or len(value) * (len(args[1]) + 1) > MAX_FOLD:
            return NOTHING
        return value.replace(args[0], args[1])
    if name in ("upper", "lower", "title", "capitalize", "swapcase", "casefold") and not args:
        return getattr(str, name)(value)
    if name in ("strip", "lstrip", "rstrip") and all(isinstance(a, str) for a in args) and len(args) <= 1:
        return getattr(str, name)(value, *args)
    if name == "format":
        result = _brace_format(value, args, kwargs)
        return NOTHING if result is None else result
    return NOTHING


def _percent_format(fmt: str, arg: Any) -> str | None:
    """`fmt % arg` for plain conversions with small widths; None for anything else."""
    values = arg if isinstance(arg, list) else [arg]
    out: list[str] = []
    pos = 0
    index = 0
    for m in _PERCENT_ANY.finditer(fmt):
        if m.start() < pos:
            continue
        spec = PERCENT_SPEC.match(fmt, m.start())
        if spec is None:
            return None
        out.append(fmt[pos : m.start()])
        pos = spec.end()
        key, flags, width, precision, conv = spec.groups()
        if conv == "%":
            out.append("%")
            continue
        if int(width or 0) > 200 or int(precision or 0) > 200:
            return None
        if key is not None:
            if not isinstance(arg, dict) or key not in arg:
                return None
            item = arg[key]
        else:
            if index >= len(values):
                return None
            item = values[index]
            index += 1
        if not (isinstance(item, str | int | float | bool) or item is None):
            return None
        try:
            out.append(f"%{flags}{width}{'.' + precision if precision is not None else ''}{conv}" % (item,))
        except (ValueError, TypeError, OverflowError):
            return None
    out.append(fmt[pos:])
    return "".join(out)


def _brace_format(fmt: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """`fmt.format(...)` for plain fields (no attribute or index lookups); None otherwise."""
    out: list[str] = []
    auto = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if field == "":
            if auto >= len(args):
                return None
            item = args[auto]
            auto += 1
        elif field.isdigit():
            if int(field) >= len(args):
                return None
            item = args[int(field)]
        elif field.isidentifier() and field in kwargs:
            item = kwargs[field]
        else:
            return None
        if not (isinstance(item, str | int | float | bool) or item is None):
            return None
        if conversion == "r":
            item = repr(item)
        elif conversion in ("s", "a"):
            item = str(item)
        if spec and (not _BRACE_SPEC.match(spec) or "{" in spec):
            return None
        try:
            out.append(format(item, spec or ""))
        except (ValueError, TypeError, OverflowError):
            return None
    return "".join(out)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _small(value: Any) -> bool:
    if isinstance(value, str | list | dict):
        return len(value) <= MAX_FOLD
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 1 << 64
    return True


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return str(value) if isinstance(value, int | float | bool) else ""
