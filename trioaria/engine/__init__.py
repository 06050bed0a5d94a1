"""The download engine: the queue, one RequestGroup per download, its connections and mirrors."""

from __future__ import annotations
