"""BitTorrent, from scratch: pure cores here, drivers next to them (no BitTorrent library).

Pure (sans-IO) modules: ``bencode`` (strict codec, raw ``info`` span), ``metainfo`` (.torrent and
magnet parsing, info hash, file list), ``messages`` + ``wire`` (peer wire codec and connection),
``ut_metadata`` (BEP 9), ``pex`` (BEP 11), ``fast`` (BEP 6 allowed fast set), ``peer`` (per-peer state), ``choker`` (BEP 3 choking), ``tracker`` (HTTP
announce, BEP 3/7/23) and ``udp_tracker`` (BEP 15); ``errors`` maps failures to aria2's exit codes.
"""

from __future__ import annotations

__all__: list[str] = []
