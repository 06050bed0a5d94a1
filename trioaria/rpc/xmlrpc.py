"""XML-RPC codec (``POST /rpc``) through defusedxml, with size and depth limits (pure).

Theory of operation
-------------------
:func:`decode` parses a ``<methodCall>`` with :func:`defusedxml.ElementTree.fromstring` and
``forbid_dtd=True``: a document type declaration (and with it every entity trick: "billion
laughs", quadratic blow-up, external entities) is refused before anything is expanded.  The body
is also refused when it is larger than ``max_size`` bytes or nests elements deeper than
``max_depth``, so a hostile request costs bounded time and memory.  Values map as in the XML-RPC
specification and Python's :mod:`xmlrpc.client`: ``string`` (and untyped text) → ``str``,
``int``/``i4``/``i8`` → ``int``, ``boolean`` → ``bool``, ``double`` → ``float``, ``base64`` →
``bytes``, ``dateTime.iso8601`` → its text, ``nil`` → ``None``, ``array`` → ``list``,
``struct`` → ``dict``.  Any failure raises :class:`XmlRpcParseError`; aria2 then answers
HTTP 400 with no body.

:func:`encode_response` and :func:`encode_fault` write ``<methodResponse>`` documents.  Text is
escaped, and characters XML 1.0 cannot carry (most C0 controls, lone surrogates) are replaced by
U+FFFD so every answer is well-formed.  A method error is ``faultCode`` 1 with aria2's message,
sent with HTTP 200 (aria2 ``HttpServerBodyCommand``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from .messages import RpcRequest

__all__ = ["MAX_DEPTH", "XmlRpcParseError", "decode", "encode_fault", "encode_response"]

#: Deepest element nesting accepted (a value nested 10 arrays deep is about 30 levels).
MAX_DEPTH = 100

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class XmlRpcParseError(ValueError):
    """The body is not an acceptable XML-RPC ``methodCall``."""


def _check_depth(root: Element, max_depth: int) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise XmlRpcParseError("XML-RPC request nests too deeply")
        stack.extend((child, depth + 1) for child in node)


def _text(node: Element) -> str:
    return node.text or ""


def _value(node: Element) -> Any:
    """Convert one ``<value>`` element."""
    if node.tag != "value":
        raise XmlRpcParseError(f"expected <value>, got <{node.tag}>")
    children = list(node)
    if not children:
        return _text(node)  # untyped text is a string
    if len(children) != 1:
        raise XmlRpcParseError("<value> holds more than one element")
    typed = children[0]
    tag = typed.tag
    text = _text(typed).strip()
    if tag == "string":
        return _text(typed)
    if tag in ("int", "i4", "i8"):
        try:
            return int(text, 10)
        except ValueError:
            raise XmlRpcParseError(f"bad <{tag}> value") from None
    if tag == "boolean":
        if text not in ("0", "1"):
            raise XmlRpcParseError("bad <boolean> value")
        return text == "1"
    if tag == "double":
        try:
            return float(text)
        except ValueError:
            raise XmlRpcParseError("bad <double> value") from None
    if tag == "base64":
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            raise XmlRpcParseError("bad <base64> value") from None
    if tag == "dateTime.iso8601":
        return text
    if tag == "nil":
        return None
    if tag == "array":
        data = list(typed)
        if len(data) != 1 or data[0].tag != "data":
            raise XmlRpcParseError("<array> needs one <data>")
        return [_value(v) for v in data[0]]
    if tag == "struct":
        out: dict[str, Any] = {}
        for member in typed:
            if member.tag != "member":
                raise XmlRpcParseError("<struct> holds a non-member")
            name = member.find("name")
            value = member.find("value")
            if name is None or value is None:
                raise XmlRpcParseError("<member> needs <name> and <value>")
            out[_text(name)] = _value(value)
        return out
    raise XmlRpcParseError(f"unknown value type <{tag}>")


def decode(data: bytes, *, max_size: int = 2 << 20, max_depth: int = MAX_DEPTH) -> RpcRequest:
    """Parse an XML-RPC ``methodCall`` into a request (``json=False``).

    Raises:
        XmlRpcParseError: too large, too deep, not well-formed, a DTD or entity, or not a
            ``methodCall``.
    """
    if len(data) > max_size:
        raise XmlRpcParseError("XML-RPC request too large")
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException, ValueError, RecursionError) as exc:
        raise XmlRpcParseError(f"malformed XML-RPC request: {exc}") from None
    if not isinstance(root, Element):
        raise XmlRpcParseError("malformed XML-RPC request")
    _check_depth(root, max_depth)
    if root.tag != "methodCall":
        raise XmlRpcParseError("not a methodCall")
    name = root.find("methodName")
    if name is None or not _text(name).strip():
        raise XmlRpcParseError("methodName is missing")
    params: list[Any] = []
    holder = root.find("params")
    if holder is not None:
        for param in holder:
            if param.tag != "param":
                raise XmlRpcParseError("<params> holds a non-param")
            value = param.find("value")
            if value is None:
                raise XmlRpcParseError("<param> needs a <value>")
            params.append(_value(value))
    return RpcRequest(_text(name).strip(), params, None, False)


def _escape(text: str) -> str:
    text = _INVALID_XML.sub("\ufffd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write(value: Any, out: list[str]) -> None:
    out.append("<value>")
    if isinstance(value, bool):
        out.append(f"<boolean>{int(value)}</boolean>")
    elif isinstance(value, int):
        tag = "int" if -(2**31) <= value < 2**31 else "i8"
        out.append(f"<{tag}>{value}</{tag}>")
    elif isinstance(value, float):
        out.append(f"<double>{value!r}</double>")
    elif isinstance(value, str):
        out.append(f"<string>{_escape(value)}</string>")
    elif isinstance(value, bytes):
        out.append(f"<base64>{base64.b64encode(value).decode('ascii')}</base64>")
    elif value is None:
        out.append("<nil/>")
    elif isinstance(value, dict):
        out.append("<struct>")
        for key in sorted(value):
            out.append(f"<member><name>{_escape(str(key))}</name>")
            _write(value[key], out)
            out.append("</member>")
        out.append("</struct>")
    elif isinstance(value, list | tuple):
        out.append("<array><data>")
        for item in value:
            _write(item, out)
        out.append("</data></array>")
    else:
        out.append(f"<string>{_escape(str(value))}</string>")
    out.append("</value>")


def encode_response(value: Any) -> bytes:
    """A successful ``methodResponse`` carrying ``value``."""
    out = ['<?xml version="1.0"?>\n<methodResponse><params><param>']
    _write(value, out)
    out.append("</param></params></methodResponse>")
    return "".join(out).encode("utf-8")


def encode_fault(code: int, message: str) -> bytes:
    """A ``methodResponse`` fault: ``faultCode`` and ``faultString`` (aria2: code 1)."""
    out = ['<?xml version="1.0"?>\n<methodResponse><fault>']
    _write({"faultCode": code, "faultString": message}, out)
    out.append("</fault></methodResponse>")
    return "".join(out).encode("utf-8")
