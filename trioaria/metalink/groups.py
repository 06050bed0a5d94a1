"""Metalink downloads as engine groups: signature files, unique protocols, torrents (driver).

:func:`build_groups` turns :class:`~trioaria.metalink.plan.MetalinkDownload` values into what
the engine queues:

* a file with mirrors becomes a :class:`MetalinkGroup`, a
  :class:`~trioaria.engine.group.RequestGroup` that also
  - with ``--metalink-enable-unique-protocol`` ("if several protocols are available for a
    mirror, use one of them"): once one url of a host answered, the host's urls of other
    protocols are dropped, so a mirror offering the file over HTTP and FTP is used over one
    protocol only.  aria2 (``FileEntry::removeURIWhoseHostnameIs``) drops every other url of
    the host, same protocol included; trioaria keeps those, since they are other paths, not
    other protocols;
  - after a complete download writes the file's signature (RFC 5854 §4.2.14) to
    ``<file>.sig`` unless that file exists (aria2 ``RequestGroupMan``: "Signature file was not
    saved because it exists");
* a file with a torrent metaurl (§4.2.8) becomes a
  :class:`~trioaria.engine.torrent.TorrentGroup` fetching that torrent into memory, the file's
  mirrors its web seeds (BEP 19), the metaurl's ``name`` the one file it downloads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..base.sources import ProbeResult
from ..engine.group import NOTICE, RequestGroup
from ..engine.mirrors import SourceState
from ..engine.server_stat import ServerStatTable
from .parse import Signature
from .plan import MetalinkDownload, host_of

__all__ = ["MetalinkGroup", "build_groups", "save_signature"]

log = logging.getLogger("trioaria.metalink")


def _scheme(uri: str) -> str:
    return uri.partition(":")[0].lower()


def save_signature(path: str, signature: Signature) -> bool:
    """Write ``signature`` to ``<path>.sig`` unless it exists; True if written."""
    target = path + ".sig"
    try:
        with open(target, "x", encoding="utf-8") as f:
            f.write(signature.body)
            if not signature.body.endswith("\n"):
                f.write("\n")
    except FileExistsError:
        log.log(NOTICE, "Signature file %s was not saved because it exists.", target)
        return False
    except OSError as exc:
        log.warning("cannot save the signature %s: %s", target, exc)
        return False
    log.log(NOTICE, "Signature file was saved to %s", target)
    return True


class MetalinkGroup(RequestGroup):
    """One Metalink file served by its mirrors (see the module docstring)."""

    def __init__(
        self,
        uris: list[str],
        options: Any,
        *,
        signature: Signature | None = None,
        unique_protocol: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(uris, options, **kwargs)
        self.signature = signature
        self.unique_protocol = unique_protocol

    async def _download_probed(self, first: SourceState, probe: ProbeResult) -> None:
        if self.unique_protocol and self.mirrors is not None:
            host = host_of(first.source.uri)
            scheme = _scheme(first.source.uri)
            for st in self.mirrors.sources:
                other = st.source.uri
                if host and host_of(other) == host and _scheme(other) != scheme:
                    st.dropped = True
                    log.debug("unique protocol: %s is not used", st.source.uri)
        await super()._download_probed(first, probe)
        if self.signature is not None and self.path and not self.opt("dry-run"):
            save_signature(self.path, self.signature)


def build_groups(
    downloads: Sequence[MetalinkDownload],
    *,
    gid: str | None = None,
    server_stats: ServerStatTable | None = None,
) -> list[RequestGroup]:
    """One group per download; ``gid`` (``--gid``) goes to the first."""
    groups: list[RequestGroup] = []
    for i, d in enumerate(downloads):
        this_gid = gid if i == 0 else None
        if d.torrent is not None:
            from ..engine.torrent import TorrentGroup, TorrentSource

            log.log(NOTICE, "%s: downloading its torrent %s", d.name, d.torrent)
            group = TorrentGroup(
                TorrentSource("url", d.torrent), d.options, gid=this_gid, web_seeds=d.uris
            )
            group.only_file = d.torrent_file
            groups.append(group)
            continue
        groups.append(
            MetalinkGroup(
                d.uris,
                d.options,
                gid=this_gid,
                server_stats=server_stats,
                piece_hashes=d.piece_hashes,
                expected_length=d.size,
                signature=d.signature,
                unique_protocol=d.unique_protocol,
            )
        )
    return groups
