"""Cookies end to end: the CLI against the fault server's ``/cookie/`` path, which answers 403
without the cookie ``session=ok`` (tests/servers/fault.py)."""

from __future__ import annotations

from pathlib import Path

from tests.cli_util import run_cli
from tests.http.test_cookie_files import make_chromium, make_firefox
from tests.servers.fault import FaultServer
from trioaria.base.errors import ExitCode


async def test_403_without_cookie(fault_server: FaultServer, tmp_path: Path) -> None:
    res = await run_cli("-d", tmp_path / "d", fault_server.url("/cookie/data.bin"), home=tmp_path)
    assert res.returncode == ExitCode.HTTP_PROTOCOL_ERROR, res
    assert not (tmp_path / "d" / "data.bin").exists()


async def test_load_cookies_each_format(fault_server: FaultServer, tmp_path: Path) -> None:
    text = tmp_path / "cookies.txt"
    text.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tok\n")
    firefox = tmp_path / "cookies.sqlite"
    make_firefox(firefox)
    chromium = tmp_path / "Cookies"
    make_chromium(chromium)
    want = fault_server.files["data.bin"]
    for i, jar in enumerate((text, firefox, chromium)):
        out = tmp_path / f"d{i}"
        res = await run_cli(
            "--load-cookies",
            jar,
            "-x2",
            "-s2",
            "--min-split-size=1M",
            "-d",
            out,
            fault_server.url("/cookie/data.bin"),
            home=tmp_path / f"h{i}",
        )
        assert res.returncode == 0, res
        assert (out / "data.bin").read_bytes() == want
    sent = [r for r in fault_server.requests if r.target == "/cookie/data.bin"]
    assert sent and all(r.headers.get("cookie") == "session=ok" for r in sent)


async def test_set_cookie_across_redirect_and_saved(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """``/setcookie/`` sets the cookie on a 302 to ``/cookie/``: the redirected request, and
    every later connection (-x2), must carry it; --save-cookies writes it out."""
    saved = tmp_path / "saved.txt"
    big = bytes(range(256)) * (16 << 10)  # 4 MiB: four 1 MiB segments
    fault_server.add_file("big.bin", big)
    res = await run_cli(
        "--save-cookies",
        saved,
        "-x4",
        "-s4",
        "-k1M",
        "--header",
        "Cookie: mine=1",
        "-d",
        tmp_path / "d",
        fault_server.url("/setcookie/big.bin"),
        home=tmp_path,
    )
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "big.bin").read_bytes() == big
    to_cookie = [r for r in fault_server.requests if r.target == "/cookie/big.bin"]
    assert len(to_cookie) >= 2  # the redirected probe and other connections' ranges
    assert all(r.headers.get("cookie") == "mine=1; session=ok" for r in to_cookie)
    lines = saved.read_text().splitlines()
    assert "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tok" in lines
