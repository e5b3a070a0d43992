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
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import string
import unicodedata
import warnings
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .findings import Finding, rank

__all__ = ["check_template", "is_template_text", "scan_json_config", "scan_text_template"]

# ---------------------------------------------------------------------------------------------
# Limits: Jinja's parser handles ~0.3 MB/s of dense template text, so what is parsed is bounded;
# whatever is beyond the bounds is still searched as text (linear regular expressions).

MAX_PARSE = 128 * 1024  # one template, in characters (real chat templates are < 50 KB)
MAX_PARSE_TOTAL = 512 * 1024  # all templates of one file
MAX_TEMPLATES = 500  # templates parsed per file (each parse costs ~50 µs even when tiny)
MAX_TEXT = 64 * 1024 * 1024  # text searched at all, per call
MAX_YAML_EVENTS = 4 * 1024 * 1024  # YAML text read scalar by scalar (when PyYAML is installed)
_MAX_FOLD = 4096  # longest string built by constant folding
_MAX_FOLD_DEPTH = 60
_MAX_EVIDENCE = 4
_EVIDENCE_CHARS = 140

# ---------------------------------------------------------------------------------------------
# Names.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Jinja's own globals and Flask's template context: classic starting points of sandbox escapes.
ESCAPE_GLOBALS = _words(
    """
    cycler joiner lipsum namespace range dict self config request session g url_for
    get_flashed_messages
    """
)
# Python modules a template could only reach through an escape; used as objects they mean one.
PY_MODULES = _words(
    """
    os sys subprocess builtins __builtins__ importlib posix nt pty socket shutil pickle marshal
    ctypes codecs io commands
    """
)
# Python built-ins a renderer never exposes to a chat template.
PY_BUILTINS = _words(
    """
    eval exec execfile compile __import__ getattr setattr delattr globals locals vars open
    breakpoint help
    """
)
_CHAR_FUNCS = frozenset({"chr", "unichr"})
# Attributes that only lead to processes, modules, frames or code.
DANGEROUS_ATTRS = _words(
    """
    os sys subprocess popen popen2 Popen system spawnl spawnv spawnve execl execv execve execvp
    eval exec execfile modules environ putenv import_module builtins globals getattr setattr
    check_output check_call getoutput getstatusoutput urlopen mro func_globals func_code
    f_globals f_locals f_builtins f_back f_code gi_frame gi_code cr_frame cr_code ag_frame
    ag_code tb_frame tb_next co_code co_consts im_func im_class _module
    _TemplateReference__context
    """
)
# Item keys that are never dictionary keys of a chat (unlike 'system', 'open', 'read').
DANGEROUS_KEYS = _words(
    """
    os sys subprocess popen eval exec execfile builtins globals modules environ import_module
    getattr setattr check_output posix importlib
    """
)
# Names that, when a template *builds* them out of pieces, only serve an escape.
DANGEROUS_WORDS = DANGEROUS_ATTRS | PY_BUILTINS | PY_MODULES | {"import", "read", "write", "call", "run"}
# Filters that take an attribute name (position of the positional argument, if any).
_ATTRIBUTE_FILTERS: dict[str, int | None] = {
    "map": None,
    "selectattr": 0,
    "rejectattr": 0,
    "groupby": 0,
    "sum": 0,
    "sort": 2,
    "unique": 1,
    "min": 1,
    "max": 1,
    "join": 1,
}
_DECODE_FILTERS = _words(
    """
    b64decode base64decode base64_decode from_base64 frombase64 b32decode b16decode unhexlify
    unhex fromhex from_hex hex_decode decode rot13 eval exec system shell popen subprocess run
    import pickle unpickle marshal from_yaml from_pickle
    """
)
# Filters whose output on a non-string object is its repr (characters to pick from).
_STRINGIFY_FILTERS = _words(
    """
    string list pprint format join first last e escape forceescape safe urlencode center
    truncate wordwrap indent trim replace lower upper title capitalize reverse batch slice
    tojson striptags
    """
)
_GENERATOR_FILTERS = frozenset({"select", "reject", "selectattr", "rejectattr", "map", "batch", "slice"})

# Python's special names are lower case; "__NOT_A_NUMBER__"-style sentinels are not them.
_DUNDER_RE = re.compile(r"__[a-z][a-z0-9_]*?__")
# The special names sandbox escapes walk through (from an object to its class, module, globals).
_ESCAPE_DUNDER_RE = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|import|getattribute|base|bases|init|code|func|self"
    r"|closure|reduce|reduce_ex|loader|spec|dict|getitem|module|call)__"
)
_CODE_RE = re.compile(
    r"__[a-z][a-z0-9_]*__|\b(?:os|subprocess|sys|builtins|importlib)\s*\.\s*\w+"
    r"|\b(?:popen|system|eval|exec|check_output|import_module|getattr)\s*\("
    r"|\bimport\s+(?:os|subprocess|sys|socket|pty)\b"
)
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}\n]{1,80}\}|[0-7]{1,3})")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_.]")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2}){8,}$")
_PERCENT_SPEC = re.compile(
    r"%(?:\((\w{1,40})\))?([#0\- +]{0,5})(\d{0,3})(?:\.(\d{0,3}))?([diouxXeEfFgGcrsa%])"
)
_PERCENT_ANY = re.compile(r"%")
_BRACE_SPEC = re.compile(r"^[<>=^]?[+\- ]?#?0?\d{0,3}[,_]?(?:\.\d{0,3})?[bcdeEfFgGnosxX%]?$")
_GO_TEMPLATE = re.compile(r"\{\{-?\s*(?:\.|end\b|range\b|else\b|if\s+\.|template\b|define\b|block\b|/\*)")
_HANDLEBARS = re.compile(r"\{\{[#/>^!&]")

# Text search (templates that do not parse, or are too large to parse).
_LEX_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (_ESCAPE_DUNDER_RE, "template-dunder-access", "critical"),
    (_DUNDER_RE, "template-dunder-access", "high"),
    (
        re.compile(
            r"\b(?:cycler|joiner|lipsum|namespace|self|config|request|url_for|get_flashed_messages)"
            r"\s*(?:\.\s*_|\|\s*attr\b|\[)"
        ),
        "template-global-escape",
        "high",
    ),
    (
        re.compile(
            r"(?<![\w.])(?:eval|exec|execfile|compile|getattr|setattr|globals|locals|breakpoint)\s*\("
        ),
        "template-python-builtin",
        "high",
    ),
    (
        re.compile(
            r"\.\s*(?:popen|check_output|import_module|environ|f_globals|func_globals)\b|\.\s*system\s*\("
        ),
        "template-dangerous-attribute",
        "high",
    ),
    (re.compile(r"\|\s*attr\s*\("), "template-dynamic-attribute", "medium"),
    (re.compile(r"%c|\bchr\s*\(\s*\d"), "template-char-construction", "medium"),
)
_LEX_TRIGGERS = "_.([|%\\"

# Python YAML tags that make `yaml.unsafe_load` (or an unsafe Loader) import and call things.
_PY_TAG_RE = re.compile(
    r"(?:!!|!<tag:yaml\.org,2002:|!|tag:yaml\.org,2002:)python/(object/apply|object/new|object|name|module)\b[^\s,\[\]{}'\">]*"
)
_PY_TAG_BYTES = re.compile(rb"(?:!|tag:yaml\.org,2002:)python/(?:object|name|module)")
_DANGEROUS_PY_TAGS = ("object/apply", "object/new", "object", "name", "module")

_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
_LOOSE_TEMPLATE_SUFFIXES = (".template", ".tmpl")
_YAML_SUFFIXES = (".yaml", ".yml")

MESSAGES = {
    "template-dunder-access": (
        "The template reaches Python internals (double-underscore names such as __globals__): the classic"
        " Jinja sandbox escape that runs commands when the template is rendered (e.g. CVE-2024-34359)."
    ),
    "template-global-escape": (
        "The template digs into a built-in Jinja/Flask object (cycler, lipsum, self, config, request, …),"
        " a known route from a template to Python's os module."
    ),
    "template-python-module": (
        "The template uses a Python module (os, subprocess, sys, …) as an object; a template can only get"
        " one through a sandbox escape."
    ),
    "template-python-builtin": (
        "The template calls a Python built-in (eval, exec, getattr, open, …) that no chat template needs;"
        " where a renderer exposes it, it runs code or reads files."
    ),
    "template-dangerous-attribute": (
        "The template reaches an attribute that only exists to run commands or reach modules and stack "
        "frames (popen, system, environ, modules, f_globals, …)."
    ),
    "template-dynamic-attribute": (
        "The template looks up an attribute whose name is computed when it is rendered, which hides what "
        "it reaches."
    ),
    "template-constructed-name": (
        "The template builds a Python-internal or dangerous name out of pieces (joining, formatting, "
        "reversing strings): obfuscation used to slip sandbox escapes past filters."
    ),
    "template-char-construction": (
        'The template makes characters from numeric codes ("%c"|format(95), chr(95)), a way to spell '
        "forbidden names without writing them."
    ),
    "template-escaped-name": (
        "The template writes letters or underscores as escape codes ('\\x5f' for '_'), a way to hide "
        "forbidden names."
    ),
    "template-char-harvest": (
        "The template turns a built-in object into text to pick characters out of it, a trick to spell "
        "forbidden names."
    ),
    "template-dunder-string": (
        "The template holds a Python-internal name (such as '__class__') as a string."
    ),
    "template-encoded-payload": (
        "The template carries an encoded (base64/hex) string that decodes to Python code or internal names."
    ),
    "template-decode-filter": (
        "The template uses a filter that decodes or runs data (b64decode, eval, shell, …); standard chat "
        "renderers have no such filter."
    ),
    "template-format-attribute": (
        "A format string in the template reads attributes of its arguments ('{0.__class__}'.format(x)), a"
        " known way around the sandbox."
    ),
    "template-private-attribute": (
        "The template reads a private attribute (a name starting with '_'); the Jinja sandbox forbids it "
        "and no chat template needs it."
    ),
    "template-global-reference": (
        "The template passes a built-in Jinja/Flask object around instead of calling it, usually a first "
        "step of a sandbox escape."
    ),
    "template-include": (
        "The template pulls in other template files ({% include/import/extends %}); with a file loader "
        "this reads local files."
    ),
    "template-unparseable": (
        "This template does not parse as Jinja2, so it could not be fully checked (the renderer fails on "
        "it too); it was only searched as text for known attacks."
    ),
    "template-too-large": (
        "Too much template text to parse; it was only searched as text for known attacks."
    ),
    "template-json-unreadable": (
        "Not valid JSON (loaders refuse it); it was only searched as text for template attacks."
    ),
    "yaml-python-tag": (
        "A YAML Python tag: yaml.unsafe_load (or yaml.load with an unsafe Loader) imports and calls the "
        "named Python object while reading this file."
    ),
}
_ADVICE_TEMPLATE = (
    "do not render this template; replace it with the chat template published with the original model"
)
_ADVICE = {
    "template-unparseable": "check the template by hand before using it",
    "template-too-large": "check the template by hand before using it",
    "template-json-unreadable": "check the file by hand; loaders refuse invalid JSON",
    "yaml-python-tag": "load YAML with yaml.safe_load only, and do not use this file",
}

# ---------------------------------------------------------------------------------------------
# The parser.


class _GenerationTag(Extension):
    """`{% generation %}…{% endgeneration %}` (transformers' assistant-mask tag): parsed, body kept."""

    tags = {"generation"}  # noqa: RUF012 (jinja's class attribute)

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


# transformers renders with ImmutableSandboxedEnvironment + loopcontrols + its generation tag;
# `do` is accepted too (other renderers have it). Parsing only: nothing here is ever rendered.
_ENV = ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag])


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
    return _sorted(scan.template(text, where, strict=True) + scan.budget_findings())


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
        reason = "nested too deeply" if isinstance(exc, RecursionError) else _short(str(exc))
        found += scan.text_search(text, path, spans_only=True)
        found.append(_finding("template-json-unreadable", "low", reason, path))
        return _sorted(found)
    for doc in docs:
        found += scan.json_doc(doc, path)
    return _sorted(found + scan.budget_findings())


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
        found += _python_tags(text, path)
    if is_template_file or (is_loose_template and not _other_template_language(text)):
        found += scan.template(text, path, strict=True)
    elif not _has_tag(text):
        if is_yaml or not is_loose_template:
            found += scan.yaml_scalars(text, path, tags_only=True) or []
    else:
        by_scalar = scan.yaml_scalars(text, path) if is_yaml else None
        found += by_scalar if by_scalar is not None else scan.loose_text(text, path)
    return _sorted(_dedupe(found + scan.budget_findings()))


def is_template_text(data: bytes) -> bool:
    """Cheap sniff: does this text hold a Jinja tag (`{{ … }}`, `{% … %}`) or a YAML Python tag?"""
    head = bytes(data[:MAX_TEXT])
    if (b"{{" in head and b"}}" in head) or (b"{%" in head and b"%}" in head):
        return True
    return _PY_TAG_BYTES.search(head) is not None


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
            found = self.text_search(text, where, spans_only=not strict)
            return found if strict else _strong(found)
        self.parsed += len(text)
        self.count += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Jinja's unescaping warns on odd escapes
                tree = _ENV.parse(text)
        except RecursionError:
            return self._unparseable(text, where, "nested too deeply to parse", strict)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            reason = _short(getattr(exc, "message", None) or str(exc)) + (f" (line {line})" if line else "")
            return self._unparseable(text, where, reason, strict)
        except Exception as exc:  # hostile input must not escape as anything but a finding
            return self._unparseable(text, where, f"{type(exc).__name__}: {_short(str(exc))}", strict)
        try:
            hits = _TreeCheck(tree).run()
        except RecursionError:
            return self._unparseable(text, where, "nested too deeply to check", strict)
        except Exception as exc:  # fail closed: say it was not checked rather than crash the scan
            return self._unparseable(text, where, f"could not be checked ({type(exc).__name__})", True)
        hits += _escaped_names(text)
        return _group(hits, where)

    def _unparseable(self, text: str, where: str, reason: str, strict: bool) -> list[Finding]:
        found = self.text_search(text, where, spans_only=False)
        if strict:
            found.append(_finding("template-unparseable", "medium", reason, where))
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
                found.append(_finding("template-too-large", severity, evidence, where))
        return found

    def text_search(self, text: str, where: str, *, spans_only: bool) -> list[Finding]:
        """The text fallback: known attack names inside `{{ }}`/`{% %}` (or anywhere if not spans_only)."""
        hits: list[_Hit] = []
        pieces = _tag_spans(text) if spans_only or _has_tag(text) else [(0, text)]
        line, counted = 1, 0
        for offset, piece in pieces:
            if not any(c in piece for c in _LEX_TRIGGERS):
                continue
            decoded = _decode_escapes(piece)
            for pattern, rule, severity in _LEX_RULES:
                m = pattern.search(decoded)
                if m is None:
                    continue
                at = offset + min(m.start(), len(piece))
                if at >= counted:
                    line += text.count("\n", counted, at)
                    counted = at
                hits.append((rule, severity, _short(m.group(0), 60), line))
        hits += _escaped_names(text)
        return _group(hits, where)

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
                elif "{" in value and _has_tag(value):
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
                        label = f"{key} ({_short(name, 40)})" if name else key
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
                    found += _python_tag_finding(tag, path, event.start_mark.line + 1)
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
                        if strict or ("{" in value and _has_tag(value)):
                            where = _join(
                                path, f"{label or 'document'} (YAML line {event.start_mark.line + 1})"
                            )
                            found += self.template(value, where, strict=strict)
        except (yaml.YAMLError, RecursionError, MemoryError, ValueError):
            return found if tags_only else None
        return found

    def loose_text(self, text: str, path: str) -> list[Finding]:
        """Text that may or may not be a template: parse it whole; if that fails, search it."""
        if _other_template_language(text):
            return _strong(self.text_search(text, path, spans_only=True))
        return self.template(text, path, strict=False)


# ---------------------------------------------------------------------------------------------
# The tree check.

_Hit = tuple[str, str, str, int]  # rule, severity, evidence, line
_NOTHING = object()


class _TreeCheck:
    def __init__(self, tree: nodes.Template) -> None:
        self.tree = tree
        self.hits: list[_Hit] = []
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
        self.fold = _Folder(single)

    def hit(self, rule: str, severity: str, node: nodes.Node, evidence: str | None = None) -> None:
        self.hits.append((rule, severity, evidence if evidence is not None else _src(node), node.lineno or 1))

    def run(self) -> list[_Hit]:
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
                if id(node) in self.block_text and _DUNDER_RE.search(node.data):
                    self.hit("template-dunder-string", "high", node, _short(node.data, 60))
            elif kind is nodes.Keyword:
                if _is_dunder(node.key):
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
        if _is_dunder(name):
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
            if _is_dunder(key) or _DUNDER_RE.search(key):
                self.hit("template-dunder-access", "critical", node)
            elif key in DANGEROUS_KEYS:
                self.hit("template-dangerous-attribute", "high", node)
        self._base(node.node, key if isinstance(key, str) else None, node)

    def _dotted(self, value: Any, arg: nodes.Node | None, node: nodes.Node) -> None:
        """An attribute path given to a filter (`map(attribute="a.b")`)."""
        if value is _NOTHING:
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
            value = self.fold.value(arg) if arg is not None else _NOTHING
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
            if name in _STRINGIFY_FILTERS:
                self.hit("template-char-harvest", "high", node)
            else:
                self.hit("template-global-reference", "medium", node)
        if name in _ATTRIBUTE_FILTERS:
            self._attribute_filter(node)
        if name in _DECODE_FILTERS:
            self.hit("template-decode-filter", "high", node)
        if name == "string" and isinstance(base, nodes.Filter) and base.name in _GENERATOR_FILTERS:
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
                    self._dotted(self.fold.value(arg) if arg is not None else _NOTHING, arg, node)
                elif first is _NOTHING:
                    self.hit("template-dynamic-attribute", "high", node)
                elif isinstance(first, str) and first in _DECODE_FILTERS:
                    self.hit("template-decode-filter", "high", node)
            return
        position = _ATTRIBUTE_FILTERS[name]
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
            elif func.name in _CHAR_FUNCS:
                self.hit("template-char-construction", "high", node)
        elif isinstance(func, nodes.Getattr) and func.attr in ("format", "format_map"):
            fmt = self.fold.value(func.node)
            if isinstance(fmt, str):
                self._format_fields(fmt, node)

    def _format_fields(self, fmt: str, node: nodes.Node) -> None:
        try:
            fields = list(string.Formatter().parse(fmt[:_MAX_FOLD]))
        except ValueError:
            return
        for _literal, field, spec, _conversion in fields:
            if field and re.search(r"[.\[]", field):
                names = re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", field)
                parts = [a or b for a, b in names]
                if any(_is_dunder(p) or _DUNDER_RE.search(p) for p in parts):
                    self.hit("template-dunder-access", "critical", node)
                else:
                    self.hit("template-format-attribute", "high", node)
            if spec and spec.rstrip().endswith("c"):
                self.hit("template-char-construction", "high", node)

    def _percent(self, fmt_node: nodes.Node, node: nodes.Node) -> None:
        fmt = self.fold.value(fmt_node)
        if isinstance(fmt, str) and any(m.group(5) == "c" for m in _PERCENT_SPEC.finditer(fmt[:_MAX_FOLD])):
            self.hit("template-char-construction", "high", node)

    # -- names and strings -----------------------------------------------------------------

    def _name(self, node: nodes.Name) -> None:
        if node.ctx != "load":
            return
        if _is_dunder(node.name):
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
        if _ESCAPE_DUNDER_RE.search(value) or (len(value) <= 40 and _DUNDER_RE.search(value)):
            # long text may quote code ("if __name__ == '__main__'"); escape names never appear
            self.hit("template-dunder-string", "high", node)
            return
        decoded = _decode_payload(value)
        if decoded is not None:
            self.hit("template-encoded-payload", "high", node, f"{_short(value, 40)} → {_short(decoded, 60)}")

    def _constructed(self, node: nodes.Node) -> None:
        folded = self.fold.fold(node)
        if folded is None:
            return
        value, leaves = folded
        if not isinstance(value, str) or not value:
            return
        word = _dangerous_text(value)
        if word is None:
            return
        if any(word in leaf or word.lower() in leaf.lower() for leaf in leaves):
            return  # written plainly somewhere: not built from pieces (plain strings are judged as such)
        self.hit("template-constructed-name", "high", node, f"{_src(node)} → {_short(value, 60)!r}")

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
    return "".join(parts)[:_MAX_FOLD]


def _targets(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple | nodes.List):
        return [n for item in target.items for n in _targets(item)]
    return []


# ---------------------------------------------------------------------------------------------
# Constant folding: only the pure string/number operations below, on constants, with caps.


class _Folder:
    def __init__(self, assigns: dict[str, nodes.Node]) -> None:
        self.assigns = assigns
        self.cache: dict[int, tuple[Any, tuple[str, ...]] | None] = {}
        self.active: set[str] = set()

    def value(self, node: nodes.Node | None) -> Any:
        """The folded value, or _NOTHING when it depends on render-time data."""
        if node is None:
            return _NOTHING
        folded = self.fold(node)
        return _NOTHING if folded is None else folded[0]

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
                return (a * b if len(a) * max(b, 0) <= _MAX_FOLD else None), leaves
            if isinstance(b, str | list) and isinstance(a, int) and not isinstance(a, bool):
                return (b * a if len(b) * max(a, 0) <= _MAX_FOLD else None), leaves
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
        return None if result is _NOTHING else (result, leaves)

    def _call(self, node: nodes.Call, depth: int) -> tuple[Any, tuple[str, ...]] | None:
        func = node.node
        got = self._args(node, depth)
        if got is None:
            return None
        args, kwargs, leaves = got
        if isinstance(func, nodes.Name):
            if (
                func.name in _CHAR_FUNCS
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
        return None if result is _NOTHING else (result, base[1] + leaves)

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
            return _NOTHING
        items = list(value) if isinstance(value, list | dict | str) else None
        return _NOTHING if items is None else sep.join(_text(v) for v in items)
    if name == "replace" and isinstance(value, str):
        if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            count = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
            if args[0] == "" or len(value) * (len(args[1]) + 1) > _MAX_FOLD:
                return _NOTHING
            return value.replace(args[0], args[1], count)
        return _NOTHING
    if name == "reverse" and isinstance(value, str | list):
        return value[::-1]
    if name in ("lower", "upper", "title", "capitalize") and isinstance(value, str):
        return getattr(str, name)(value)
    if name == "trim" and isinstance(value, str):
        chars = args[0] if args and isinstance(args[0], str) else None
        return value.strip(chars)
    if name == "string":
        return _text(value) if isinstance(value, str | int | float | bool) or value is None else _NOTHING
    if name == "list" and isinstance(value, str | list | dict):
        return list(value)
    if name in ("first", "last") and isinstance(value, str | list | dict) and len(value):
        items = list(value)
        return items[0] if name == "first" else items[-1]
    if name == "format" and isinstance(value, str):
        if kwargs and args:
            return _NOTHING
        result = _percent_format(value, kwargs if kwargs else (args[0] if len(args) == 1 else list(args)))
        return _NOTHING if result is None else result
    if name == "int" and isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            return 0
    return _NOTHING


def _apply_method(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return _NOTHING
    if name == "join" and len(args) == 1 and isinstance(args[0], list | str | dict):
        return value.join(_text(v) for v in args[0])
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        if args[0] == "" or len(value) * (len(args[1]) + 1) > _MAX_FOLD:
            return _NOTHING
        return value.replace(args[0], args[1])
    if name in ("upper", "lower", "title", "capitalize", "swapcase", "casefold") and not args:
        return getattr(str, name)(value)
    if name in ("strip", "lstrip", "rstrip") and all(isinstance(a, str) for a in args) and len(args) <= 1:
        return getattr(str, name)(value, *args)
    if name == "format":
        result = _brace_format(value, args, kwargs)
        return _NOTHING if result is None else result
    return _NOTHING


def _percent_format(fmt: str, arg: Any) -> str | None:
    """`fmt % arg` for plain conversions with small widths; None for anything else."""
    values = arg if isinstance(arg, list) else [arg]
    out: list[str] = []
    pos = 0
    index = 0
    for m in _PERCENT_ANY.finditer(fmt):
        if m.start() < pos:
            continue
        spec = _PERCENT_SPEC.match(fmt, m.start())
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
        return len(value) <= _MAX_FOLD
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 1 << 64
    return True


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return str(value) if isinstance(value, int | float | bool) else ""


# ---------------------------------------------------------------------------------------------
# Small helpers.


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__") and name[2:-2].strip("_") != ""


def _dangerous_text(value: str) -> str | None:
    """The dangerous part of a built string: a dunder, a dangerous name, or a code fragment."""
    m = _DUNDER_RE.search(value)
    if m:
        return m.group(0)
    if value.strip() in DANGEROUS_WORDS:
        return value.strip()
    m = _CODE_RE.search(value)
    return m.group(0) if m else None


def _decode_payload(value: str) -> str | None:
    """A base64/hex-looking string that decodes to Python code or internal names."""
    if len(value) < 16 or len(value) > 65536:
        return None
    candidates: list[bytes] = []
    if _HEX_RE.match(value):
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(binascii.unhexlify(value))
    if _BASE64_RE.match(value):
        padded = value + "=" * (-len(value) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                candidates.append(decode(padded))
    for raw in candidates:
        text = raw.decode("latin-1")
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in raw)
        if printable < 0.9 * len(raw):
            continue
        if _CODE_RE.search(text) or _DUNDER_RE.search(text):
            return text
    return None


def _decode_escapes(text: str) -> str:
    """Backslash escapes that produce identifier characters, decoded (for the text search)."""
    if "\\" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        char = _escape_char(m.group(1))
        return char if char is not None and _IDENT_CHAR.match(char) else m.group(0)

    return _ESCAPE_RE.sub(one, text)


def _escape_char(body: str) -> str | None:
    try:
        if body[0] in "xuU":
            return chr(int(body[1:], 16))
        if body[0] == "N":
            return unicodedata.lookup(body[2:-1])
        return chr(int(body, 8))
    except (ValueError, KeyError, OverflowError):
        return None


def _escaped_names(text: str) -> list[_Hit]:
    """Escape codes spelling identifier characters inside `{{ }}`/`{% %}` (first few only)."""
    if "\\" not in text:
        return []
    hits: list[_Hit] = []
    for offset, piece in _tag_spans(text):
        if "\\" not in piece:
            continue
        for m in _ESCAPE_RE.finditer(piece):
            char = _escape_char(m.group(1))
            if char is not None and _IDENT_CHAR.match(char):
                line = text.count("\n", 0, offset + m.start()) + 1
                hits.append(("template-escaped-name", "high", f"{m.group(0)} = {char!r}", line))
                break
        if len(hits) >= _MAX_EVIDENCE:
            break
    return hits


def _has_tag(text: str) -> bool:
    i = text.find("{{")
    if i >= 0 and text.find("}}", i + 2) >= 0:
        return True
    i = text.find("{%")
    return i >= 0 and text.find("%}", i + 2) >= 0


def _tag_spans(text: str, limit: int = 100_000) -> list[tuple[int, str]]:
    """`{{ … }}` and `{% … %}` pieces with their offsets; linear in the text."""
    spans: list[tuple[int, str]] = []
    pos = 0
    a = text.find("{{")
    b = text.find("{%")
    while len(spans) < limit:
        if 0 <= a < pos:
            a = text.find("{{", pos)
        if 0 <= b < pos:
            b = text.find("{%", pos)
        if a < 0 and b < 0:
            break
        start = a if b < 0 or 0 <= a < b else b
        end = text.find("}}" if start == a else "%}", start + 2)
        if end < 0:
            if start == a:  # no "}}" anywhere after: only {% … %} pieces can follow
                a = -1
                pos = start + 2
                continue
            b = -1
            pos = start + 2
            continue
        spans.append((start, text[start : end + 2]))
        pos = end + 2
    return spans


def _other_template_language(text: str) -> bool:
    """Go templates (Ollama) and Handlebars/Mustache use {{ }} too; they cannot run Python."""
    return bool(_GO_TEMPLATE.search(text[: 1 << 20]) or _HANDLEBARS.search(text[: 1 << 20]))


def _src(node: nodes.Node | None, depth: int = 0) -> str:
    """A short Jinja-like rendering of an expression, for evidence."""
    return _short(_render(node, depth), _EVIDENCE_CHARS)


def _render(node: nodes.Node | None, depth: int = 0) -> str:
    if node is None:
        return ""
    if depth > 12:
        return "…"
    d = depth + 1
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value) if not isinstance(node.value, str) else repr(_short(node.value, 50))
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


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(path: str, label: str) -> str:
    if not path:
        return label
    return f"{path} › {label}" if label else path


def _finding(rule: str, severity: str, evidence: str, location: str) -> Finding:
    return Finding(rule, severity, MESSAGES[rule], evidence, location, _ADVICE.get(rule, _ADVICE_TEMPLATE))


def _group(hits: list[_Hit], where: str) -> list[Finding]:
    """One finding per rule: the worst severity, the first few distinct pieces of evidence."""
    by_rule: dict[str, list[_Hit]] = {}
    for hit in hits:
        by_rule.setdefault(hit[0], []).append(hit)
    found: list[Finding] = []
    for rule, items in by_rule.items():
        severity = max((h[1] for h in items), key=rank)
        line = min(h[3] for h in items if h[1] == severity)
        evidence: list[str] = []
        for h in items:
            if h[2] not in evidence and len(evidence) < 64:
                evidence.append(h[2])
        # a chain a.__class__.__mro__ hits at each link: keep the longest spelling
        evidence = [e for e in evidence if not any(o != e and o.startswith(e) for o in evidence)]
        text = "; ".join(evidence[:_MAX_EVIDENCE])
        if len(evidence) > _MAX_EVIDENCE:
            text += f" (+{len(evidence) - _MAX_EVIDENCE} more)"
        location = f"{where}, line {line}" if where else f"line {line}"
        found.append(_finding(rule, severity, text, location))
    return _sorted(found)


def _strong(found: list[Finding]) -> list[Finding]:
    return [f for f in found if rank(f.severity) >= rank("high")]


def _sorted(found: list[Finding]) -> list[Finding]:
    return sorted(found, key=lambda f: -rank(f.severity))


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


def _python_tags(text: str, path: str) -> list[Finding]:
    """Python tags found in the text itself (works without PyYAML; skips comment lines)."""
    if "python/" not in text:
        return []
    found: list[Finding] = []
    for m in _PY_TAG_RE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[line_start : m.start()]
        if _in_comment(before):
            continue
        line = text.count("\n", 0, m.start()) + 1
        found += _python_tag_finding(m.group(0), path, line)
        if len(found) >= 20:
            break
    return found


def _in_comment(before: str) -> bool:
    if before.lstrip().startswith("#"):
        return True
    for m in re.finditer(r"(?:^|\s)#", before):
        prefix = before[: m.start()]
        if prefix.count('"') % 2 == 0 and prefix.count("'") % 2 == 0:
            return True
    return False


def _python_tag_finding(tag: str, path: str, line: int) -> list[Finding]:
    m = re.search(r"python/(object/apply|object/new|object|name|module)\b", tag)
    if m is None or m.group(1) not in _DANGEROUS_PY_TAGS:
        return []
    return [
        _finding(
            "yaml-python-tag",
            "critical",
            _short(tag, 120),
            f"{path}, line {line}" if path else f"line {line}",
        )
    ]


def _yaml_child(stack: list[list[Any]], key_value: str | None = None) -> str:
    """Advance the parent collection by one node; the key path of that node (or "" for a key)."""
    if not stack:
        return ""
    top = stack[-1]
    is_mapping, expecting_key, last_key, index, label = top
    if is_mapping:
        if expecting_key:
            top[1] = False
            top[2] = _short(key_value if key_value is not None else "?", 60)
            return ""
        top[1] = True
        return f"{label}.{last_key}" if label else last_key
    top[3] = index + 1
    return f"{label}[{index}]"
