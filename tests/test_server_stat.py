"""aria2's server-stat file (trioaria.engine.server_stat): codec, update rules, and aria2c interop."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.cli_util import run_aria2c, run_cli, serve_copy, unique_name
from tests.servers.nginx import NginxServer
from trioaria.engine.server_stat import (
    ServerStat,
    ServerStatTable,
    load_file,
    parse,
    parse_line,
    save_file,
    serialize,
)

ARIA2_LINE = (
    "host=localhost, protocol=http, dl_speed=1234, sc_avg_speed=1200, mc_avg_speed=0,"
    " last_updated=1700000000, counter=2, status=OK"
)


def test_parse_aria2_line_and_write_it_back_identically() -> None:
    stat = parse_line(ARIA2_LINE)
    assert stat == ServerStat("localhost", "http", 1234, 1200, 0, 1700000000, 2, "OK")
    assert stat.line() == ARIA2_LINE


def test_parse_is_lenient_like_aria2() -> None:
    text = "\n".join(
        [
            "",
            "   ",
            # any field order, unknown keys ignored, old files without the averages/counter
            "status=ERROR, last_updated=5, whatever=1, dl_speed=7, protocol=ftp, host=a",
            "host=b, protocol=http, dl_speed=x, last_updated=5",  # bad number: skipped
            "host=c, protocol=http, dl_speed=1",  # no last_updated: skipped
            "protocol=http, dl_speed=1, last_updated=5",  # no host: skipped
            "host=d, protocol=http, dl_speed=1, last_updated=-5, status=BOGUS",
        ]
    )
    stats = parse(text.encode())
    assert [(s.host, s.protocol) for s in stats] == [("a", "ftp"), ("d", "http")]
    assert stats[0].status == "ERROR" and stats[0].dl_speed == 7 and stats[0].counter == 0
    assert stats[1].status == "OK" and stats[1].last_updated == -5


def test_table_first_record_wins_sorted_output() -> None:
    table = ServerStatTable(
        [ServerStat("b", "http", 1), ServerStat("a", "http", 2), ServerStat("b", "http", 3)]
    )
    assert len(table) == 2
    assert table.find("b", "http").dl_speed == 1  # type: ignore[union-attr]
    assert table.find("b", "ftp") is None
    assert [s.host for s in table] == ["a", "b"]


def test_remove_stale() -> None:
    table = ServerStatTable([ServerStat("old", "http", last_updated=0), ServerStat("new", "http")])
    table.find("new", "http").last_updated = 1000  # type: ignore[union-attr]
    assert table.remove_stale(500, now=1100) == 1
    assert [s.host for s in table] == ["new"]


def test_record_speed_running_mean_and_counter_reset() -> None:
    s = ServerStat("h", "http")
    s.record_speed(1000, single_connection=True, now=10)
    assert (s.counter, s.dl_speed, s.sc_avg_speed, s.last_updated) == (1, 1000, 1000, 10)
    s.record_speed(2000, single_connection=True, now=11)
    assert (s.counter, s.sc_avg_speed) == (2, 1500)
    # a sharp drop (below 80 % of the average) resets the counter: retest soon
    s.record_speed(10, single_connection=True, now=12)
    assert s.counter == 0 and s.sc_avg_speed < 1200
    m = ServerStat("h", "http", counter=5, mc_avg_speed=1000)
    m.record_speed(2000, single_connection=False, now=1)
    assert (m.counter, m.mc_avg_speed) == (6, 1200)  # weight 1/5 after five samples
    m.record_error(now=2)
    assert m.is_error and m.last_updated == 2
    m.record_speed(0, single_connection=False, now=3)  # nothing measured: no change
    assert m.is_error and m.counter == 6


hosts = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-:", min_size=1, max_size=20)
records = st.builds(
    ServerStat,
    host=hosts,
    protocol=st.sampled_from(["http", "https", "ftp", "sftp"]),
    dl_speed=st.integers(0, 2**32 - 1),
    sc_avg_speed=st.integers(0, 2**32 - 1),
    mc_avg_speed=st.integers(0, 2**32 - 1),
    last_updated=st.integers(-(2**31), 2**31 - 1),
    counter=st.integers(0, 2**32 - 1),
    status=st.sampled_from(["OK", "ERROR"]),
)


@given(st.lists(records, max_size=8))
def test_round_trip(stats: list[ServerStat]) -> None:
    table = ServerStatTable(stats)
    again = ServerStatTable(parse(serialize(table)))
    assert list(again) == list(table)


@given(st.binary(max_size=300))
def test_parse_never_raises(data: bytes) -> None:
    for s in parse(data):
        assert s.host and s.protocol and s.status in ("OK", "ERROR")


def test_files(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    table = ServerStatTable([ServerStat("h", "http", 5, last_updated=int(time.time()))])
    assert save_file(str(path), table)
    assert not (tmp_path / "stats__temp").exists()
    assert list(load_file(str(path), timeout=86400, now=time.time())) == list(table)
    assert len(load_file(str(path), timeout=10, now=time.time() + 20)) == 0  # stale
    assert len(load_file(str(tmp_path / "missing"), timeout=10, now=0)) == 0
    assert not save_file(str(tmp_path / "no" / "dir" / "stats"), table)


async def test_files_exchange_with_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    """aria2c reads what trioaria writes and the other way round."""
    name = unique_name("sstat")
    serve_copy(nginx, name, 600_000)
    # aria2c records no speed for a download that ends at once: throttle it to ~2 s
    url = nginx.url(f"/rate/200k/{name}")
    now = int(time.time())
    ours = tmp_path / "ours.txt"
    ours.write_text(
        f"host=mirror.example, protocol=ftp, dl_speed=4321, sc_avg_speed=4000,"
        f" mc_avg_speed=0, last_updated={now - 60}, counter=3, status=OK\n"
    )
    theirs_out, ours_out = tmp_path / "theirs_out.txt", tmp_path / "ours_out.txt"
    res = await run_aria2c(
        "-d", tmp_path / "a", f"--server-stat-if={ours}", f"--server-stat-of={theirs_out}", url,
        home=tmp_path / "h1",
    )  # fmt: skip
    assert res.returncode == 0, res
    theirs = ServerStatTable(parse(theirs_out.read_bytes()))
    kept = theirs.find("mirror.example", "ftp")
    assert kept is not None and (kept.dl_speed, kept.counter) == (4321, 3)
    local = theirs.find("127.0.0.1", "http")
    assert local is not None and local.dl_speed > 0 and local.counter == 1
    # now ours reads aria2c's file and writes both records back, the local one updated
    res = await run_cli(
        "-d", tmp_path / "b", f"--server-stat-if={theirs_out}", f"--server-stat-of={ours_out}",
        url, home=tmp_path / "h2",
    )  # fmt: skip
    assert res.returncode == 0, res
    mine = ServerStatTable(parse(ours_out.read_bytes()))
    assert mine.find("mirror.example", "ftp") == kept
    updated = mine.find("127.0.0.1", "http")
    assert updated is not None and updated.counter == 2 and updated.status == "OK"
    assert updated.sc_avg_speed > 0 and updated.last_updated >= local.last_updated
    # the file is line-for-line what aria2c would write for these records
    assert ours_out.read_text() == serialize(mine)
