"""SFTP public-key login without passwords (OpenSSH sshd refuses them here): an ssh-agent,
``~/.ssh/config`` (Host/HostName/Port/User/IdentityFile), and the config parser itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli_util import run_process
from tests.servers.sftp import SshdServer, SshKeys
from trioaria.base.errors import ExitCode
from trioaria.sftp.ssh_config import HostConfig, lookup

CONFIG = """\
# global defaults come first only if nothing more specific was set before
Host files
    HostName 127.0.0.1
    Port 2222
    User alice
    IdentityFile ~/.ssh/files_key
    IdentityFile ~/.ssh/second

Host *.example.org !bad.example.org
  hostname=%h.internal
  user = bob

Host "quoted"
    HostName q.example

Match host files
    User mallory

Host *
    Port 22
    User fallback
    IdentityFile ~/.ssh/id_default
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "files",
            HostConfig(
                "127.0.0.1",
                2222,
                "alice",
                ("~/.ssh/files_key", "~/.ssh/second", "~/.ssh/id_default"),
            ),
        ),
        (
            "FILES",
            HostConfig(
                "127.0.0.1",
                2222,
                "alice",
                ("~/.ssh/files_key", "~/.ssh/second", "~/.ssh/id_default"),
            ),
        ),
        ("a.example.org", HostConfig("a.example.org.internal", 22, "bob", ("~/.ssh/id_default",))),
        ("bad.example.org", HostConfig(None, 22, "fallback", ("~/.ssh/id_default",))),
        ("other", HostConfig(None, 22, "fallback", ("~/.ssh/id_default",))),
    ],
)
def test_lookup(name: str, expected: HostConfig) -> None:
    assert lookup(CONFIG, name) == expected


def test_lookup_edge_cases() -> None:
    assert lookup("", "x") == HostConfig()
    assert lookup("Port 99999\nPort 80\n", "x").port is None  # first value wins, even bad
    assert lookup("HostName a%%b\n", "x").hostname == "a%b"
    assert lookup("Host x\nUser\n", "x").user is None


def test_match_blocks() -> None:
    config = (
        "Match originalhost files user deploy\n  Port 2201\n"
        "Match host 10.0.0.* !localuser root\n  User from-match\n"
        "Match exec true\n  Port 1\n"
        "Match canonical all\n  Port 2\n"
        "Match final\n  IdentityFile ~/.ssh/final\n"
        "Host files\n  HostName 10.0.0.5\n"
        "Match host 10.0.0.*\n  User after-hostname\n"
        "Match all\n  Port 22\n"
    )
    # originalhost and user (the URL's) both hold: 2201; exec and canonical never do
    assert lookup(config, "files", user="deploy", local_user="me") == HostConfig(
        "10.0.0.5", 2201, "after-hostname", ("~/.ssh/final",)
    )
    # another remote user: the first block is skipped; the host criterion is tested against
    # the HostName set so far, so only the block after it applies
    assert lookup(config, "files", user="other", local_user="me").port == 22
    assert lookup(config, "files", local_user="me").user == "after-hostname"
    # !localuser vetoes; a name typed as 10.0.0.7 matches `host` at once
    assert lookup(config, "10.0.0.7", local_user="me").user == "from-match"
    assert lookup(config, "10.0.0.7", local_user="root").user == "after-hostname"
    # without a URL user, `user` is tested against the User set so far, else the local one
    assert lookup("Match user me\n  Port 7\n", "x", local_user="me").port == 7
    assert lookup("User bob\nMatch user me\n  Port 7\n", "x", local_user="me").port is None
    # malformed lines never match
    assert lookup("Match\n  Port 7\nMatch host\n  Port 8\n", "x") == HostConfig()
    assert lookup("Match tagged x\n  Port 7\n", "x") == HostConfig()


INCLUDED = {
    "work.conf": "Host files\n  User carol\n  Port 2200\nHost *\n  IdentityFile ~/.ssh/from_include\n",
    "conf.d/10-a": "User from-a\n",
    "conf.d/20-b": "User from-b\n  HostName b.example\n",
    "loop": "Include loop\n",
}


def _loader(pattern: str) -> list[str]:
    """A stand-in for the driver's glob: ``*`` at the end matches by prefix, lexically."""
    if pattern.endswith("*"):
        return [INCLUDED[k] for k in sorted(INCLUDED) if k.startswith(pattern[:-1])]
    return [INCLUDED[pattern]] if pattern in INCLUDED else []


def test_include_reads_files_in_place() -> None:
    # the included file's settings come where the Include stands: first value wins
    config = "Include work.conf\nHost files\n  User alice\n"
    assert lookup(config, "files", include=_loader) == HostConfig(
        None, 2200, "carol", ("~/.ssh/from_include",)
    )
    # a Host line inside the included file does not end the including file's block
    config = "Host other\n  Include work.conf\n  User dave\n"
    assert lookup(config, "other", include=_loader) == HostConfig(
        None, None, "dave", ("~/.ssh/from_include",)
    )
    # an Include in a block that does not apply includes nothing
    assert lookup("Host nope\n  Include work.conf\n", "files", include=_loader) == HostConfig()
    # glob matches in lexical order; several arguments on one line
    assert lookup("Include conf.d/*\n", "x", include=_loader) == HostConfig(
        "b.example", None, "from-a", ()
    )
    assert lookup("Include missing conf.d/20-b\n", "x", include=_loader).user == "from-b"
    # without a loader, and for a file that includes itself: bounded, no error
    assert lookup("Include work.conf\n", "files") == HostConfig()
    assert lookup("Include loop\nUser u\n", "x", include=_loader).user == "u"


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(min_size=1, max_size=20), st.none() | st.text(max_size=8))
def test_lookup_never_raises(text: str, name: str, user: str | None) -> None:
    """Any text, any name (with Include lines resolved to the same text): a HostConfig."""
    calls = []

    def loader(pattern: str) -> list[str]:
        calls.append(pattern)
        return [text] if len(calls) < 50 else []

    result = lookup(text, name, include=loader, user=user, local_user="me")
    assert isinstance(result, HostConfig)
    assert result.port is None or 0 < result.port < 65536


def _sftp_url(
    sshd: SshdServer, name: str, *, host: str, user: bool = True, port: bool = True
) -> str:
    netloc = (f"{sshd.user}@" if user else "") + host + (f":{sshd.port}" if port else "")
    return f"sftp://{netloc}{sshd.root / name}"


async def test_ssh_agent_login(sshd: SshdServer, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """No key file anywhere in HOME: the agent holds the only key the server accepts."""
    name = f"agent-{os.urandom(4).hex()}.bin"
    data = os.urandom(300_000)
    sshd.add_file(name, data)
    sock = tmp_path / "agent.sock"
    agent = await trio.lowlevel.open_process(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(10):
            while not sock.exists():  # bounded by fail_after
                await trio.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(sock)}
        with trio.fail_after(10):
            add = await trio.run_process(
                ["ssh-add", str(ssh_keys.client_key)],
                env={**os.environ, **env},
                capture_stderr=True,
                check=False,
            )
        assert add.returncode == 0, add.stderr
        home = tmp_path / "h"
        url = _sftp_url(sshd, name, host="127.0.0.1")
        cli = [sys.executable, "-m", "trioaria", "-d"]
        res = await run_process([*cli, str(tmp_path / "out"), url], home=home, env=env)
        assert res.returncode == ExitCode.FINISHED, res
        assert (tmp_path / "out" / name).read_bytes() == data
        # the same run without the agent: no key, password login refused -> exit 1
        res = await run_process(
            [*cli, str(tmp_path / "out2"), url], home=home, env={"SSH_AUTH_SOCK": ""}
        )
        assert res.returncode == 1, res
        assert not (tmp_path / "out2" / name).exists()
    finally:
        agent.terminate()
        with trio.move_on_after(10):
            await agent.wait()


async def test_ssh_config_host_alias(sshd: SshdServer, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """``sftp://myserver/...`` with no user and no port: HostName, Port, User and
    IdentityFile come from ~/.ssh/config (here through its ``Include``)."""
    name = f"config-{os.urandom(4).hex()}.bin"
    data = os.urandom(200_000)
    sshd.add_file(name, data)
    home = tmp_path / "h"
    (home / ".ssh").mkdir(parents=True)
    (home / "keys").mkdir()
    key = home / "keys" / "work"
    key.write_bytes(ssh_keys.client_key.read_bytes())
    key.chmod(0o600)
    # the Host block lives in a file the config includes (relative: under ~/.ssh)
    (home / ".ssh" / "config.d").mkdir()
    (home / ".ssh" / "config").write_text("Include config.d/*.conf\n")
    (home / ".ssh" / "config.d" / "servers.conf").write_text(
        f"Host myserver\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        "  IdentityFile ~/keys/work\n"
    )
    url = _sftp_url(sshd, name, host="myserver", user=False, port=False)
    res = await run_process(
        [sys.executable, "-m", "trioaria", "-d", str(tmp_path / "out"), url],
        home=home, env={"SSH_AUTH_SOCK": ""},
    )  # fmt: skip
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out" / name).read_bytes() == data
    # without the IdentityFile line the key is not found: refused (password login is off)
    (home / ".ssh" / "config").write_text(
        f"Host myserver\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
    )
    res = await run_process(
        [sys.executable, "-m", "trioaria", "-d", str(tmp_path / "out2"), url],
        home=home, env={"SSH_AUTH_SOCK": ""},
    )  # fmt: skip
    assert res.returncode == 1, res
