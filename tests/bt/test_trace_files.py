"""--trace=FILE and -l FILE that cannot be opened are one-line errors; the trace counts an IPv6
UDP tracker's peers by BEP 15's 18 bytes."""

from __future__ import annotations

from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria
from trioaria.bt.announce import _trace_datagram
from trioaria.bt.trace import Tracer
from trioaria.bt.tracker import AnnounceRequest


def test_unopenable_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    """--trace naming a directory (or an unwritable path): a one-line error naming the file,
    not 'ExceptionGroup: Exceptions from Trio nursery (1 sub-exception)'."""
    seed = tmp_path / "seed"
    seed.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(seed, [("a.bin", b"x" * 1000)], name="a.bin"))
    bad = tmp_path / "tracedir"
    bad.mkdir()
    res = run_trioaria(
        f"--dir={tmp_path / 'dl'}", "--enable-dht=false", "--bt-stop-timeout=2",
        f"--trace={bad}", str(torrent), timeout=30,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "ExceptionGroup" not in out and "Traceback" not in out, out
    assert str(bad) in out, out


class _Sink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)


def test_udp_trace_counts_ipv6_peers_as_18_bytes() -> None:
    """An IPv6 UDP tracker's announce answer carries 18-byte peers (BEP 15)."""
    import json

    sink = _Sink()
    tracer = Tracer(sink, clock=lambda: 0.0)  # type: ignore[arg-type]
    answer = (1).to_bytes(4, "big") + (7).to_bytes(4, "big") + bytes(12) + bytes(36)
    req = AnnounceRequest(bytes(20), bytes(20), 6881)
    _trace_datagram(tracer, "in", "[::1]:6969", answer, req, ipv6=True)
    (line,) = sink.lines
    assert json.loads(line)["peers"] == 2, line


def test_unopenable_log_file_is_not_a_traceback(tmp_path: Path) -> None:
    """``-l DIR``: one line naming the file, exit 16, not a traceback."""
    bad = tmp_path / "logdir"
    bad.mkdir()
    res = run_trioaria(f"-l{bad}", f"--dir={tmp_path}", "http://127.0.0.1:9/x", timeout=30)
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out[-400:]
