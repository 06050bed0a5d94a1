"""Two ways to upload BitTorrent blocks from a file to a socket, CPU compared (no trio, no peer).

The seeding path of trioaria (docs/performance.md §9) sends ``piece`` messages: a 13-byte header
then 16 KiB of file data, one message per requested block.  Two ways to do that:

* ``batch`` (what trioaria does): 64 headers packed into one buffer, the blocks read behind
  them with one ``os.preadv`` (adjacent blocks), the ~1 MiB sent with one ``send``;
* ``sendfile``: per block, the header with ``send(MSG_MORE)`` and the data with
  ``os.sendfile`` from the file to the socket (no copy through user space).

A child process drains the socket on 127.0.0.1; the figure is this process's CPU time
(``time.process_time``) for the whole file.  Usage::

    python bench/upload_syscalls.py FILE [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

BLOCK = 16384
BATCH = 64
HEADER = 13

DRAIN = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
b = bytearray(1 << 20)
while s.recv_into(b):
    pass
"""


def _batch(conn: socket.socket, fd: int, size: int) -> None:
    buf = memoryview(bytearray(BATCH * (HEADER + BLOCK)))
    step = HEADER + BLOCK
    for base in range(0, size - size % (BATCH * BLOCK), BATCH * BLOCK):
        views = [buf[i * step + HEADER : (i + 1) * step] for i in range(BATCH)]
        os.preadv(fd, views, base)
        conn.sendall(buf)


def _sendfile(conn: socket.socket, fd: int, size: int) -> None:
    header = bytes(HEADER)
    out = conn.fileno()
    for offset in range(0, size - size % (BATCH * BLOCK), BLOCK):
        conn.send(header, socket.MSG_MORE)
        done = 0
        while done < BLOCK:
            done += os.sendfile(out, fd, offset + done, BLOCK - done)


def measure(path: str, mode: str) -> float:
    """CPU seconds of this process to send ``path`` as ``piece`` messages one way."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        reader = subprocess.Popen([sys.executable, "-c", DRAIN, str(port)])
        conn, _ = server.accept()
        t0 = time.process_time()
        (_batch if mode == "batch" else _sendfile)(conn, fd, size)
        cpu = time.process_time() - t0
        conn.close()
        reader.wait()
    os.close(fd)
    return cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="a file to send (in the page cache: read it once first)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    size = os.path.getsize(args.file)
    for mode in ("batch", "sendfile"):
        cpus = [measure(args.file, mode) for _ in range(args.runs)]
        cpu = statistics.median(cpus)
        print(f"{mode}: {cpu:.3f} CPU-s, {cpu / (size / (1 << 30)):.2f} CPU-s/GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
