"""Options that decide where traffic goes are refused until implemented (issue 15, part 3).

Each case runs the real CLI against a loopback listener that only counts connections: a refused
option must end with exit 28 naming the option *before* any byte leaves, wherever it was set
(command line, ``aria2.conf``, an ``-i`` entry).  ``--all-proxy=`` (empty: "no proxy") is what
trioaria does anyway and still downloads; proxy environment variables are reported, not obeyed.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import trio

from tests.cli_util import CliResult, run_cli, run_process
from trioaria.base.errors import ExitCode, OptionError
from trioaria.cli.option_table import OPTIONS, REFUSED
from trioaria.cli.unsupported import check_refused, proxy_environment_notices
from trioaria.demo import serve_bytes

__all__: list[str] = []

PAYLOAD = bytes(range(256)) * 1024  # 256 KiB


class CountingListener:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes connections."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()

        async def handler(stream: trio.SocketStream) -> None:
            self.accepted += 1
            await stream.aclose()

        await trio.serve_listeners(handler, listeners)


async def _run_against_counter(args: list[str], home: Path) -> tuple[CliResult, int]:
    """Run the CLI with ``URL`` in ``args`` replaced by the counting listener's URL."""
    counter = CountingListener()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.serve)
        url = f"http://127.0.0.1:{counter.port}/file.bin"
        res = await run_cli(*[a.replace("URL", url) for a in args], home=home)
        nursery.cancel_scope.cancel()
    return res, counter.accepted


def _trioaria(*args: str) -> list[str]:
    return [sys.executable, "-m", "trioaria", *args]


PROXY = "http://127.0.0.1:9"  # nothing listens there; it must not matter


@pytest.mark.parametrize(
    "option",
    [
        f"--all-proxy={PROXY}",
        f"--http-proxy={PROXY}",
        f"--https-proxy={PROXY}",
        f"--ftp-proxy={PROXY}",
        "--no-proxy=localhost",
        "--proxy-method=tunnel",
        "--all-proxy-user=u",
        "--interface=lo",
        "--async-dns-server=127.0.0.1",
    ],
)
async def test_refused_on_the_command_line(option: str, tmp_path: Path) -> None:
    res, connections = await _run_against_counter(["-d", "dl", option, "URL"], tmp_path)
    name = option[2:].partition("=")[0]
    assert res.returncode == ExitCode.OPTION_ERROR, res
    assert connections == 0, f"{option} was refused only after connecting directly\n{res}"
    first = res.stderr.splitlines()[0]
    assert first.startswith(f"trioaria: option '--{name}' (set in the command line)"), res
    assert "not supported" in first and "See 'trioaria -h'." in res.stderr, res
    assert not (tmp_path / "dl").exists()


async def test_refused_in_the_conf_file_and_in_an_input_entry(tmp_path: Path) -> None:
    conf = tmp_path / "h1" / "aria2.conf"
    conf.parent.mkdir()
    conf.write_text(f"split=2\nall-proxy={PROXY}\n")
    from_conf, conf_connections = await _run_against_counter(
        [f"--conf-path={conf}", "URL"], tmp_path / "h1"
    )
    assert from_conf.returncode == ExitCode.OPTION_ERROR, from_conf
    assert conf_connections == 0
    assert f"option '--all-proxy' (set in {conf})" in from_conf.stderr, from_conf

    listing = tmp_path / "list.txt"
    counter = CountingListener()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.serve)
        url = f"http://127.0.0.1:{counter.port}/file.bin"
        listing.write_text(f"{url}\n  out=x.bin\n  http-proxy={PROXY}\n")
        plain, deferred = (
            await run_cli("-i", listing, home=tmp_path / "h2"),
            await run_cli("-i", listing, "--deferred-input", home=tmp_path / "h3"),
        )
        nursery.cancel_scope.cancel()
    assert counter.accepted == 0, (plain, deferred)
    for res in (plain, deferred):
        assert res.returncode == ExitCode.OPTION_ERROR, res
        assert f"option '--http-proxy' (set in the input file, entry {url})" in (
            res.stderr + res.stdout
        ), res


async def test_empty_proxy_and_environment_variables_download_directly(tmp_path: Path) -> None:
    port = serve_bytes(PAYLOAD)
    url = f"http://127.0.0.1:{port}/p.bin"
    env = {"http_proxy": PROXY, "HTTPS_PROXY": PROXY, "no_proxy": "localhost"}
    res = await run_process(
        _trioaria("--all-proxy=", "-d", "dl", url),
        home=tmp_path,
        env=env,
    )
    assert res.returncode == 0, res
    digest = hashlib.sha256((tmp_path / "dl" / "p.bin").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    warnings = [line for line in res.stderr.splitlines() if "environment variable" in line]
    assert len(warnings) == 3, res
    assert any("http_proxy" in w and "directly" in w for w in warnings), res
    assert any("HTTPS_PROXY" in w for w in warnings) and any("no_proxy" in w for w in warnings)
    # --help and --version download nothing: nothing is refused, nothing reported
    helped = await run_process(
        _trioaria(f"--all-proxy={PROXY}", "-h", "proxy"),
        home=tmp_path / "h",
        env=env,
    )
    assert helped.returncode == 0 and "environment variable" not in helped.stderr, helped


def test_refusal_rules() -> None:
    # every refused option is a known, unimplemented one; all proxy options are refused
    assert all(not OPTIONS[name].implemented and OPTIONS[name].refused for name in REFUSED)
    assert {n for n in OPTIONS if "proxy" in n} <= REFUSED.keys()
    check_refused({"all-proxy": "", "http-proxy": " ", "split": "4"}, where="x")  # "no proxy"
    with pytest.raises(OptionError, match="--no-proxy"):
        check_refused({"no-proxy": ""}, where="x")  # only an empty *address* cancels
    assert proxy_environment_notices({"HTTP_PROXY": "", "ftp_proxy": "h:1", "PATH": "/"}) == [
        "the environment variable ftp_proxy is set, but trioaria does not use proxies yet, so"
        " connections go directly to the servers, not through it."
    ]
