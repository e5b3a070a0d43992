"""Chat templates (Jinja2) and config files: server-side template injection and YAML gadgets.

A chat template is a Jinja2 program that the tokenizer runs on every request
(`tokenizer.apply_chat_template`, llama-cpp-python, vLLM, TGI, GGUF front ends). Jinja2 lets a
template walk from any object to Python internals (`''.__class__.__mro__[1].__subclasses__()`,
`cycler.__init__.__globals__.os`), so a hostile template runs commands wherever it is rendered
without a sandbox, or wherever a sandbox escape exists (CVE-2024-34359 in llama-cpp-python).

The template is *parsed*, never rendered: `jinja2`'s parser builds a syntax tree and nothing
else runs. The tree is walked and simple constant expressions are folded (joins, concatenation,
`|format`, `|replace`, `|reverse`, slicing, `chr`, `dict(...)|join`, `{% set %}` constants) so
that names spelled in pieces are seen whole. A template that does not parse is searched as text
for the same names. Normal chat templates (Llama, Qwen, Mistral, Gemma, Phi, DeepSeek, Hermes, …)
use none of this and stay clean.

| rule | sev. | what |
|---|---|---|
| template-dunder-access | critical | attribute, item, `|attr`, `map(attribute=)`, `getattr`, name: `__x__` |
| template-global-escape | critical | attribute/item on a Jinja/Flask global: cycler, joiner, lipsum, |
| | | namespace, range, dict, self, config, request, session, g, url_for, … |
| template-python-module | critical | attribute/item on `os`, `sys`, `subprocess`, `builtins`, … |
| template-python-builtin | critical | calling `eval`, `exec`, `compile`, `getattr`, `globals`, `open`, … |
| template-dangerous-attribute | high | `.popen`, `.system`, `.os`, `.environ`, `.f_globals`, `['eval']` |
| template-dynamic-attribute | high | `|attr(x)`, `map(attribute=x)`, `getattr` with a render-time name |
| template-constructed-name | high | a dunder/dangerous name built from pieces (join, `~`, format, …) |
| template-char-construction | high | characters from codes: `"%c"|format(95)`, `chr(95)`, `'{:c}'` |
| template-escaped-name | high | letters or `_` as escapes in expressions: `'\\x5f'`, `'\\u005f'` |
| template-char-harvest | high | a Jinja global or generator turned into text to pick characters from |
| template-dunder-string | high | a string/keyword spelling an escape dunder: `'__class__'`, `dict(__x__=1)` |
| template-encoded-payload | high | a base64/hex string decoding to Python code or internal names |
| template-decode-filter | high | a filter that decodes or runs data (`b64decode`, `eval`, `shell`, …) |
| template-format-attribute | high | `'{0.attr}'.format(x)` fields (critical when they reach a dunder) |
| template-private-attribute | medium | an attribute starting with `_` (the Jinja sandbox forbids it) |
| template-global-reference | medium | a Jinja/Flask global passed around instead of called |
| template-include | medium | `{% include/import/extends %}` (high with `..`, `/`, or a computed name) |
| template-unparseable | medium | does not parse as Jinja2: only searched as text |
| template-too-large | medium | too much template text to parse: only searched as text (low when |
| | | the strings skipped are not chat templates, e.g. a vocabulary) |
| template-json-unreadable | low | not valid JSON: only searched as text |
| yaml-python-tag | critical | `!!python/object/apply:`, `!!python/object/new:`, `!!python/object:`, |
| | | `!!python/name:`, `!!python/module:` (and `!python/…`): `yaml.unsafe_load` runs them |

One finding is reported per rule and template, with the first few pieces of evidence. Strings that
are not chat templates (any JSON/YAML value holding a tag) are checked the same way, but when they
do not parse only high/critical text matches are kept (a vocabulary may hold "{{ }}").

This module finds the templates in a file (JSON, YAML, template and text files) and shares the
parse budget between them. The checks live beside it: `template_tree` (parse, walk the tree, with
`template_fold` for constant folding), `template_text` (the text search), `yaml_tags`; the names
they judge by are in `template_names`, the rules' wording in `template_findings`.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from jinja2.exceptions import TemplateError

from .findings import Finding, rank
from .template_findings import group_hits, rule_finding, short, worst_first
from .template_text import escaped_names, has_tag, other_template_language, search_text
from .template_tree import PARSER, TreeCheck
from .yaml_tags import PY_TAG_BYTES, python_tag_finding, python_tags

__all__ = ["check_template", "is_template_text", "scan_json_config", "scan_text_template"]

# ---------------------------------------------------------------------------------------------
# Limits: Jinja's parser handles ~0.3 MB/s of dense template text, so what is parsed is bounded;
# whatever is beyond the bounds is still searched as text (linear regular expressions).

MAX_PARSE = 128 * 1024  # one template, in characters (real chat templates are < 50 KB)
MAX_PARSE_TOTAL = 512 * 1024  # all templates of one file
MAX_TEMPLATES = 500  # templates parsed per file (each parse costs ~50 µs even when tiny)
MAX_TEXT = 64 * 1024 * 1024  # text searched at all, per call
MAX_YAML_EVENTS = 4 * 1024 * 1024  # YAML text read scalar by scalar (when PyYAML is installed)

_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
_LOOSE_TEMPLATE_SUFFIXES = (".template", ".tmpl")
_YAML_SUFFIXES = (".yaml", ".yml")


# ---------------------------------------------------------------------------------------------
# Public interface.


def check_template(text: str, where: str = "") -> list[Finding]:
    """Findings for one Jinja2 template (a chat template from JSON, GGUF metadata, a file).

    `where` names the template in the findings' location ("tokenizer_config.json › chat_template").
    Never renders anything; never raises for any input.
    """
    if not isinstance(text, str):
        return []
    scan = _Scan()
    return worst_first(scan.template(text, where, strict=True) + scan.budget_findings())


def scan_json_config(data: bytes, path: str) -> list[Finding]:
    """Every template in a JSON file: `chat_template` (a string, or a list of {name, template}) and
    any other string holding a complete `{{ … }}` or `{% … %}` tag. Keys are not templates.

    JSON Lines are read line by line. Invalid JSON is searched as text and reported
    "template-json-unreadable" (low); a template file that merely starts like JSON ("{%") is
    checked as a template.
    """
    data = bytes(data[:MAX_TEXT])
    encoding = _json_encoding(data)
    if encoding.startswith("utf-8") and not _json_may_hold_templates(data):
        return []
    text = data.decode(encoding, errors="replace")
    if not encoding.startswith("utf-8") and not _json_may_hold_templates(text.encode("utf-8", "replace")):
        return []
    scan = _Scan()
    found: list[Finding] = []
    try:
        docs = _load_json(text)
    except (ValueError, RecursionError, MemoryError) as exc:
        if text.lstrip()[:2] in ("{%", "{{", "{#"):  # a template file that starts like JSON
            return scan_text_template(data, path)
        reason = "nested too deeply" if isinstance(exc, RecursionError) else short(str(exc))
        found += search_text(text, path, spans_only=True)
        found.append(rule_finding("template-json-unreadable", "low", reason, path))
        return worst_first(found)
    for doc in docs:
        found += scan.json_doc(doc, path)
    return worst_first(found + scan.budget_findings())


def scan_text_template(data: bytes, path: str) -> list[Finding]:
    """A template file (.j2/.jinja/.jinja2/.template/.tmpl) or a YAML/text config.

    Template files are parsed whole. YAML is read scalar by scalar when PyYAML is installed (each
    template-like value checked as a template; never constructed), otherwise parsed whole; its
    Python tags are reported either way. Other text is parsed whole when it parses, else searched.
    """
    text = _decode_text(bytes(data[:MAX_TEXT]))
    lower = path.lower()
    scan = _Scan()
    found: list[Finding] = []
    is_template_file = lower.endswith(_TEMPLATE_SUFFIXES)
    is_loose_template = lower.endswith(_LOOSE_TEMPLATE_SUFFIXES)
    is_yaml = lower.endswith(_YAML_SUFFIXES)
    if not is_template_file:
        found += python_tags(text, path)
    if is_template_file or (is_loose_template and not other_template_language(text)):
        found += scan.template(text, path, strict=True)
    elif not has_tag(text):
        if is_yaml or not is_loose_template:
            found += scan.yaml_scalars(text, path, tags_only=True) or []
    else:
        by_scalar = scan.yaml_scalars(text, path) if is_yaml else None
        found += by_scalar if by_scalar is not None else scan.loose_text(text, path)
    return worst_first(_dedupe(found + scan.budget_findings()))


def is_template_text(data: bytes) -> bool:
    """Cheap sniff: does this text hold a Jinja tag (`{{ … }}`, `{% … %}`) or a YAML Python tag?"""
    head = bytes(data[:MAX_TEXT])
    if (b"{{" in head and b"}}" in head) or (b"{%" in head and b"%}" in head):
        return True
    return PY_TAG_BYTES.search(head) is not None


# ---------------------------------------------------------------------------------------------
# The scan of one call (shares the parse budget between the templates of one file).


class _Scan:
    """One call's scan. Parsing is bounded per file (MAX_PARSE_TOTAL characters, MAX_TEMPLATES
    templates); chat templates are checked before other template-like strings."""

    def __init__(self) -> None:
        self.parsed = 0
        self.count = 0
        # strict → [count, first location, its size] of templates only searched as text
        self.skipped: dict[bool, list[Any]] = {True: [0, "", 0], False: [0, "", 0]}

    # -- one template ---------------------------------------------------------------------

    def template(self, text: str, where: str, *, strict: bool) -> list[Finding]:
        """Parse and check; if it cannot be parsed, search it as text (and say so when strict)."""
        if len(text) > MAX_PARSE or self.parsed + len(text) > MAX_PARSE_TOTAL or self.count >= MAX_TEMPLATES:
            skipped = self.skipped[strict]
            if not skipped[0]:
                skipped[1:] = [where, len(text)]
            skipped[0] += 1
            found = search_text(text, where, spans_only=not strict)
            return found if strict else _strong(found)
        self.parsed += len(text)
        self.count += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Jinja's unescaping warns on odd escapes
                tree = PARSER.parse(text)
        except RecursionError:
            return self._unparseable(text, where, "nested too deeply to parse", strict)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            reason = short(getattr(exc, "message", None) or str(exc)) + (f" (line {line})" if line else "")
            return self._unparseable(text, where, reason, strict)
        except Exception as exc:  # hostile input must not escape as anything but a finding
            return self._unparseable(text, where, f"{type(exc).__name__}: {short(str(exc))}", strict)
        try:
            hits = TreeCheck(tree).run()
        except RecursionError:
            return self._unparseable(text, where, "nested too deeply to check", strict)
        except Exception as exc:  # fail closed: say it was not checked rather than crash the scan
            return self._unparseable(text, where, f"could not be checked ({type(exc).__name__})", True)
        hits += escaped_names(text)
        return group_hits(hits, where)

    def _unparseable(self, text: str, where: str, reason: str, strict: bool) -> list[Finding]:
        found = search_text(text, where, spans_only=False)
        if strict:
            found.append(rule_finding("template-unparseable", "medium", reason, where))
            return found
        # text that merely contains braces (a vocabulary, a Go template): only strong signs count
        return _strong(found)

    def budget_findings(self) -> list[Finding]:
        """One finding for all the templates that were only searched as text (too large, too many)."""
        found = []
        for strict, severity in ((True, "medium"), (False, "low")):
            count, where, size = self.skipped[strict]
            if count:
                more = f" and {count - 1} more" if count > 1 else ""
                limits = f"parsed at most {MAX_PARSE:,} each, {MAX_PARSE_TOTAL:,} in all"
                evidence = f"{size:,} characters{more} ({limits})"
                found.append(rule_finding("template-too-large", severity, evidence, where))
        return found

    # -- JSON -----------------------------------------------------------------------------

    def json_doc(self, doc: Any, path: str) -> list[Finding]:
        # (key path, text) of the strings to check: below a "chat_template" key, or holding a tag
        chat: list[tuple[tuple[str, ...], str]] = []
        other: list[tuple[tuple[str, ...], str]] = []
        stack: list[tuple[Any, tuple[str, ...], bool]] = [(doc, (), False)]
        while stack:
            value, keys, strict = stack.pop()
            if isinstance(value, str):
                if strict:
                    chat.append((keys, value))
                elif "{" in value and has_tag(value):
                    other.append((keys, value))
                continue
            if not isinstance(value, list):
                continue
            deeper = len(keys) < 64
            if isinstance(value, _Obj):
                for key, child in value:
                    is_chat = "chat_template" in key.lower()
                    if isinstance(child, str):
                        if not (strict or is_chat or "{" in child):
                            continue
                    elif not isinstance(child, list):
                        continue
                    label = key
                    if key == "template" and isinstance(child, str):
                        name = next((v for k, v in value if k == "name" and isinstance(v, str)), None)
                        label = f"{key} ({short(name, 40)})" if name else key
                    stack.append((child, (*keys, label) if deeper else keys, strict or is_chat))
            else:
                for i, child in enumerate(value):
                    if isinstance(child, list) or (isinstance(child, str) and (strict or "{" in child)):
                        stack.append((child, (*keys, f"[{i}]") if deeper else keys, strict))
        found: list[Finding] = []
        for strict, items in ((True, chat), (False, other)):
            for keys, text in reversed(items):  # document order
                found += self.template(text, _join(path, _label(keys)), strict=strict)
        return found

    # -- YAML and other text --------------------------------------------------------------

    def yaml_scalars(self, text: str, path: str, *, tags_only: bool = False) -> list[Finding] | None:
        """Read YAML events (never constructing anything): Python tags and template-like scalars.

        None when PyYAML is missing or the text is not YAML (the caller falls back to text).
        """
        if len(text) > MAX_YAML_EVENTS:
            return None
        try:
            import yaml
        except ImportError:
            return None
        loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        found: list[Finding] = []
        # per open collection: [is_mapping, expecting_key, last_key, index, key path]
        stack: list[list[Any]] = []
        try:
            for event in yaml.parse(text, Loader=loader):
                tag = getattr(event, "tag", None)
                if isinstance(tag, str) and "python/" in tag:
                    found += python_tag_finding(tag, path, event.start_mark.line + 1)
                kind = type(event).__name__
                if kind in ("MappingStartEvent", "SequenceStartEvent"):
                    label = _yaml_child(stack)
                    stack.append([kind == "MappingStartEvent", True, "", 0, label])
                elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                    if stack:
                        stack.pop()
                elif kind in ("ScalarEvent", "AliasEvent"):
                    is_key = bool(stack) and stack[-1][0] and stack[-1][1]
                    label = _yaml_child(stack, key_value=event.value if kind == "ScalarEvent" else "*")
                    if kind == "ScalarEvent" and not is_key and not tags_only:
                        value = event.value
                        strict = "chat_template" in label.lower()
                        if strict or ("{" in value and has_tag(value)):
                            where = _join(
                                path, f"{label or 'document'} (YAML line {event.start_mark.line + 1})"
                            )
                            found += self.template(value, where, strict=strict)
        except (yaml.YAMLError, RecursionError, MemoryError, ValueError):
            return found if tags_only else None
        return found

    def loose_text(self, text: str, path: str) -> list[Finding]:
        """Text that may or may not be a template: parse it whole; if that fails, search it."""
        if other_template_language(text):
            return _strong(search_text(text, path, spans_only=True))
        return self.template(text, path, strict=False)


def _join(path: str, label: str) -> str:
    if not path:
        return label
    return f"{path} › {label}" if label else path


def _strong(found: list[Finding]) -> list[Finding]:
    return [f for f in found if rank(f.severity) >= rank("high")]


def _dedupe(found: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out: list[Finding] = []
    for f in found:
        key = (f.rule, "" if f.rule == "yaml-python-tag" else f.evidence, f.location)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# ---------------------------------------------------------------------------------------------
# JSON.


class _Obj(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs: duplicate keys are all kept and all checked."""


def _json_may_hold_templates(data: bytes) -> bool:
    return b"{{" in data or b"{%" in data or b"chat_template" in data or b"\\u" in data


def _json_encoding(data: bytes) -> str:
    try:
        encoding = json.detect_encoding(data)
    except (ValueError, TypeError):
        encoding = "utf-8"
    if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    return encoding


def _load_json(text: str) -> list[Any]:
    """The documents of a JSON (or JSON Lines) text; numbers are not kept (not needed here)."""

    def load(piece: str) -> Any:
        return json.loads(
            piece,
            object_pairs_hook=_Obj,
            parse_int=_zero,
            parse_float=_zero,
            parse_constant=_zero,
        )

    try:
        return [load(text)]
    except ValueError as exc:
        if "Extra data" not in str(exc):
            raise
    docs = [load(line) for line in text.splitlines() if line.strip()]
    return docs


def _zero(_text: str) -> int:
    return 0


def _label(keys: tuple[str, ...]) -> str:
    label = ""
    for k in keys:
        label += k if k.startswith("[") or not label else f".{k}"
    return label or "document"


# ---------------------------------------------------------------------------------------------
# Text, YAML.


def _decode_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


def _yaml_child(stack: list[list[Any]], key_value: str | None = None) -> str:
    """Advance the parent collection by one node; the key path of that node (or "" for a key)."""
    if not stack:
        return ""
    top = stack[-1]
    is_mapping, expecting_key, last_key, index, label = top
    if is_mapping:
        if expecting_key:
            top[1] = False
            top[2] = short(key_value if key_value is not None else "?", 60)
            return ""
        top[1] = True
        return f"{label}.{last_key}" if label else last_key
    top[3] = index + 1
    return f"{label}[{index}]"
