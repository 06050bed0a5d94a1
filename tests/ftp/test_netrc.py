"""Tests for trioaria.net.netrc (aria2 Netrc.cc behaviour) and the credential order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import OptionError
from trioaria.net.netrc import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    Netrc,
    NetrcEntry,
    parse_netrc,
    resolve_credentials,
)

TEXT = """\
# comment
machine host.example login alice password a1
machine .example.org login bob password b2 account x
macdef init
cd /pub
binary

machine other login carol
password c3
default login dave password d4
"""


def test_parse_and_find() -> None:
    n = parse_netrc(TEXT)
    assert n.entries[0] == NetrcEntry("host.example", "alice", "a1")
    assert n.entries[1] == NetrcEntry(".example.org", "bob", "b2", "x")
    assert n.entries[2] == NetrcEntry("other", "carol", "c3")
    assert n.find("host.example").login == "alice"
    assert n.find("ftp.example.org").login == "bob"  # leading dot: domain match
    assert n.find("example.org").login == "dave"  # ".example.org" needs a subdomain
    assert n.find("nowhere").login == "dave"
    assert n.find("nowhere", ignore_default=True) is None


def test_leading_dot_never_matches_an_address() -> None:
    n = parse_netrc("machine .0.0.1 login x password y\n")
    assert n.find("127.0.0.1") is None


@pytest.mark.parametrize("bad", ["login x\n", "machine\n", "machine a login\n"])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(OptionError):
        parse_netrc(bad)


@given(st.text(max_size=200))
def test_parse_never_crashes(text: str) -> None:
    try:
        parse_netrc(text)
    except OptionError:
        pass


def _creds(**kw):
    base = {
        "url_user": None,
        "url_password": None,
        "option_user": None,
        "option_password": None,
        "netrc": None,
    }
    base.update(kw)
    return resolve_credentials("h", **base)


def test_credential_order_as_aria2() -> None:
    netrc = Netrc((NetrcEntry("h", "nu", "np"),))
    assert _creds() == (DEFAULT_USER, DEFAULT_PASSWORD)
    assert _creds(netrc=netrc) == ("nu", "np")
    assert _creds(netrc=netrc, option_user="ou", option_password="op") == ("ou", "op")
    assert _creds(netrc=netrc, url_user="uu", url_password="up", option_user="ou") == ("uu", "up")
    # URL user without password: netrc password only if netrc's login is that user
    assert _creds(netrc=netrc, url_user="nu") == ("nu", "np")
    assert _creds(netrc=netrc, url_user="zz", option_password="op") == ("zz", "op")
    assert _creds(url_user="zz", url_password="") == ("zz", "")
