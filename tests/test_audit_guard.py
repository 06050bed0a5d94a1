"""The loopback-only guard must really refuse a non-loopback destination."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NonLoopbackConnect


def test_guard_allows_loopback(audit_guard):
    assert audit_guard(("127.0.0.1", 80))
    assert audit_guard(("::1", 80, 0, 0))
    assert not audit_guard(("192.0.2.1", 80))
    assert not audit_guard(("10.1.2.3", 80))


def test_guard_blocks_connect_to_documentation_address():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        with pytest.raises(NonLoopbackConnect):
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed; the hook fires first
    finally:
        s.close()
