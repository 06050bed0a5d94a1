"""dht.dat loading reads no more than a routing table can use (trioaria/dht/persist.py)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from trioaria.bt.discovery import Discovery
from trioaria.dht.node_id import NodeId, NodeInfo
from trioaria.dht.persist import DhtState, serialize_dht_file


def test_loading_reads_only_what_the_header_announces(tmp_path: Path) -> None:
    """A dht.dat whose header says 1 node but which goes on for 64 MiB (a hostile or wrong
    --dht-file-path) is not read whole: aria2 reads field by field and stops after numNodes."""
    good = serialize_dht_file(
        DhtState(NodeId(bytes(20)), (NodeInfo(NodeId(b"\x01" * 20), "10.0.0.1", 6881),)), 4
    )
    path = tmp_path / "dht.dat"
    with open(path, "wb") as f:
        f.write(good)
        f.truncate(64 << 20)  # sparse: costs no disk
    opts = {"dht-file-path": str(path), "enable-dht": "true"}
    discovery = Discovery(opts.get)
    tracemalloc.start()
    try:
        state = discovery._load(4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state is not None and len(state.nodes) == 1
    assert peak < 4 << 20, f"loading a 1-node dht.dat allocated {peak >> 20} MiB"
