"""Which options an RPC call may set, and in what form (pure).

aria2 (``src/RpcMethod.cc``) reads an option struct leniently: a name it does not know, or one
that is not allowed in that call, is skipped silently; a value must be a string, except that a
repeatable option (``header``, ``index-out``) also takes an array of strings.  Which names are
allowed comes from the option table's flags (:mod:`trioaria.cli.option_table`):

* ``addUri`` (and the other add methods) take the per-download ("initial") options;
* ``changeOption`` takes those changeable on a waiting download; on an active one only those
  changeable while active are applied live, the others restart the download (aria2);
* ``changeGlobalOption`` takes the global ones (``max-concurrent-downloads``,
  ``max-overall-download-limit``, ``log``, ...) plus the per-download options except
  ``checksum``, ``index-out``, ``out``, ``pause`` and ``select-file``.

``rpc-secret`` is never shown by ``getGlobalOption``; ``getOption`` shows per-download options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..cli.option_table import OPTIONS, OptionSpec, OptType

__all__ = [
    "OptionChange",
    "download_option_strings",
    "global_change",
    "global_option_strings",
    "request_options",
    "split_change",
]

OptionStruct = dict[str, str | list[str]]

_NOT_GLOBAL = frozenset({"checksum", "index-out", "out", "pause", "select-file"})


def _accept(spec: OptionSpec, value: Any) -> str | list[str] | None:
    if isinstance(value, str):
        return value
    if spec.type is OptType.LIST and isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return None


def _gather(struct: Mapping[str, Any], allowed: Any) -> OptionStruct:
    out: OptionStruct = {}
    for name, value in struct.items():
        spec = OPTIONS.get(name) if isinstance(name, str) else None
        if spec is None or not allowed(spec):
            continue
        accepted = _accept(spec, value)
        if accepted is not None:
            out[name] = accepted
    return out


def request_options(struct: Mapping[str, Any]) -> OptionStruct:
    """The options of an ``addUri`` struct that aria2 takes (per-download ones)."""
    return _gather(struct, lambda spec: spec.per_download)


@dataclass(frozen=True, slots=True)
class OptionChange:
    """``changeOption`` split: applied at once (``live``) and needing a restart (``restart``)."""

    live: OptionStruct
    restart: OptionStruct


def split_change(struct: Mapping[str, Any], *, active: bool) -> OptionChange:
    """Split a ``changeOption`` struct for a download that is ``active`` or not."""
    if not active:
        return OptionChange(_gather(struct, lambda spec: spec.change_waiting), {})
    live = _gather(struct, lambda spec: spec.change_active)
    restart = _gather(struct, lambda spec: spec.change_waiting and not spec.change_active)
    return OptionChange(live, restart)


def global_change(struct: Mapping[str, Any]) -> OptionStruct:
    """The options of a ``changeGlobalOption`` struct that aria2 takes."""
    return _gather(
        struct,
        lambda spec: spec.change_global or (spec.per_download and spec.name not in _NOT_GLOBAL),
    )


def download_option_strings(strings: Mapping[str, str]) -> dict[str, str]:
    """``getOption``: the per-download options that have a value."""
    return {k: v for k, v in strings.items() if k in OPTIONS and OPTIONS[k].per_download}


def global_option_strings(strings: Mapping[str, str]) -> dict[str, str]:
    """``getGlobalOption``: every option with a value except the RPC secret."""
    return {k: v for k, v in strings.items() if k in OPTIONS and k != "rpc-secret"}
