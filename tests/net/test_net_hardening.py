"""The network layer under hostile or unusual input: credentials stay with the origin the user
named, host names go out in their ASCII (IDNA) form or fail as name-resolution errors, interim
1xx answers before a CONNECT's final one are skipped, the CGI ``HTTP_PROXY`` is not trusted
("httpoxy"), and a proxy's password never appears in a message (loopback servers, port 0)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from tests.cli_util import run_cli
from tests.resolver_util import StaticResolver
from tests.servers.canned import redirect_to, serve_canned
from tests.servers.fault import FaultServer
from trioaria.base.errors import OptionError
from trioaria.net.connect import open_stream
from trioaria.net.proxy import parse_proxy, redact_userinfo


async def test_http_user_credentials_not_sent_to_the_cross_origin_redirect_target(
    tmp_path: Path, nursery: trio.Nursery, fault_server: FaultServer
) -> None:
    """open_response drops Authorization when a redirect leaves the origin; the requests
    HttpSource sends afterwards straight to the redirect target must not carry it either."""
    target = fault_server.url("/ok/data.bin")
    port = await serve_canned(nursery, redirect_to(target))
    with trio.fail_after(30):
        res = await run_cli(
            "--use-head", "--http-user=alice", "--http-passwd=s3cret",
            "-d", tmp_path / "dl", f"http://127.0.0.1:{port}/file", home=tmp_path,
        )  # fmt: skip
    assert res.returncode == 0, res
    seen = [(r.method, "authorization" in r.headers) for r in fault_server.requests]
    # the other host must never see alice's password
    assert seen == [("HEAD", False), ("GET", False)], seen


# --- host names that need IDNA, or cannot be IDNA-encoded -----------------------------------


async def test_an_unencodable_host_name_is_a_name_resolution_error() -> None:
    """``exa..mple`` (an empty label) cannot be resolved: aria2c ends with errorCode=19
    ("Name resolution for exa..mple failed"); the UnicodeError of the idna codec must not
    escape as an unmapped error (exit 1)."""
    from trioaria.base.errors import NameResolveError
    from trioaria.net.connect import resolve

    with trio.fail_after(5):
        with pytest.raises(NameResolveError):
            await resolve("exa..mple", 80)


async def test_connect_sends_an_idn_host_in_its_ascii_form(nursery: trio.Nursery) -> None:
    """A direct connection and SOCKS5h IDNA-encode the host (trio's getaddrinfo, socks.py);
    the CONNECT request must too (RFC 9112 §3.2.3 authority form is ASCII): ``日本.example``
    is ``xn--wgv71a.example``."""
    from trioaria.net.connect import open_stream
    from trioaria.net.proxy import parse_proxy

    seen: list[bytes] = []
    port = await serve_canned(nursery, b"HTTP/1.1 200 OK\r\n\r\nhello", seen=seen, linger=3)
    with trio.fail_after(5):
        stream = await open_stream(
            "日本.example", 80, tls=None, connect_timeout=3,
            proxy=parse_proxy(f"http://127.0.0.1:{port}"),
        )  # fmt: skip
        assert await stream.receive_some(5) == b"hello"
        await stream.aclose()
    assert seen and seen[0].startswith(b"CONNECT xn--wgv71a.example:80 HTTP/1.1\r\n"), seen


# --- 1xx before the CONNECT answer -----------------------------------------------------------


async def test_connect_skips_an_interim_1xx_reply(nursery: trio.Nursery) -> None:
    """RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received
    prior to a final response, even if the client does not expect one."  A proxy that sends
    ``100 Continue`` before ``200`` opens the tunnel."""
    from trioaria.net.connect import open_stream
    from trioaria.net.proxy import parse_proxy

    seen: list[bytes] = []
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\nhello"
    port = await serve_canned(nursery, reply, seen=seen, linger=3)
    with trio.fail_after(5):
        stream = await open_stream(
            "127.0.0.1", 80, tls=None, connect_timeout=3,
            proxy=parse_proxy(f"http://127.0.0.1:{port}"),
        )  # fmt: skip
        assert await stream.receive_some(5) == b"hello"
        await stream.aclose()


# --- httpoxy ------------------------------------------------------------------------------


def test_upper_case_http_proxy_is_not_read_in_a_cgi_environment() -> None:
    """aria2 reads only lower-case ``http_proxy``; trioaria also reads ``HTTP_PROXY``, but under
    CGI (``REQUEST_METHOD`` set) ``HTTP_PROXY`` comes from the client's ``Proxy:`` request
    header (httpoxy, CVE-2016-5385): an attacker would route every download through their
    proxy.  Python's urllib, Go and curl ignore it there."""
    from trioaria.net.proxy import proxy_variables

    env = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker.example:8080"}
    assert "http-proxy" not in proxy_variables(env)


def test_a_proxy_password_is_not_shown_in_messages() -> None:
    from trioaria.base.errors import OptionError
    from trioaria.cli.options import Options
    from trioaria.net.proxy import parse_proxy

    with pytest.raises(OptionError) as info:
        parse_proxy("ftpx://alice:s3cret@proxy.example:8080")
    assert "s3cret" not in str(info.value) and "alice:***@" in str(info.value)
    with pytest.raises(OptionError) as info:
        Options.defaults().with_overrides({"all-proxy": "gopher://bob:hunter2@p:1"})
    assert "hunter2" not in str(info.value)


def _v4(port: int) -> tuple:
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))


async def test_an_idn_with_sharp_s_resolves_the_idna2008_name() -> None:
    """``faß.de`` is its own registered domain, ``xn--fa-hia.de`` (IDNA 2008 / UTS #46
    non-transitional: trio's resolver, curl/libidn2, browsers); Python's IDNA 2003 codec would
    make it ``fass.de``, another domain."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = int(server.getsockname()[1])
        resolver = StaticResolver({"xn--fa-hia.de": [_v4(port)], "fass.de": [_v4(port)]})
        trio.socket.set_custom_hostname_resolver(resolver)
        with trio.fail_after(5):
            stream = await open_stream("faß.de", port, tls=None, connect_timeout=3)
            await stream.aclose()
    assert resolver.asked == ["xn--fa-hia.de"], resolver.asked


def test_a_password_with_a_raw_at_sign_is_redacted_whole() -> None:
    """urllib (and parse_proxy) split userinfo at the LAST '@' (user 'u', password
    'p@ssw0rd'): the whole password is hidden."""
    assert "ssw0rd" not in redact_userinfo("http://u:p@ssw0rd@proxy.example:3128")


def test_unrecognized_proxy_message_does_not_show_the_password_tail() -> None:
    with pytest.raises(OptionError) as info:
        parse_proxy("http://u:p@ssw0rd@proxy.example:notaport")
    assert "ssw0rd" not in str(info.value), str(info.value)
