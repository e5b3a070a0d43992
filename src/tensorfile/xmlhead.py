"""The root element of an XML document, read from its first bytes only.

PMML and OpenVINO IR are XML; telling them apart needs the root tag, its namespace and its
attributes, not the whole (possibly huge) document. External entities are never resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from xml.parsers import expat

from .errors import FormatError
from .source import ByteSource

XML_CHUNK = 1 << 20


@dataclass(frozen=True)
class XmlRoot:
    tag: str  # local name
    namespace: str | None
    attributes: dict[str, str]
    children: tuple[str, ...]  # local names of the first few child elements


class _Done(Exception):
    pass


def read_root(head: bytes, max_children: int = 8) -> XmlRoot | None:
    """The root element of the XML in `head`, or None when `head` does not start an XML document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return None
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    found: dict[str, object] = {}
    depth = 0
    children: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if "root" not in found:
            found["root"] = (name, attrs)
        elif depth == 2:
            children.append(name.rsplit("}", 1)[-1])
            if len(children) >= max_children:
                raise _Done

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(head, False)
    except _Done:
        pass
    except (expat.ExpatError, LookupError, ValueError):  # bad XML, or an encoding Python lacks
        if "root" not in found:
            return None
    root = found.get("root")
    if root is None:
        return None
    name, attrs = root  # type: ignore[misc]
    namespace, _, local = name.rpartition("}")
    return XmlRoot(local, namespace or None, dict(attrs), tuple(children))


class XmlHandler(Protocol):
    def start(self, name: str, attrs: dict[str, str]) -> None: ...

    def end(self, name: str) -> None: ...

    def text(self, data: str) -> None: ...


def parse_xml(source: ByteSource, handler: XmlHandler) -> None:
    """Stream a whole XML file through `handler` (local names, namespaces stripped) in 1 MB chunks.

    Used by the OpenVINO and PMML readers. External entities are never
    fetched and any DOCTYPE that declares entities is refused, so a "billion laughs" file costs
    nothing. Malformed XML raises FormatError.
    """
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True

    def refuse_entity(name: str, *_: object) -> None:
        raise FormatError(f"XML declares entity {name!r}: refused (entity expansion)", source.name)

    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.StartElementHandler = lambda name, attrs: handler.start(name.rpartition("}")[2], attrs)
    parser.EndElementHandler = lambda name: handler.end(name.rpartition("}")[2])
    parser.CharacterDataHandler = handler.text
    pos = 0
    try:
        while pos < source.size:
            chunk = source.read_at(pos, XML_CHUNK)
            if not chunk:
                break
            pos += len(chunk)
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise FormatError(
            f"malformed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset}",
            source.name,
        ) from None
    except (LookupError, ValueError) as exc:  # <?xml encoding="…"?> naming a codec Python lacks
        raise FormatError(f"XML in an unreadable encoding ({exc})", source.name) from None
    except FormatError as exc:  # raised by a handler, which does not know the file's name
        if exc.path is None:
            raise FormatError(exc.message, source.name) from None
        raise
