"""Server performance records: ``--server-stat-if``, ``--server-stat-of``, ``--server-stat-timeout``.

The file format is aria2's (``src/ServerStatMan.cc``, ``src/ServerStat.cc``), so the two
programs can share one file: one record per line, comma-separated ``key=value`` fields, written
in this order and sorted by host, then protocol::

    host=example.org, protocol=http, dl_speed=102400, sc_avg_speed=0, mc_avg_speed=98000, last_updated=1700000000, counter=3, status=OK

Reading is lenient as aria2's: fields may come in any order and unknown keys are ignored;
blank lines are skipped; a line without ``host`` or ``protocol``, or whose ``dl_speed`` or
``last_updated`` is not a number, is skipped; ``sc_avg_speed``, ``mc_avg_speed`` and
``counter`` may be missing (older files).  ``status`` is ``OK`` or ``ERROR``.

Updating at the end of a download follows aria2's ``collectStat``: for each host that served
data, the fastest connection's average speed becomes ``dl_speed``, the counter grows, and the
single-connection or multi-connection average (the download used one connection or more) moves
towards it -- a running mean over the first five samples, then weight 1/5.  A
single-connection average that falls below 80 % of its old value resets the counter (so the
adaptive selector retests the server soon).  Records older than ``--server-stat-timeout``
seconds are dropped after loading.

:class:`ServerStatTable` and the codec are pure; :func:`load_file` and :func:`save_file` are
the small synchronous driver helpers (read at start, write to a temp name and rename at exit,
as aria2 does with ``<file>__temp``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ServerStat",
    "ServerStatTable",
    "load_file",
    "parse",
    "parse_line",
    "save_file",
    "serialize",
    "table_from_options",
]

log = logging.getLogger("trioaria.engine.server_stat")

_FIELDS = (
    "counter",
    "dl_speed",
    "host",
    "last_updated",
    "mc_avg_speed",
    "protocol",
    "sc_avg_speed",
    "status",
)
_U32 = (1 << 32) - 1
_I32 = (1 << 31) - 1


@dataclass(slots=True)
class ServerStat:
    """What we know about one (host, protocol)."""

    host: str
    protocol: str
    dl_speed: int = 0
    sc_avg_speed: int = 0
    mc_avg_speed: int = 0
    last_updated: int = 0  # seconds since the epoch
    counter: int = 0
    status: str = "OK"  # "OK" or "ERROR"

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"

    @property
    def best_speed(self) -> int:
        """The larger average (what aria2's adaptive selector ranks by)."""
        return max(self.sc_avg_speed, self.mc_avg_speed)

    def record_speed(self, speed: int, *, single_connection: bool, now: int) -> None:
        """One finished download measured ``speed`` bytes/s on this server."""
        if speed <= 0:
            return
        self.counter += 1
        self.dl_speed = speed
        self.status = "OK"
        self.last_updated = now
        if single_connection:
            old = self.sc_avg_speed
            new = _running_mean(old, speed, self.counter)
            if new < int(0.8 * old):
                self.counter = 0  # speed dropped: retest soon (aria2)
            self.sc_avg_speed = new
        else:
            self.mc_avg_speed = _running_mean(self.mc_avg_speed, speed, self.counter)

    def record_error(self, now: int) -> None:
        self.status = "ERROR"
        self.last_updated = now

    def line(self) -> str:
        return (
            f"host={self.host}, protocol={self.protocol}, dl_speed={self.dl_speed},"
            f" sc_avg_speed={self.sc_avg_speed}, mc_avg_speed={self.mc_avg_speed},"
            f" last_updated={self.last_updated}, counter={self.counter}, status={self.status}"
        )


def _running_mean(old: int, sample: int, counter: int) -> int:
    if counter < 5:
        return int(((counter - 1) / counter) * old + sample / counter)
    return int(0.8 * old + 0.2 * sample)


def _uint(text: str, bound: int = _U32) -> int | None:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if value <= bound else None


def _int(text: str) -> int | None:
    text = text.strip()
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        return None
    value = int(text)
    return value if -_I32 - 1 <= value <= _I32 else None


def parse_line(line: str) -> ServerStat | None:
    """One record, or ``None`` for a blank or unusable line (aria2 skips those)."""
    fields: dict[str, str] = {}
    for item in line.strip().split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key in _FIELDS:
            fields[key] = value.strip()
    host, protocol = fields.get("host", ""), fields.get("protocol", "")
    if not host or not protocol:
        return None
    stat = ServerStat(host, protocol)
    dl = _uint(fields.get("dl_speed", ""))
    if dl is None:
        return None
    stat.dl_speed = dl
    for key in ("sc_avg_speed", "mc_avg_speed", "counter"):
        raw = fields.get(key, "")
        if raw:
            num = _uint(raw)
            if num is None:
                return None
            setattr(stat, key, num)
    updated = _int(fields.get("last_updated", ""))
    if updated is None:
        return None
    stat.last_updated = updated
    if fields.get("status") in ("OK", "ERROR"):
        stat.status = fields["status"]
    return stat


def parse(data: str | bytes) -> list[ServerStat]:
    """Every usable record of a server-stat file, in file order (duplicates kept)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = []
    for line in text.splitlines():
        stat = parse_line(line)
        if stat is not None:
            out.append(stat)
    return out


def serialize(stats: ServerStatTable) -> str:
    return "".join(s.line() + "\n" for s in stats)


class ServerStatTable:
    """Records keyed by (host, protocol); the first record for a key wins (aria2 ``add``)."""

    def __init__(self, stats: list[ServerStat] | None = None) -> None:
        self._by_key: dict[tuple[str, str], ServerStat] = {}
        for s in stats or ():
            self.add(s)

    def add(self, stat: ServerStat) -> bool:
        key = (stat.host, stat.protocol)
        if key in self._by_key:
            return False
        self._by_key[key] = stat
        return True

    def find(self, host: str, protocol: str) -> ServerStat | None:
        return self._by_key.get((host, protocol))

    def get_or_create(self, host: str, protocol: str) -> ServerStat:
        stat = self._by_key.get((host, protocol))
        if stat is None:
            stat = self._by_key[(host, protocol)] = ServerStat(host, protocol)
        return stat

    def remove_stale(self, timeout: float, now: float) -> int:
        """Drop records not updated for ``timeout`` seconds; returns how many went."""
        stale = [k for k, s in self._by_key.items() if now - s.last_updated >= timeout]
        for k in stale:
            del self._by_key[k]
        return len(stale)

    def __iter__(self) -> Iterator[ServerStat]:
        return iter(sorted(self._by_key.values(), key=lambda s: (s.host, s.protocol)))

    def __len__(self) -> int:
        return len(self._by_key)


# --- driver helpers -------------------------------------------------------------------------


def load_file(path: str, *, timeout: float, now: float) -> ServerStatTable:
    """``--server-stat-if``: read the file, drop stale records; an unreadable file is an error
    line in the log and an empty table (aria2 goes on too)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        log.error("Failed to open ServerStat file %s for read: %s", path, exc)
        return ServerStatTable()
    table = ServerStatTable(parse(data))
    table.remove_stale(timeout, now)
    log.log(logging.INFO + 5, "ServerStat file %s loaded successfully.", path)
    return table


def save_file(path: str, table: ServerStatTable) -> bool:
    """``--server-stat-of``: write ``<path>__temp`` then rename over ``path``."""
    target = Path(path)
    temp = target.with_name(target.name + "__temp")
    try:
        temp.write_text(serialize(table), encoding="utf-8")
        temp.replace(target)
    except OSError as exc:
        log.error("Failed to write ServerStat to %s: %s", path, exc)
        return False
    log.log(logging.INFO + 5, "ServerStat file %s saved successfully.", path)
    return True


def table_from_options(options: Any, now: float) -> ServerStatTable:
    """The table a run starts with: ``--server-stat-if`` loaded (stale records dropped), or empty."""
    path = options.get("server-stat-if")
    if not path:
        return ServerStatTable()
    timeout = float(options.get("server-stat-timeout"))
    return load_file(str(path), timeout=timeout, now=now)
