"""``--trace=FILE``: every peer-wire and tracker message, both directions, one JSON line each.

Theory of operation
-------------------
For research and teaching, a download can record what it says and hears.  Each line of the file
is one JSON object with the same leading keys (the schema is in the README, "BitTorrent"):

* ``t``: wall-clock time, seconds since the epoch (float);
* ``dir``: ``"in"`` (received) or ``"out"`` (sent);
* ``proto``: ``"peer"`` (BEP 3 peer wire and its extensions), ``"http-tracker"`` (BEP 3/23
  announces) or ``"udp-tracker"`` (BEP 15 datagrams);
* ``peer``: the other side: ``host:port`` of a peer or a UDP tracker, the announce URL of an
  HTTP tracker;
* ``type``: the message in snake case (``handshake``, ``bitfield``, ``request``, ``piece``,
  ``extended_handshake``, ``announce``, ``announce_response``, ``connect``, ...);

then the message's own fields (:func:`message_fields`): integers and strings as they are,
short binary fields (info hash, peer id, bitfields up to 4 KiB) as lowercase hex, and bulk
payload only as its length (``piece`` carries ``length``, never the data).

The file is opened once per process (every download naming it shares one :class:`Tracer`),
truncated, and written line-buffered, so a crash loses at most the line being written.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from ..base.errors import ExitCode, StorageError

__all__ = ["Tracer", "message_fields", "message_type", "open_tracer"]

MAX_HEX = 4096  # binary fields up to this many bytes are written as hex, longer ones as a length
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def message_type(message: object) -> str:
    """``PieceRequest`` -> ``piece_request``: the ``type`` of a message object."""
    return _CAMEL.sub("_", type(message).__name__).lower()


def _value(name: str, value: object) -> tuple[str, object]:
    if isinstance(value, bytes | bytearray | memoryview):
        n = len(value)
        if name == "data" or n > MAX_HEX:
            return ("length" if name == "data" else f"{name}_length"), n
        return name, bytes(value).hex()
    if isinstance(value, enum.Enum):
        return name, value.name.lower()
    if isinstance(value, bool | int | float | str) or value is None:
        return name, value
    if isinstance(value, Mapping):
        return name, {str(k): _value(str(k), v)[1] for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        return name, [_value(name, v)[1] for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return name, message_fields(value)
    return name, str(value)


def message_fields(message: object) -> dict[str, object]:
    """The fields of a message dataclass as JSON values (see the module docstring)."""
    if not dataclasses.is_dataclass(message) or isinstance(message, type):
        return {}
    out: dict[str, object] = {}
    for field in dataclasses.fields(message):
        key, value = _value(field.name, getattr(message, field.name))
        out[key] = value
    return out


class Tracer:
    """Writes trace lines to ``out``; ``clock`` gives the ``t`` field.

    Args:
        out: a text file (line-buffered is best).
        clock: seconds since the epoch (``time.time``; tests may pass another).
    """

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.time) -> None:
        self._out = out
        self._clock = clock
        self.lines = 0

    def record(
        self, direction: str, proto: str, peer: str, kind: str, fields: Mapping[str, object]
    ) -> None:
        """Write one line: the five common keys, then ``fields``."""
        line: dict[str, object] = {
            "t": round(self._clock(), 6),
            "dir": direction,
            "proto": proto,
            "peer": peer,
            "type": kind,
        }
        for key, value in fields.items():
            line.setdefault(key, value)
        try:
            self._out.write(json.dumps(line, separators=(",", ":")) + "\n")
        except (OSError, ValueError):  # a full disk or a closed file must not stop a download
            return
        self.lines += 1

    def message(self, direction: str, proto: str, peer: str, message: object) -> None:
        """One message object (a peer-wire event, a tracker request or answer)."""
        self.record(direction, proto, peer, message_type(message), message_fields(message))

    def close(self) -> None:
        self._out.close()


_OPEN: dict[str, Tracer] = {}


def open_tracer(path: str) -> Tracer:
    """The process's tracer for ``path`` (opened and truncated on first use).

    Raises:
        StorageError: the file cannot be opened (exit 16).
    """
    key = os.path.abspath(os.path.expanduser(path))
    tracer = _OPEN.get(key)
    if tracer is None:
        directory = os.path.dirname(key)
        try:
            if directory:
                os.makedirs(directory, exist_ok=True)
            out = open(key, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise StorageError(
                f"cannot open the trace file {path}: {exc.strerror}",
                exit_code=ExitCode.FILE_CREATE_ERROR,
            ) from None
        tracer = _OPEN[key] = Tracer(out)
    return tracer
