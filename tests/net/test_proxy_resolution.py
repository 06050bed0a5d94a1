"""Proxy selection (trioaria.net.proxy): options, --all-proxy fallback, credentials,
--no-proxy names/domains/CIDR, --proxy-method, and the environment variables' precedence
(aria2's ``getProxyOptionFor``, ``inNoProxy`` and ``overrideWithEnv``)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import OptionError
from trioaria.cli.options import build_options
from trioaria.cli.unsupported import check_refused, proxy_environment_options
from trioaria.net.proxy import (
    Proxy,
    ProxyRoute,
    ProxySettings,
    no_proxy_match,
    parse_proxy,
    proxy_variables,
)


def settings(**given: str) -> ProxySettings:
    opts = build_options({k.replace("_", "-"): v for k, v in given.items()}, {})
    return ProxySettings.from_options(opts.get)


# --- parsing proxy URIs ----------------------------------------------------------------------

PARSE_CASES = [
    ("proxy:3128", Proxy("http", "proxy", 3128)),
    ("proxy", Proxy("http", "proxy", 80)),
    ("http://u:p@proxy:8080/", Proxy("http", "proxy", 8080, "u", "p")),
    ("ftp://proxy:21", Proxy("http", "proxy", 21)),  # aria2: an ftp:// proxy is an HTTP proxy
    ("https://proxy", Proxy("https", "proxy", 443)),
    ("socks5://u%40x:p%3Aw@[::1]:1080", Proxy("socks5", "::1", 1080, "u@x", "p:w")),
    ("socks5h://h", Proxy("socks5h", "h", 1080)),
    ("SOCKS4A://h:9", Proxy("socks4a", "h", 9)),
    ("socks4://10.0.0.1:1", Proxy("socks4", "10.0.0.1", 1)),
    ("http://u@h:1", Proxy("http", "h", 1, "u", None)),
]


@pytest.mark.parametrize(("uri", "expected"), PARSE_CASES)
def test_parse_proxy(uri: str, expected: Proxy) -> None:
    assert parse_proxy(uri) == expected


@pytest.mark.parametrize("uri", ["gopher://h:1", "http://:80", "http://h:0", "http://h:99999"])
def test_parse_proxy_rejects(uri: str) -> None:
    with pytest.raises(OptionError):
        parse_proxy(uri)


def test_label_and_authorization_hide_nothing_they_should_not() -> None:
    proxy = parse_proxy("http://puser:ppass@[::1]:3128")
    assert proxy.label == "http://[::1]:3128"  # never the password
    assert proxy.authorization() == "Basic cHVzZXI6cHBhc3M="  # RFC 7617 example form
    assert parse_proxy("h:1").authorization() is None
    assert parse_proxy("http://u@h:1").authorization() == "Basic dTo="


# --- which proxy for which URI -----------------------------------------------------------------

P_ALL = "http://all:1"
P_HTTP = "http://hp:2"
P_HTTPS = "http://sp:3"
P_FTP = "http://fp:4"

ROUTE_CASES: list[tuple[dict[str, str], str, str, tuple[str, int, bool] | None]] = [
    # (options, scheme, host, (proxy host, port, tunnel) or None for direct)
    ({}, "http", "example.org", None),
    ({"all_proxy": P_ALL}, "http", "example.org", ("all", 1, False)),
    ({"all_proxy": P_ALL}, "https", "example.org", ("all", 1, True)),  # https always tunnels
    ({"all_proxy": P_ALL}, "ftp", "example.org", ("all", 1, False)),  # ftp: GET by default
    ({"all_proxy": P_ALL}, "sftp", "example.org", ("all", 1, True)),  # sftp always tunnels
    ({"all_proxy": P_ALL}, "ftps", "example.org", ("all", 1, True)),
    ({"all_proxy": P_ALL, "proxy_method": "tunnel"}, "http", "h", ("all", 1, True)),
    ({"all_proxy": P_ALL, "proxy_method": "tunnel"}, "ftp", "h", ("all", 1, True)),
    ({"all_proxy": P_ALL, "http_proxy": P_HTTP}, "http", "h", ("hp", 2, False)),
    ({"all_proxy": P_ALL, "http_proxy": P_HTTP}, "https", "h", ("all", 1, True)),
    ({"https_proxy": P_HTTPS}, "https", "h", ("sp", 3, True)),
    ({"https_proxy": P_HTTPS}, "http", "h", None),
    ({"ftp_proxy": P_FTP}, "sftp", "h", ("fp", 4, True)),  # sftp uses the FTP proxy (aria2)
    ({"ftp_proxy": P_FTP}, "ftp", "h", ("fp", 4, False)),
    ({"ftp_proxy": P_FTP}, "http", "h", None),
    ({"all_proxy": "socks5://s:5"}, "http", "h", ("s", 5, True)),  # SOCKS is always a tunnel
    ({"all_proxy": "socks5h://s:5"}, "ftp", "h", ("s", 5, True)),
    ({"all_proxy": P_ALL, "http_proxy": ""}, "http", "h", ("all", 1, False)),  # "" falls back
    ({"all_proxy": P_ALL, "no_proxy": "h"}, "http", "h", None),
    ({"all_proxy": P_ALL, "no_proxy": "other,h"}, "ftp", "h", None),
    ({"all_proxy": P_ALL, "no_proxy": "other"}, "http", "h", ("all", 1, False)),
    ({"all_proxy": P_ALL}, "magnet", "h", None),
]


@pytest.mark.parametrize(("given", "scheme", "host", "expected"), ROUTE_CASES)
def test_route(
    given: dict[str, str], scheme: str, host: str, expected: tuple[str, int, bool] | None
) -> None:
    route = settings(**given).route(scheme, host)
    if expected is None:
        assert route is None
    else:
        assert route is not None
        assert (route.proxy.host, route.proxy.port, route.tunnel) == expected


def test_credentials_options_replace_the_uri_ones_for_their_own_proxy_only() -> None:
    s = settings(
        all_proxy="http://a:b@all:1",
        all_proxy_user="au",
        http_proxy="http://x:y@hp:2",
        http_proxy_passwd="hpw",
        https_proxy="sp:3",
        https_proxy_user="su",
    )
    assert (s.http.user, s.http.password) == ("x", "hpw")  # type: ignore[union-attr]
    assert (s.https.user, s.https.password) == ("su", None)  # type: ignore[union-attr]
    assert (s.ftp.user, s.ftp.password) == ("au", "b")  # type: ignore[union-attr]
    assert s.route("ftp", "h") == ProxyRoute(Proxy("http", "all", 1, "au", "b"), False)


# --- --no-proxy --------------------------------------------------------------------------------

NO_PROXY_CASES = [
    ("example.org", ["example.org"], True),
    ("EXAMPLE.org", ["example.ORG"], True),
    ("www.example.org", ["example.org"], False),  # no dot: exact names only (aria2)
    ("www.example.org", [".example.org"], True),
    ("a.b.example.org", [".example.org"], True),
    ("example.org", [".example.org"], False),
    ("badexample.org", [".example.org"], False),
    ("10.1.2.3", ["10.0.0.0/8"], True),
    ("11.1.2.3", ["10.0.0.0/8"], False),
    ("10.1.2.3", ["10.1.2.3"], True),
    ("10.1.2.3", [".2.3"], False),  # a domain suffix never matches an IP literal (aria2)
    ("192.168.1.77", ["192.168.1.64/26"], True),
    ("192.168.1.128", ["192.168.1.64/26"], False),
    ("::1", ["::1/128"], True),
    ("[2001:db8::5]", ["2001:db8::/32"], True),
    ("2001:db9::5", ["2001:db8::/32"], False),
    ("10.0.0.1", ["::/0"], False),  # families never mix
    ("10.0.0.1", ["0.0.0.0/0"], True),
    ("10.0.0.1", ["10.0.0.0/99"], False),  # bits beyond 32: the whole address
    ("10.0.0.0", ["10.0.0.0/99"], True),
    ("10.0.0.1", ["10.0.0.0/x"], False),
    ("name", ["10.0.0.0/8"], False),  # CIDR compares the host as written, no resolving
    ("h", ["", " ", "h"], True),
    ("anything.example", ["x", "*"], True),  # beyond aria2: curl's and wget's "everything"
    ("10.0.0.1", ["*"], True),
]


@pytest.mark.parametrize(("host", "entries", "expected"), NO_PROXY_CASES)
def test_no_proxy_match(host: str, entries: list[str], expected: bool) -> None:
    assert no_proxy_match(host, entries) is expected


@given(
    st.ip_addresses(v=4),
    st.integers(min_value=0, max_value=32),
    st.ip_addresses(v=4),
)
def test_no_proxy_cidr_agrees_with_ipaddress(
    net: ipaddress.IPv4Address, bits: int, host: ipaddress.IPv4Address
) -> None:
    network = ipaddress.ip_network(f"{net}/{bits}", strict=False)
    assert no_proxy_match(str(host), [f"{net}/{bits}"]) is (host in network)
    assert no_proxy_match(str(network.network_address), [f"{net}/{bits}"])


@given(
    st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[a-z]{1,8}\.[a-z]{2,3}", fullmatch=True),
)
def test_no_proxy_domain_suffix_property(label: str, domain: str) -> None:
    assert no_proxy_match(f"{label}.{domain}", [f".{domain}"])
    assert not no_proxy_match(domain, [f".{domain}"])
    assert no_proxy_match(domain, [domain])


# --- environment variables -------------------------------------------------------------------


def test_proxy_variables_lower_case_wins_and_empty_is_ignored() -> None:
    env = {
        "http_proxy": "lower:1",
        "HTTP_PROXY": "upper:1",
        "HTTPS_PROXY": "upper:2",
        "ftp_proxy": "",
        "FTP_PROXY": "f:3",
        "all_proxy": " ",
        "NO_PROXY": "a,.b",
        "PATH": "/bin",
    }
    assert proxy_variables(env) == {
        "http-proxy": ("http_proxy", "lower:1"),
        "https-proxy": ("HTTPS_PROXY", "upper:2"),
        "ftp-proxy": ("FTP_PROXY", "f:3"),
        "no-proxy": ("NO_PROXY", "a,.b"),
    }


def test_bad_environment_value_is_reported_and_skipped() -> None:
    values, warnings = proxy_environment_options(
        {"http_proxy": "gopher://x:1", "https_proxy": "h:2"}
    )
    assert values == {"https-proxy": "h:2"}
    assert len(warnings) == 1 and "http_proxy" in warnings[0], warnings


def test_precedence_conf_then_environment_then_command_line() -> None:
    """aria2: defaults < aria2.conf < environment < command line (``overrideWithEnv``)."""
    env_values, _ = proxy_environment_options({"http_proxy": "env:1", "no_proxy": "envhost"})
    conf = {"http-proxy": "conf:1", "https-proxy": "conf:2", "no-proxy": "confhost"}
    layered = {**conf, **env_values}  # what cli.app does
    s = ProxySettings.from_options(build_options({}, layered).get)
    assert (s.http.host, s.https.host, s.no_proxy) == ("env", "conf", ("envhost",))  # type: ignore[union-attr]
    s = ProxySettings.from_options(build_options({"http-proxy": "cli:1"}, layered).get)
    assert s.http.host == "cli"  # type: ignore[union-attr]
    s = ProxySettings.from_options(build_options({"no-proxy": ""}, layered).get)
    assert s.no_proxy == ()


def test_proxy_options_are_no_longer_refused() -> None:
    check_refused({"all-proxy": "http://h:1", "no-proxy": "x", "proxy-method": "tunnel"}, where="x")
