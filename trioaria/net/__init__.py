"""Network plumbing: TCP connect (Happy Eyeballs), TLS streams, ``.netrc`` credentials."""

from __future__ import annotations
