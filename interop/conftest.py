"""Fixtures for ``interop/``.

pytest reads ``pytest_plugins`` only from top-level conftest files, so the fixtures from
``tests/servers`` are imported here by name instead (registered for assertion rewriting first,
so the import order of ``pytest interop tests`` does not matter).  Importing ``tests.conftest``
installs the suite's loopback-only audit hook also when ``interop/`` runs on its own (a module
runs once, so this is harmless when ``tests/`` is collected too).
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite(
    "tests.servers.nginx",
    "tests.servers.fault",
    "tests.servers.opentracker",
    "tests.servers.transmission",
)

import tests.conftest  # noqa: E402, F401  (the loopback-only audit hook)
from tests.servers.nginx import nginx  # noqa: E402
from tests.servers.opentracker import opentracker  # noqa: E402
from tests.servers.transmission import transmission  # noqa: E402

__all__ = ["nginx", "opentracker", "transmission"]
