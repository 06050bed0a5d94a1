"""Is a resource a Metalink document? (``--follow-metalink``, command-line arguments).

aria2 (``DownloadHandlerConstants``, ``MetalinkPostDownloadHandler``) follows a download whose
``Content-Type`` is a Metalink media type (RFC 5854 §7 ``application/metalink4+xml``; Metalink
3 ``application/metalink+xml``) or whose file name ends in ``.meta4`` or ``.metalink`` (a local file named on the command
line is one too when it starts with ``<?xml``: :func:`trioaria.engine.factory.is_metalink_arg`).
"""

from __future__ import annotations

__all__ = ["METALINK_MEDIA_TYPES", "METALINK_SUFFIXES", "is_metalink_resource"]

METALINK_MEDIA_TYPES = frozenset({"application/metalink4+xml", "application/metalink+xml"})
"""RFC 5854 §7 and Metalink 3 media types."""

METALINK_SUFFIXES = (".meta4", ".metalink")
"""File names aria2 reads as Metalink documents."""


def is_metalink_resource(content_type: str | None, name: str | None) -> bool:
    """True when the media type (parameters ignored) or the name says Metalink."""
    if content_type:
        media = content_type.partition(";")[0].strip().lower()
        if media in METALINK_MEDIA_TYPES:
            return True
    if name:
        path = name.partition("?")[0].partition("#")[0].lower()
        return path.endswith(METALINK_SUFFIXES)
    return False
