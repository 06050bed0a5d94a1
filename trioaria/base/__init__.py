"""The shared vocabulary: errors, the range-source protocol, rate policy, speed meters, statistics."""

from __future__ import annotations
