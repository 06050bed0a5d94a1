"""``python -m trioaria.demo``: a real segmented download with no internet needed.

It serves a generated file from a small Range-capable HTTP/1.1 server on 127.0.0.1 (a port the
OS picks, throttled per connection *on purpose* so the readout has something to show; it says
so when it starts, and ``--rate 0`` lifts the throttle), runs
``trioaria -x4 -s4 -k1M`` against it in a child process with the readout on your terminal, and
checks the result's SHA-256.  Exit status: trioaria's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading

import h11
import trio

__all__ = ["main", "serve_bytes"]

_RANGE = re.compile(rb"bytes=(\d*)-(\d*)$")


async def _handle(stream: trio.SocketStream, data: bytes, rate: int) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(65536)
            conn.receive_data(chunk)
            if not chunk:
                return
            continue
        if not isinstance(event, h11.Request):
            return
        while (
            conn.next_event() not in (h11.NEED_DATA, h11.PAUSED)
            and conn.their_state is not h11.DONE
        ):
            pass
        total = len(data)
        start, end, status = 0, total - 1, 200
        headers = dict(event.headers)
        match = _RANGE.match(headers.get(b"range", b"").strip())
        if match and total:
            a, b = match.groups()
            if a:
                start, end = int(a), min(int(b) if b else total - 1, total - 1)
            else:
                start, end = max(0, total - int(b)), total - 1
            status = 206
        out = [
            ("Content-Length", str(end - start + 1)),
            ("Accept-Ranges", "bytes"),
            ("ETag", '"demo"'),
            ("Last-Modified", "Mon, 02 Nov 2026 00:00:00 GMT"),
        ]
        if status == 206:
            out.append(("Content-Range", f"bytes {start}-{end}/{total}"))
        await stream.send_all(conn.send(h11.Response(status_code=status, headers=out)))
        view = memoryview(data)[start : end + 1]
        step = 64 * 1024
        for off in range(0, len(view), step):
            await stream.send_all(conn.send(h11.Data(data=bytes(view[off : off + step]))))
            if rate:
                await trio.sleep(step / rate)
        conn.send(h11.EndOfMessage())
        if conn.our_state is h11.MUST_CLOSE:
            return
        conn.start_next_cycle()


async def _serve(data: bytes, rate: int, port_box: list[int], ready: threading.Event) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port_box.append(listeners[0].socket.getsockname()[1])
    ready.set()

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _handle(stream, data, rate)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass

    await trio.serve_listeners(handler, listeners)


def serve_bytes(data: bytes, rate: int = 0) -> int:
    """Serve ``data`` on 127.0.0.1 from a daemon thread; return the port."""
    port_box: list[int] = []
    ready = threading.Event()
    threading.Thread(
        target=trio.run, args=(_serve, data, rate, port_box, ready), daemon=True
    ).start()
    ready.wait(10)
    return port_box[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trioaria.demo", description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="file size in MiB (64)")
    parser.add_argument(
        "--rate",
        type=int,
        default=4096,
        help="throttle: KiB/s per connection, on purpose so the readout has time to show"
        " (4096; 0 = unthrottled)",
    )
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args(argv)
    data = random.Random(2089).randbytes(args.size << 20)
    want = hashlib.sha256(data).hexdigest()
    port = serve_bytes(data, args.rate * 1024)
    url = f"http://127.0.0.1:{port}/demo.bin"
    n = str(args.connections)
    with tempfile.TemporaryDirectory(prefix="trioaria-demo-") as out:
        cmd = [sys.executable, "-m", "trioaria", "-x", n, "-s", n, "-k1M", "-d", out, url]
        if args.rate:
            print(
                f"The demo server throttles each connection to {args.rate} KiB/s on purpose, so"
                f" the readout has something to show: with {n} connections expect about"
                f" {args.rate * args.connections // 1024} MiB/s.  --rate 0 serves at full speed.",
                flush=True,
            )
        print("$ trioaria", " ".join(cmd[3:]), flush=True)
        rc = subprocess.call(cmd)
        path = os.path.join(out, "demo.bin")
        if rc == 0:
            with open(path, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            ok = got == want
            print(f"\nsha256 {got} {'matches' if ok else 'DOES NOT MATCH'} the served file")
            rc = 0 if ok else 32
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
