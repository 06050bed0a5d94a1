"""Fixtures for the HTTP tests.

The shared servers live in tests/servers/; until tests/conftest.py registers them with
``pytest_plugins = ["tests.servers.nginx", "tests.servers.fault"]`` they are imported here.
(Once that line exists, delete these imports so the session-scoped nginx starts only once.)
"""

from __future__ import annotations

from tests.servers.fault import fault_server
from tests.servers.nginx import nginx

__all__ = ["fault_server", "nginx"]
