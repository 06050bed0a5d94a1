"""Options that decide where traffic goes are refused until implemented (issue 15, part 3).

Each case runs the real CLI against a loopback listener that only counts connections: a refused
option must end with exit 28 naming the option *before* any byte leaves, wherever it was set
(command line, ``aria2.conf``, an ``-i`` entry).  The proxy options used to be refused this way;
they are implemented now (tests/net/test_proxy_*.py), so here they must *not* be refused, and an
empty proxy option overrides the environment's proxy (aria2's precedence).
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
from trioaria.cli.unsupported import check_refused, proxy_environment_options
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
        "--interface=lo",
        "--multiple-interface=lo",
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
    conf.write_text("split=2\ninterface=lo\n")
    from_conf, conf_connections = await _run_against_counter(
        [f"--conf-path={conf}", "URL"], tmp_path / "h1"
    )
    assert from_conf.returncode == ExitCode.OPTION_ERROR, from_conf
    assert conf_connections == 0
    assert f"option '--interface' (set in {conf})" in from_conf.stderr, from_conf

    listing = tmp_path / "list.txt"
    counter = CountingListener()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.serve)
        url = f"http://127.0.0.1:{counter.port}/file.bin"
        listing.write_text(f"{url}\n  out=x.bin\n  hash-check-only=true\n")
        plain, deferred = (
            await run_cli("-i", listing, home=tmp_path / "h2"),
            await run_cli("-i", listing, "--deferred-input", home=tmp_path / "h3"),
        )
        nursery.cancel_scope.cancel()
    assert counter.accepted == 0, (plain, deferred)
    for res in (plain, deferred):
        assert res.returncode == ExitCode.OPTION_ERROR, res
        assert f"option '--hash-check-only' (set in the input file, entry {url})" in (
            res.stderr + res.stdout
        ), res


async def test_empty_proxy_options_override_the_environment(tmp_path: Path) -> None:
    """aria2: the command line wins over ``http_proxy``; ``--http-proxy=`` (and
    ``--all-proxy=``) mean "no proxy", so the download goes directly."""
    port = serve_bytes(PAYLOAD)
    url = f"http://127.0.0.1:{port}/p.bin"
    env = {"http_proxy": PROXY, "ALL_PROXY": PROXY, "no_proxy": "example.org"}
    res = await run_process(
        _trioaria("--all-proxy=", "--http-proxy=", "-d", "dl", url),
        home=tmp_path,
        env=env,
    )
    assert res.returncode == 0, res
    digest = hashlib.sha256((tmp_path / "dl" / "p.bin").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert "environment variable" not in res.stderr, res
    # without the override the environment's (dead) proxy is used: no silent direct route
    res = await run_process(
        _trioaria("--max-tries=1", "-d", "dl2", url), home=tmp_path / "h", env=env
    )
    assert res.returncode == 1, res
    assert "127.0.0.1:9" in res.stdout + res.stderr, res
    assert not (tmp_path / "h" / "dl2" / "p.bin").exists()
    # --help and --version download nothing and report nothing
    helped = await run_process(
        _trioaria(f"--all-proxy={PROXY}", "-h", "proxy"),
        home=tmp_path / "h3",
        env={**env, "https_proxy": "gopher://x"},
    )
    assert helped.returncode == 0 and "environment variable" not in helped.stderr, helped


def test_refusal_rules() -> None:
    # every refused option is a known, unimplemented one; no proxy option is refused any more
    assert all(not OPTIONS[name].implemented and OPTIONS[name].refused for name in REFUSED)
    assert not {n for n in OPTIONS if "proxy" in n} & REFUSED.keys()
    check_refused({"all-proxy": PROXY, "no-proxy": "", "split": "4"}, where="x")
    with pytest.raises(OptionError, match="--interface"):
        check_refused({"interface": "lo"}, where="x")
    assert proxy_environment_options({"HTTP_PROXY": "", "ftp_proxy": "h:1", "PATH": "/"}) == (
        {"ftp-proxy": "h:1"},
        [],
    )
