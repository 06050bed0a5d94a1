"""Suite-wide fixtures and the loopback-only guard.

``sys.addaudithook`` sees every ``socket.connect``/``sendto``/``sendmsg`` in this process; any
destination outside 127.0.0.0/8 or ::1 (or a Unix socket path) fails the test at once
(docs/decisions.md "Tests and CI").  Child processes (the CLI under test, nginx, aria2c) are pointed
only at loopback URLs by the tests themselves.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = [
    name
    for name in (
        "tests.servers.nginx",
        "tests.servers.fault",
        "tests.servers.ftp",
        "tests.servers.sftp",
        "tests.servers.proxies",
        "tests.servers.opentracker",
        "tests.servers.transmission",
    )
    if importlib.util.find_spec(name) is not None
]

# CI runs the property tests derandomized (the same examples every run, so a landing never fails
# on a new random draw) and without per-example deadlines (a loaded 2-core machine is slow);
# exploration with fresh random examples happens on developers' machines.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Child processes (`python -m trioaria ...`) must run the tree under test, not whatever copy of
# trioaria happens to be installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p
)

# docs/decisions.md: tests never contact the built-in DHT bootstrap nodes (children inherit this).
os.environ["TRIOARIA_NO_DEFAULT_BOOTSTRAP"] = "1"

_ALLOWED_NETNS_NETS: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []


def _is_loopback(addr: Any) -> bool:
    if isinstance(addr, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(addr, tuple) or not addr:
        return True
    host = addr[0]
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return True
    host = host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # A name: only "localhost" is acceptable; everything else must be resolved first.
        return host in ("localhost", "")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return True
    return any(ip in net for net in _ALLOWED_NETNS_NETS)


class NonLoopbackConnect(AssertionError):
    pass


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        addr = args[1] if len(args) > 1 else None
        if addr is not None and not _is_loopback(addr):
            raise NonLoopbackConnect(f"test tried to reach non-loopback address {addr!r}")


sys.addaudithook(_audit)


def allow_netns_network(cidr: str) -> None:
    """Let a test that created its own network namespace talk to addresses in ``cidr``."""
    _ALLOWED_NETNS_NETS.append(ipaddress.ip_network(cidr))


@pytest.fixture
def audit_guard() -> Any:
    """Expose the guard for the test that checks the guard itself."""
    return _is_loopback
