"""Web seeds of a torrent download: BEP 19 mirrors run by the ordinary transfer loop.

Theory of operation
-------------------
A torrent's web seeds (its ``url-list``, a magnet's ``ws``, and the URIs given with ``-T``)
become :class:`~trioaria.bt.webseed.WebSeedSource` range sources, one per base URL, each
serving the torrent's global byte space.  They are handed to the same
:class:`~trioaria.engine.mirrors.Mirrors` and :class:`~trioaria.engine.transfer.Transfers` an
HTTP/FTP download uses (``--split``, ``-x``, ``--uri-selector``, ``--max-tries``,
``--lowest-speed-limit``, the rate limits), over the torrent's own
:class:`~trioaria.storage.session.StorageSession`: segments spanning many pieces come from the
shared picker next to the peers' block claims, every piece is SHA-1 checked, and the session's
``on_piece_verified`` hook announces it to the swarm with HAVE, so peers can download it from
us (docs/design.md, "One picker, one disk layer").  When every web seed has failed the
transfers end and the peers carry on alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base.sources import RangeSource
from ..bt.webseed import WebSeedSource, web_seed_files
from .mirrors import Mirrors
from .transfer import Transfers

if TYPE_CHECKING:
    from ..bt.metainfo import Metainfo
    from .group import RequestGroup

__all__ = ["make_web_seed_mirrors", "run_web_seeds", "web_seed_uris"]

log = logging.getLogger("trioaria.engine.torrent")

_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "ftpes://", "sftp://")


def web_seed_uris(meta: Metainfo, extra: Sequence[str]) -> list[str]:
    """The torrent's ``url-list`` plus the URIs given with it, duplicates and unusable schemes
    dropped (aria2 merges both lists the same way)."""
    out: dict[str, None] = {}
    for uri in (*meta.url_list, *extra):
        if uri.lower().startswith(_SCHEMES):
            out.setdefault(uri, None)
        else:
            log.info("ignoring web seed %s: unsupported scheme", uri)
    return list(out)


def make_web_seed_mirrors(group: RequestGroup, meta: Metainfo, uris: Sequence[str]) -> Mirrors:
    """The :class:`Mirrors` of ``uris`` as web seeds of ``meta`` for ``group``'s options."""
    from .source_factory import make_source

    options = group.options

    def factory(base: str, opts: Any) -> RangeSource:
        return WebSeedSource(base, web_seed_files(meta, base), lambda url: make_source(url, opts))

    return Mirrors(
        list(uris), options, factory=factory, server_stats=group.server_stats, allow_empty=True
    )


async def run_web_seeds(group: RequestGroup) -> None:
    """Run ``group``'s web seed connections until the torrent is complete or all seeds failed.

    The group's :attr:`~trioaria.engine.group.RequestGroup.mirrors` and ``session`` must be set.
    """
    mirrors, session = group.mirrors, group.session
    assert mirrors is not None and session is not None
    if session.is_complete() or not mirrors.sources:
        return
    first = mirrors.probe_order()[0]
    budget = mirrors.connection_budget(True)
    group._budget = budget
    await Transfers(group.transfer_context(), session).run(first, None, budget)
    if not session.is_complete():
        log.info("GID#%s: no web seed is left; going on with peers only", group.gid)
