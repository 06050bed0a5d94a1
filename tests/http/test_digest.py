"""HTTP Digest authentication (RFC 7616): the pure core against the RFC's own example, and
the CLI against the fault server's ``/digest/`` path; ``.netrc`` credentials for HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.cli_util import run_cli
from tests.servers.fault import FaultServer
from trioaria.base.errors import ExitCode
from trioaria.http.digest_auth import Challenge, DigestAuth, parse_challenges, pick_digest

# RFC 7616 §3.9.1
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def _rfc_challenge(alg: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg},'
        f' nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_rfc7616_example(alg: str) -> None:
    challenge = pick_digest(parse_challenges([_rfc_challenge(alg)]))
    assert challenge is not None
    auth = DigestAuth(challenge, "Mufasa", "Circle of Life")
    assert auth.response("GET", "/dir/index.html", RFC_CNONCE, 1) == RFC_RESPONSES[alg]
    name, value = auth.header("GET", "/dir/index.html", RFC_CNONCE)
    assert name == "Authorization"
    assert value == (
        'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html",'
        f' algorithm={alg}, nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}",'
        f' qop=auth, response="{RFC_RESPONSES[alg]}", opaque="{RFC_OPAQUE}"'
    )
    assert "nc=00000002" in auth.header("GET", "/dir/index.html", RFC_CNONCE)[1]


def test_rfc7616_both_challenges_sha256_first() -> None:
    """§3.9.1 sends SHA-256 and MD5 challenges; the client takes the first it supports."""
    picked = pick_digest(parse_challenges([_rfc_challenge("SHA-256"), _rfc_challenge("MD5")]))
    assert picked is not None and picked.params["algorithm"] == "SHA-256"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (['Basic realm="x"'], [Challenge("basic", {"realm": "x"})]),
        (
            ['Basic realm="x", Digest realm="y", nonce="n"'],
            [Challenge("basic", {"realm": "x"}), Challenge("digest", {"realm": "y", "nonce": "n"})],
        ),
        (
            ['Digest realm="a \\"q\\" b",nonce=abc'],
            [Challenge("digest", {"realm": 'a "q" b', "nonce": "abc"})],
        ),
        (
            ["Negotiate abc==, Digest nonce=1"],
            [Challenge("negotiate", {}), Challenge("digest", {"nonce": "1"})],
        ),
        (['DIGEST NONCE="1", QOP="auth"'], [Challenge("digest", {"nonce": "1", "qop": "auth"})]),
        ([""], []),
    ],
)
def test_parse_challenges(headers: list[str], expected: list[Challenge]) -> None:
    assert parse_challenges(headers) == expected


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',  # not supported
        'Digest realm="r", nonce="n", qop="auth-int"',  # qop we do not do
        'Digest realm="r"',  # no nonce
        'Basic realm="r"',
    ],
)
def test_unusable_challenges(header: str) -> None:
    assert pick_digest(parse_challenges([header])) is None


def test_rfc2069_without_qop_and_sess() -> None:
    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    plain = DigestAuth(Challenge("digest", {"realm": "r", "nonce": "n"}), "u", "p")
    assert plain.response("GET", "/x", "c", 1) == h(f"{h('u:r:p')}:n:{h('GET:/x')}")
    assert "qop" not in plain.header("GET", "/x", "c")[1]
    sess = DigestAuth(
        Challenge("digest", {"realm": "r", "nonce": "n", "qop": "auth", "algorithm": "MD5-sess"}),
        "u",
        "p",
    )
    ha1 = h(f"{h('u:r:p')}:n:c")
    assert sess.response("GET", "/x", "c", 1) == h(f"{ha1}:n:00000001:c:auth:{h('GET:/x')}")


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
async def test_cli_digest(fault_server: FaultServer, tmp_path: Path, alg: str) -> None:
    big = bytes(range(256)) * (12 << 10)  # 3 MiB: three connections, each answers the nonce
    fault_server.add_file("big.bin", big)
    url = fault_server.url(f"/digest/big.bin?alg={alg}")
    res = await run_cli(
        "--http-user=user", "--http-passwd=pass", "-x3", "-s3", "-k1M", "-d", tmp_path / "d",
        "-o", "big.bin", url, home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "big.bin").read_bytes() == big
    answered = [
        r for r in fault_server.requests if r.headers.get("authorization", "").startswith("Digest")
    ]
    assert len(answered) >= 3
    assert all(f"algorithm={alg}" in r.headers["authorization"] for r in answered)
    # the nonce count goes up per request on one nonce (RFC 7616 §3.4)
    counts = sorted(r.headers["authorization"].split("nc=")[1][:8] for r in answered)
    assert len(set(counts)) == len(counts)


async def test_cli_digest_credentials_in_uri(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.url("/digest/data.bin").replace("http://", "http://user:pass@")
    res = await run_cli("-d", tmp_path / "d", url, home=tmp_path / "h")
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "data.bin").read_bytes() == fault_server.files["data.bin"]


async def test_cli_digest_wrong_password(fault_server: FaultServer, tmp_path: Path) -> None:
    res = await run_cli(
        "--http-user=user", "--http-passwd=wrong", "-d", tmp_path / "d",
        fault_server.url("/digest/data.bin"), home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == ExitCode.HTTP_AUTH_FAILED, res
    assert not (tmp_path / "d" / "data.bin").exists()
    # one unauthenticated try, one answer, then give up (no loop)
    assert len(fault_server.requests) <= 3


async def test_cli_netrc_for_http(fault_server: FaultServer, tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login user password pass\n")
    netrc.chmod(0o600)
    for path in ("/auth/data.bin", "/digest/data.bin"):
        res = await run_cli("-d", tmp_path / path.split("/")[1], fault_server.url(path), home=home)
        assert res.returncode == 0, res
    res = await run_cli("-n", "-d", tmp_path / "n", fault_server.url("/auth/data.bin"), home=home)
    assert res.returncode == ExitCode.HTTP_AUTH_FAILED, res


def test_netrc_domain_entry_and_default_for_http(tmp_path: Path) -> None:
    """A leading-dot machine matches sub-domains; ``default`` is not used for HTTP (aria2)."""
    from trioaria.http.source import HttpSource

    netrc = tmp_path / "netrc"
    netrc.write_text("machine .example.org login dom password dp\ndefault login any password ap\n")
    netrc.chmod(0o600)
    opts = {"netrc-path": str(netrc)}
    assert HttpSource("http://files.example.org/x", opts)._option_credentials() == ("dom", "dp")
    assert HttpSource("http://other.net/x", opts)._option_credentials() is None
    opts["no-netrc"] = True
    assert HttpSource("http://files.example.org/x", opts)._option_credentials() is None
