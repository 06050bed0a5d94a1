"""The CLI daemon: ``-D`` detaches, ``--rpc-secure`` serves https and wss with a self-signed
certificate, ``--rpc-user``/``--rpc-passwd`` require HTTP Basic credentials (issue 12, parts 3-4).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tests.e2e_util import ChildRun, start_trioaria
from tests.servers.nginx import NginxServer, free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "rpc.pem", directory / "rpc.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _body(method: str, *params: Any) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": "x", "method": method, "params": [f"token:{SECRET}", *params]}
    ).encode()


def _post(
    port: int,
    method: str,
    *params: Any,
    context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/jsonrpc", body=_body(method, *params), headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        conn.close()


async def _until_up(port: int, child: ChildRun | None, **kw: Any) -> None:
    for _ in range(400):
        try:
            await trio.to_thread.run_sync(lambda: _post(port, "aria2.getVersion", **kw))
            return
        except (OSError, ssl.SSLError, http.client.HTTPException):
            if child is not None:
                assert child.poll() is None, child.describe()
            await trio.sleep(0.05)
    raise AssertionError("the RPC server did not come up")


async def test_rpc_secure_https_and_wss(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    child = start_trioaria(
        [
            "--no-conf", "--enable-rpc", f"--rpc-secret={SECRET}", f"--rpc-listen-port={port}",
            "--rpc-secure", f"--rpc-certificate={cert}", f"--rpc-private-key={key}",
            "--summary-interval=0", f"--dir={tmp_path}",
        ],
        tmp_path,
        "tls",
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    try:
        await _until_up(port, child, context=context)
        status, answer = await trio.to_thread.run_sync(
            lambda: _post(port, "aria2.getGlobalStat", context=context)
        )
        assert status == 200 and answer["result"]["numActive"] == "0"
        # plain HTTP on the TLS port does not get an answer
        try:
            plain = await trio.to_thread.run_sync(lambda: _post(port, "aria2.getVersion"))
        except (OSError, http.client.HTTPException):
            plain = None
        assert plain is None or plain[0] != 200
        # wss: JSON-RPC over a WebSocket inside TLS
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target="/jsonrpc")))
        text = ""
        with trio.fail_after(30):
            while not text:
                ws.receive_data(await stream.receive_some(65536))
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        await stream.send_all(
                            ws.send(TextMessage(data=_body("aria2.getVersion").decode()))
                        )
                    elif isinstance(event, TextMessage):
                        text += event.data
        assert "enabledFeatures" in json.loads(text)["result"]
        await stream.aclose()
    finally:
        child.kill()


async def test_rpc_secure_without_certificate_fails(tmp_path: Path) -> None:
    port = free_port()
    child = start_trioaria(
        ["--no-conf", "--enable-rpc", f"--rpc-listen-port={port}", "--rpc-secure"],
        tmp_path,
        "nocert",
    )
    code = await trio.to_thread.run_sync(lambda: child.wait(60))
    assert code == 1, child.describe()
    assert "--rpc-certificate and --rpc-private-key" in child.stdout + child.stderr


async def test_rpc_user_and_passwd_basic_auth(tmp_path: Path) -> None:
    port = free_port()
    child = start_trioaria(
        [
            "--no-conf", "--enable-rpc", f"--rpc-secret={SECRET}", f"--rpc-listen-port={port}",
            "--rpc-user=alice", "--rpc-passwd=pw", "--summary-interval=0",
        ],
        tmp_path,
        "basic",
    )  # fmt: skip
    good = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"alice:nope").decode()}
    try:
        await _until_up(port, child, headers=good)
        ok = await trio.to_thread.run_sync(lambda: _post(port, "aria2.getVersion", headers=good))
        assert ok[0] == 200 and "version" in ok[1]["result"]
        for headers in ({}, bad):
            status, _ = await trio.to_thread.run_sync(
                lambda h=headers: _post(port, "aria2.getVersion", headers=h)
            )
            assert status == 401
    finally:
        child.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_daemon_detaches_and_logs_to_file(nginx: NginxServer, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "daemon.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [
        sys.executable, "-m", "trioaria", "--no-conf", "-D", "--enable-rpc",
        f"--rpc-secret={SECRET}", f"--rpc-listen-port={port}", "--log=daemon.log",
        "--dir=out", "--summary-interval=0",
    ]  # fmt: skip
    # the parent returns at once (exit 0) while the detached grandchild serves
    parent = await trio.run_process(args, cwd=tmp_path, env=env, capture_stdout=True)
    assert parent.returncode == 0 and parent.stdout == b""
    pid = 0
    try:
        await _until_up(port, None)
        first = log.read_text().splitlines()[0]
        pid = int(first.rpartition("pid ")[2])
        assert _alive(pid)
        _, answer = await trio.to_thread.run_sync(
            lambda: _post(port, "aria2.addUri", [nginx.url("/text.txt")])
        )
        gid = answer["result"]
        for _ in range(400):
            _, st = await trio.to_thread.run_sync(lambda: _post(port, "aria2.tellStatus", gid))
            if st["result"]["status"] == "complete":
                break
            await trio.sleep(0.05)
        # relative --dir and --log were resolved before the daemon moved to "/"
        assert (tmp_path / "out" / "text.txt").exists(), st
        assert "Download complete" in log.read_text()
        await trio.to_thread.run_sync(lambda: _post(port, "aria2.shutdown"))
        for _ in range(400):
            if not _alive(pid):
                break
            await trio.sleep(0.05)
        assert not _alive(pid)
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
