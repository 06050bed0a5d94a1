"""Option values: parse and validate one raw string per aria2 option type (pure).

aria2's ``src/OptionHandlerImpl.cc`` handlers, one function per :class:`OptType`: numbers with
ranges, sizes with K/M suffixes, enums, checksums, ``HOST:PORT``, proxies, piece priorities,
``--optimize-concurrent-downloads`` pairs.  Every failure is an
:class:`~trioaria.base.errors.OptionError` (exit status 28) whose message names ``--NAME``.
:func:`store_raw` is how every source (command line, ``aria2.conf``, ``-i`` lines) records a raw
value: a repeated LIST option accumulates, joined with ``"\\n"`` (aria2's internal form).
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from trioaria.base.errors import OptionError
from trioaria.cli.option_table import ArgKind, OptionSpec, OptType

__all__ = [
    "HASH_HEX_LENGTHS",
    "OptionValue",
    "OptionValueError",
    "expand_home",
    "option_error",
    "parse_value",
    "store_raw",
    "value_to_string",
]

#: PIECE_PRIORITY -> ((\"head\"|\"tail\", size), ...), CONCURRENCY -> (A, B) or None;
#: ``None`` when unset.
OptionValue = (
    bool
    | int
    | float
    | str
    | tuple[str, ...]
    | tuple[range, ...]
    | tuple[str, str]
    | tuple[str, int]
    | tuple[tuple[str, int], ...]
    | tuple[float, float]
    | None
)

#: Hex digest length per hash type accepted by ``--checksum`` (aria2
#: ``MessageDigest``; the names are aria2's).
HASH_HEX_LENGTHS: dict[str, int] = {
    "md5": 32,
    "sha-1": 40,
    "sha-224": 56,
    "sha-256": 64,
    "sha-384": 96,
    "sha-512": 128,
    "adler32": 8,
}

_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UNIT_RE = re.compile(r"([0-9]+)([KkMm]?)", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_HEX_RE = re.compile(r"[0-9a-f]+", re.ASCII)
_GID_RE = re.compile(r"[0-9a-fA-F]{16}", re.ASCII)
_PROXY_SCHEMES = ("http", "https", "ftp", "socks4", "socks4a", "socks5", "socks5h")
_DEFAULT_PRIORITY_SIZE = 1024 * 1024  # aria2: head/tail without SIZE means 1M
_CONCURRENCY_DEFAULT = (5.0, 25.0)  # aria2's optimize-concurrent-downloads-coeffA/B


class OptionValueError(OptionError):
    """A bad value for a known option (exit 28); ``option`` names it, so the command line can
    show that option's help block, as aria2c does."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"option '--{option}': {reason}")
        self.option = option
        self.reason = reason


def option_error(spec: OptionSpec, reason: str) -> OptionValueError:
    """The error for a bad value of ``spec``: ``option '--NAME': REASON`` (exit 28)."""
    return OptionValueError(spec.name, reason)


# --- single values ----------------------------------------------------------------------


def _check_range(spec: OptionSpec, number: int | float) -> None:
    lo, hi = spec.min, spec.max
    if (lo is None or number >= lo) and (hi is None or number <= hi):
        return
    if spec.type is OptType.FLOAT:
        lo_s = None if lo is None else f"{lo:.1f}"
        hi_s = None if hi is None else f"{hi:.1f}"
    else:
        lo_s = None if lo is None else str(lo)
        hi_s = None if hi is None else str(hi)
    if lo_s is not None and hi_s is not None:
        raise option_error(spec, f"{spec.name} must be between {lo_s} and {hi_s}.")
    if lo_s is not None:
        raise option_error(spec, f"{spec.name} must be greater than or equal to {lo_s}.")
    raise option_error(spec, f"{spec.name} must be smaller than or equal to {hi_s}.")


def _parse_int(spec: OptionSpec, raw: str) -> int:
    text = raw.strip()
    if not _INT_RE.fullmatch(text) or len(text) > 40:
        raise option_error(spec, f"bad number {raw!r}")
    number = int(text)
    _check_range(spec, number)
    return number


def _size(spec: OptionSpec, raw: str) -> int:
    """aria2 ``util::getRealSize``: digits with an optional K or M (1K = 1024)."""
    m = _UNIT_RE.fullmatch(raw.strip())
    if m is None or len(m.group(1)) > 30:
        raise option_error(
            spec, f"bad or negative size {raw!r} (use digits with an optional K or M)"
        )
    mult = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(m.group(1)) * mult


def _parse_float(spec: OptionSpec, raw: str) -> float:
    text = raw.strip()
    if not _FLOAT_RE.fullmatch(text) or len(text) > 60:
        raise option_error(spec, f"bad number {raw!r}")
    number = float(text)
    if not math.isfinite(number):
        raise option_error(spec, f"bad number {raw!r}")
    _check_range(spec, number)
    return number


def _parse_int_range(spec: OptionSpec, raw: str) -> tuple[range, ...]:
    """aria2 ``util::parseIntSegments``: ``"1-5,8"``; each number within [min, max]."""
    out: list[range] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        if not _INT_RE.fullmatch(first) or (sep and not _INT_RE.fullmatch(last)):
            raise option_error(spec, f"bad integer range {part!r}")
        if len(first) > 20 or len(last) > 20:
            raise option_error(spec, f"bad integer range {part!r}")
        a = int(first)
        b = int(last) if sep else a
        if b < a:
            raise option_error(spec, f"bad integer range {part!r}")
        _check_range(spec, a)
        _check_range(spec, b)
        out.append(range(a, b + 1))
    if not out:
        raise option_error(spec, "an index or range such as '1-5,8' is required")
    return tuple(out)


def _parse_checksum(spec: OptionSpec, raw: str) -> tuple[str, str]:
    kind, sep, digest = raw.partition("=")
    kind = kind.strip().lower()
    digest = digest.strip().lower()
    accepted = spec.choices or tuple(HASH_HEX_LENGTHS)
    if not sep or kind not in accepted:
        raise option_error(spec, f"expected TYPE=HEXDIGEST with TYPE one of {', '.join(accepted)}")
    if len(digest) != HASH_HEX_LENGTHS[kind] or not _HEX_RE.fullmatch(digest):
        raise option_error(spec, f"{kind} needs {HASH_HEX_LENGTHS[kind]} hex digits")
    return kind, digest


def _split_host_port(text: str) -> tuple[str, str]:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", ""
        return host, rest[1:]
    host, _, port = text.rpartition(":")
    return host, port


def _parse_host_port(spec: OptionSpec, raw: str) -> tuple[str, int]:
    host, port = _split_host_port(raw.strip())
    if not host or not port.isdigit() or not port.isascii() or not 0 < int(port) < 65536:
        raise option_error(spec, f"expected HOST:PORT, got {raw!r}")
    return host, int(port)


def _redacted(uri: str) -> str:
    from ..net.proxy import redact_userinfo

    return redact_userinfo(uri)


def _parse_proxy(spec: OptionSpec, raw: str) -> str:
    text = raw.strip()
    if not text:
        return ""  # an empty value cancels a proxy set earlier (aria2)
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise option_error(spec, f"unrecognized proxy {_redacted(raw)!r}") from None
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise option_error(spec, f"unrecognized proxy {_redacted(raw)!r}")
    if port == 0:
        raise option_error(spec, f"unrecognized proxy {_redacted(raw)!r}")
    scheme = parts.scheme.lower()
    if scheme == "ftp":  # aria2 treats an ftp:// proxy as an HTTP proxy
        scheme = "http"
    return f"{scheme}://{parts.netloc}{parts.path or '/'}"


def _parse_priority(spec: OptionSpec, raw: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        word, eq, size = part.partition("=")
        if word not in ("head", "tail") or (eq and not size):
            raise option_error(spec, f"unrecognized token {part!r} (use head[=SIZE],tail[=SIZE])")
        out.append((word, _size(spec, size) if eq else _DEFAULT_PRIORITY_SIZE))
    return tuple(out)


def _parse_concurrency(spec: OptionSpec, raw: str) -> tuple[float, float] | None:
    if raw in ("true", ""):
        return _CONCURRENCY_DEFAULT
    if raw == "false":
        return None
    a, sep, b = raw.partition(":")
    if not sep or not b:
        raise option_error(spec, f"{spec.name} must be either 'true', 'false' or a pair A:B.")
    coeffs = []
    for text in (a, b):
        if not _FLOAT_RE.fullmatch(text) or not math.isfinite(float(text)):
            raise option_error(spec, f"bad number {text!r}")
        coeffs.append(float(text))
    return coeffs[0], coeffs[1]


def _parse_list_item(spec: OptionSpec, item: str) -> str:
    if spec.name == "index-out":
        index, eq, path = item.partition("=")
        index = index.strip()
        if not eq or not index.isdigit() or not index.isascii() or len(index) > 10:
            raise option_error(spec, f"expected INDEX=PATH, got {item!r}")
        if not path.strip():
            raise option_error(spec, f"path with index={int(index)} is empty")
    return item


def expand_home(spec: OptionSpec, value: str, home: str | None) -> str:
    """Replace ``${HOME}`` in PATH options, as aria2 does even for command-line values."""
    if home is None or spec.type is not OptType.PATH:
        return value
    return value.replace("${HOME}", home)


def parse_value(spec: OptionSpec, raw: str, *, home: str | None = None) -> OptionValue:
    """Parse and validate one raw value for ``spec``.

    An empty value for an option with an optional argument means its
    ``no_arg_value`` (``--continue=`` is ``--continue=true``), as in aria2.

    Args:
        spec: the option.
        raw: its string value.
        home: when given, ``${HOME}`` in PATH values is replaced by it.

    Returns:
        The typed value (see :data:`OptionValue`).

    Raises:
        OptionError: the value is invalid; the message names ``--NAME`` (exit 28).
    """
    if raw == "" and spec.arg is not ArgKind.REQUIRED and spec.no_arg_value is not None:
        raw = spec.no_arg_value
    kind = spec.type
    if kind is OptType.BOOL:
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise option_error(spec, f"{spec.name} must be either 'true' or 'false'.")
    if kind is OptType.INT:
        return _parse_int(spec, raw)
    if kind is OptType.UNIT:
        number = _size(spec, raw)
        _check_range(spec, number)
        return number
    if kind is OptType.FLOAT:
        return _parse_float(spec, raw)
    if kind is OptType.ENUM:
        if raw not in spec.choices:
            choices = " ".join(f"'{c}'" for c in spec.choices)
            raise option_error(spec, f"{spec.name} must be one of the following: {choices}")
        return raw
    if kind is OptType.PATH:
        return expand_home(spec, raw, home)
    if kind is OptType.STRING:
        if spec.name == "rpc-secret" and not raw:
            raise option_error(spec, "an empty string is not allowed")
        if spec.name == "gid" and (not _GID_RE.fullmatch(raw) or int(raw, 16) == 0):
            raise option_error(spec, "a GID is 16 hex digits and not all zero")
        return raw
    if kind is OptType.LIST:
        return tuple(_parse_list_item(spec, item) for item in raw.split("\n") if item)
    if kind is OptType.INT_RANGE:
        return _parse_int_range(spec, raw)
    if kind is OptType.CHECKSUM:
        return _parse_checksum(spec, raw)
    if kind is OptType.HOST_PORT:
        return _parse_host_port(spec, raw)
    if kind is OptType.PROXY:
        return _parse_proxy(spec, raw)
    if kind is OptType.PIECE_PRIORITY:
        return _parse_priority(spec, raw)
    return _parse_concurrency(spec, raw)


def value_to_string(spec: OptionSpec, value: OptionValue, raw: str) -> str:
    """The aria2 string form of a parsed value (what RPC ``getOption`` shows).

    Numbers are normalized like aria2 (``"1M"`` -> ``"1048576"``), booleans are
    ``true``/``false``, lists are joined with newlines; other types keep ``raw``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if spec.type in (OptType.INT, OptType.UNIT) and isinstance(value, int):
        return str(value)
    if spec.type is OptType.LIST and isinstance(value, tuple):
        return "\n".join(str(v) for v in value)
    if spec.type is OptType.CHECKSUM and isinstance(value, tuple):
        return f"{value[0]}={value[1]}"
    if spec.type is OptType.PROXY and isinstance(value, str):
        return value
    if spec.type is OptType.CONCURRENCY:
        return "false" if value is None else raw if ":" in raw else "true"
    return raw


def store_raw(out: dict[str, str], spec: OptionSpec, value: str) -> None:
    """Record ``value`` for ``spec`` in ``out``: LIST options accumulate, others are replaced."""
    if spec.type is OptType.LIST and spec.name in out:
        out[spec.name] = out[spec.name] + "\n" + value
    else:
        out[spec.name] = value
