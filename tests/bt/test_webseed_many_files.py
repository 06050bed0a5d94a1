"""A BEP 19 web seed over a torrent of many files keeps a bounded number of connections open
(trioaria/bt/webseed.py): no descriptor per file until EMFILE."""

from __future__ import annotations

import os
import random

import trio

from tests.cli_util import child_env
from tests.servers.fault import FaultServer
from trioaria.bt.bencode import encode
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.webseed import MAX_IDLE_FILES, WebSeedSource, web_seed_files
from trioaria.cli.options import Options
from trioaria.engine.source_factory import make_source


def _open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


async def test_web_seed_many_files_does_not_keep_a_socket_per_file(
    fault_server: FaultServer,
) -> None:
    """One range over a multi-file torrent's 200 small files: each file's body ends and the
    stream moves on.  The connections must be reused (one origin) or closed, not parked one per
    file in a per-file pool until the download ends (a torrent of thousands of files would run
    out of file descriptors: EMFILE at the default ulimit of 1024)."""
    rnd = random.Random(4)
    count, size = 200, 1000
    files = []
    for i in range(count):
        data = rnd.randbytes(size)
        fault_server.add_file(f"t/f{i:04d}", data)
        files.append({b"length": size, b"path": [f"f{i:04d}".encode()]})
    total = count * size
    info = {
        b"name": b"t",
        b"piece length": 16384,
        b"pieces": b"\0" * 20 * (-(-total // 16384)),
        b"files": files,
    }
    meta = parse_torrent(encode({b"info": info}))
    base = fault_server.url("/ok/")
    options = Options.defaults()
    source = WebSeedSource(base, web_seed_files(meta, base), lambda u: make_source(u, options))
    before = _open_sockets()
    try:
        with trio.fail_after(20):
            stream = await source.open_range(0, total)
            buf = memoryview(bytearray(65536))
            got = 0
            while n := await stream.read_into(buf):
                got += n
            await stream.finish(drained=True)
        assert got == total
        held = _open_sockets() - before
    finally:
        await source.aclose()
    # the server side of each connection is in this process too: halve it
    assert held // 2 <= MAX_IDLE_FILES + 1, f"{held // 2} client sockets kept after {count} files"


def test_web_seed_torrent_of_400_files_under_fd_limit_256(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """End to end: a 400-file torrent from its url-list alone, the process limited to 256 file
    descriptors.  It completes: idle keep-alive sockets do not pile up one per file until
    EMFILE."""
    import resource
    import subprocess

    from tests.bt.swarm_helpers import make_torrent, trioaria_args
    from tests.servers.fault import run_fault_server_in_thread
    from trioaria.bt.bencode import decode

    rnd = random.Random(5)
    files = [(f"f{i:04d}", rnd.randbytes(1000)) for i in range(400)]
    server = FaultServer()
    for rel, data in files:
        server.add_file("m/" + rel, data)
    port, stop = run_fault_server_in_thread(server)
    src = tmp_path / "src"
    src.mkdir()
    doc = decode(make_torrent(src, files, name="m", piece_length=16384))
    assert isinstance(doc, dict)
    doc[b"url-list"] = [f"http://127.0.0.1:{port}/ok/".encode()]
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(encode(doc))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    try:
        proc = subprocess.run(
            trioaria_args(f"--dir={tmp_path / 'dl'}", "--seed-time=0", str(torrent)),
            capture_output=True, text=True, timeout=40, preexec_fn=limit,
            env=child_env(tmp_path),
        )  # fmt: skip
    finally:
        stop()
    assert proc.returncode == 0, proc.stdout[-600:]
    for rel, data in files[:3] + files[-3:]:
        assert (tmp_path / "dl" / "m" / rel).read_bytes() == data
