"""trioaria vs aria2c: wall time, CPU and peak RSS against the same nginx, in the same run.

The performance targets (docs/decisions.md "Performance targets", docs/performance.md) are ratios against aria2c
measured here, never timed asserts in tests.  This script:

* generates random source files (and their sha256) in a scratch directory — a fresh tmpfs when
  it runs as root and ``mount`` works, else a plain temporary directory under ``/tmp`` — and
  writes both tools' output to the same directory, so both see the same filesystem;
* starts its own nginx (``worker_processes 1``, ``sendfile on``, access log off, as docs/performance.md) on
  a port the OS picked, with ``/slow/`` throttled by ``limit_rate`` per connection;
* for every scenario runs one discarded warm-up of each tool, then ``--runs`` measured rounds,
  alternating which tool goes first (ABBA order), each child measured with ``os.wait4``
  (``ru_utime + ru_stime`` of the client process only, ``ru_maxrss``) and a monotonic clock;
* checks the sha256 of every output file and the exit status of every run (medians are taken
  over the successful runs; failures are counted in the table);
* lets Python cache bytecode in a private ``PYTHONPYCACHEPREFIX`` (an installed trioaria has
  ``.pyc`` files; ``--no-bytecode-cache`` keeps the caller's ``PYTHONDONTWRITEBYTECODE``);
* prints a markdown table of medians and ratios plus the pass/fail of each target.

Both tools get the same options: ``--no-conf -q --allow-overwrite=true
--auto-file-renaming=false --summary-interval=0 --file-allocation=<mode>`` (``none`` unless
``--file-allocation`` says otherwise).

Usage::

    python bench/run.py            # full: 1 GiB / 512 MiB files, 5 runs, ~3-4 minutes
    python bench/run.py --quick    # smoke: 64 MiB / 32 MiB files, 3 runs, ~20 s
    python bench/run.py --only 1conn,version --runs 7 --tsv /tmp/raw.tsv
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIOS",
    "Measurement",
    "Nginx",
    "RunResult",
    "Scenario",
    "main",
    "measure",
    "scratch_dir",
    "start_nginx",
]

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
GiB = 1 << 30
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ARIA2C = shutil.which("aria2c") or "/usr/bin/aria2c"
THROTTLE = "20m"  # nginx limit_rate for /slow/ (per connection)


# --- measurement ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Measurement:
    """One run of one client process."""

    wall: float  #: seconds from spawn to reaped exit
    user: float  #: ru_utime, seconds
    sys: float  #: ru_stime, seconds
    maxrss_kib: int  #: ru_maxrss (KiB on Linux)
    returncode: int
    ok: bool  #: exit status 0 and (if checked) sha256 matched

    @property
    def cpu(self) -> float:
        return self.user + self.sys


# The child is forked by a small launcher process (``python -S -I``, ~8 MiB resident), not by
# this script: on Linux ``ru_maxrss`` survives execve and a vfork/posix_spawn child inherits the
# *peak* RSS of the process that spawned it (this script peaks at tens of MiB while it generates
# and hashes files).  After a real ``fork()`` the child's high-water mark starts at the
# launcher's small current RSS instead, below what any measured tool uses.  The launcher times
# fork → wait4 itself, so its own start-up is not counted.
_LAUNCHER = """
import os, signal, sys, time
timeout, errpath, cwd, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(os.open(errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        if cwd:
            os.chdir(cwd)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    wall: float
    user: float
    sys: float
    maxrss_kib: int
    returncode: int


def measure(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> RunResult:
    """Run *argv* once; wall time and the ``os.wait4`` rusage of that child alone.

    The rusage covers the client process only (not nginx, not this script).  A child still
    running after *timeout* seconds is killed (returncode -9).
    """
    with tempfile.NamedTemporaryFile(prefix="bench-stderr-") as errfile:
        res = subprocess.run(
            [sys.executable, "-S", "-I", "-c", _LAUNCHER, str(timeout), errfile.name,
             str(cwd or ""), *argv],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout + 30, check=False,
        )  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(f"launcher failed: {res.stderr.strip()}")
        w, u, s, rss, rc = res.stdout.split()
        out = RunResult(float(w), float(u), float(s), int(rss), int(rc))
        if out.returncode != 0:
            err = Path(errfile.name).read_text(errors="replace").strip()
            print(f"    [{Path(argv[0]).name} rc={out.returncode}] {err[-500:]}", file=sys.stderr)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


# --- scratch space and source files ---------------------------------------------------


def _fs_type(path: Path) -> str:
    best, fstype = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1]
                inside = str(path).startswith(mnt.rstrip("/") + "/") or str(path) == mnt
                if inside and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
    except OSError:
        pass
    return fstype


@contextlib.contextmanager
def scratch_dir(size_bytes: int, *, tmpfs: bool) -> Iterator[Path]:
    """A temporary directory; a private tmpfs of *size_bytes* when *tmpfs* and root allow."""
    base = Path(tempfile.mkdtemp(prefix="trioaria-bench-"))
    mounted = False
    try:
        if tmpfs and os.geteuid() == 0:
            size_mib = size_bytes // MiB + 64
            res = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(base)],
                capture_output=True,
            )
            mounted = res.returncode == 0
            if not mounted:
                print(f"note: tmpfs mount failed ({res.stderr.decode().strip()}); using {base}",
                      file=sys.stderr)  # fmt: skip
        yield base
    finally:
        if mounted and subprocess.run(["umount", str(base)], capture_output=True).returncode:
            # still busy (a peer's session not yet closed): detach it, the kernel frees it later
            subprocess.run(["umount", "-l", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def make_random_file(path: Path, size: int) -> str:
    """Write *size* random bytes to *path*; return their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


# --- nginx ----------------------------------------------------------------------------

_NGINX_CONF = """\
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location / {{ }}
        location /slow/ {{ alias {www}/; limit_rate {rate}; }}
    }}
}}
"""


@dataclasses.dataclass
class Nginx:
    """A running nginx serving ``www`` at ``/`` and, throttled, at ``/slow/``."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def version(self) -> str:
        res = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
        return (res.stderr or res.stdout).strip().removeprefix("nginx version: ")


def _os_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:  # bounded poll: nginx has no readiness signal
        if process.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def start_nginx(directory: Path, www: Path, *, rate: str = THROTTLE, attempts: int = 5) -> Nginx:
    """Start nginx on an OS-assigned port (bind to 0, close, hand over; retried on a race)."""
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    error = ""
    for _ in range(attempts):
        port = _os_port()
        conf = directory / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(user=user, d=directory, port=port, www=www, rate=rate))
        process = subprocess.Popen(
            [NGINX, "-p", f"{directory}/", "-c", str(conf), "-e", str(directory / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        server = Nginx(process, port, directory)
        if _ready(port, process, time.monotonic() + 15):
            return server
        server.stop()
        error = (directory / "error.log").read_text(errors="replace")[-2000:]
        if "Address already in use" not in error:
            break
    raise RuntimeError(f"nginx did not start:\n{error}")


# --- scenarios ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    file: str  #: name under www
    throttled: bool
    connections: int  #: -x/-s
    extra: tuple[str, ...] = ()  #: extra options for both tools
    scheme: str = "http"  #: "sftp": served by the asyncssh SFTP server (tests/servers/sftp.py)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("1conn", "HTTP {size}, 1 connection", "big.bin", False, 1),
    Scenario("16conn", "HTTP {size}, -x16 -s16 -k1M", "big.bin", False, 16, ("-k1M",)),
    Scenario(
        "throttled",
        "HTTP {size} at limit_rate " + THROTTLE + " per conn, -x16 -s16 -k1M",
        "mid.bin",
        True,
        16,
        ("-k1M",),
    ),
    Scenario(
        "sftp",
        "SFTP {size} (asyncssh server, password login), -x4 -s4 -k1M",
        "sftp.bin",
        False,
        4,
        ("-k1M", "--ftp-user=test", "--ftp-passwd=secret"),
        "sftp",
    ),
    Scenario(
        "ftp", "FTP {size} (vsftpd, passive), -x4 -s4 -k1M", "ftp.bin", False, 4, ("-k1M",), "ftp"
    ),
    Scenario(
        "https", "HTTPS {size} (nginx TLS, test CA), 1 connection", "mid.bin", False, 1, (), "https"
    ),
)


def _start_sftp(base: Path, www: Path) -> Any:
    """The tests' asyncssh SFTP server (one Python process) serving *www* as ``/``."""
    sys.path.insert(0, str(REPO))
    from tests.servers.sftp import make_keys, start_sftp_server

    return start_sftp_server(www, make_keys(base / "sshkeys"), stderr=subprocess.DEVNULL)


def _start_ftp(base: Path, www: Path, name: str) -> Any:
    """The tests' vsftpd (anonymous, read-only) serving a hard link of ``www/name``."""
    sys.path.insert(0, str(REPO))
    from tests.servers.ftp import start_vsftpd

    server = start_vsftpd(base / "vsftpd")
    os.chmod(www / name, 0o644)
    os.link(www / name, server.root / name)
    return server


def _start_https(base: Path, www: Path, name: str) -> Any:
    """The tests' nginx (TLS with a throw-away CA) serving a hard link of ``www/name``."""
    sys.path.insert(0, str(REPO))
    from tests.servers.nginx import start_nginx as start_test_nginx

    server = start_test_nginx(base / "tlsnginx")
    os.link(www / name, server.root / name)
    return server


def _common(out: Path, name: str, alloc: str) -> list[str]:
    return [
        "--no-conf", "-q", "--allow-overwrite=true", "--auto-file-renaming=false",
        "--summary-interval=0", f"--file-allocation={alloc}", "-d", str(out), "-o", name,
    ]  # fmt: skip


def tool_argv(tool: str, sc: Scenario, url: str, out: Path, alloc: str) -> list[str]:
    opts = [*_common(out, "dl.bin", alloc), f"-x{sc.connections}", f"-s{sc.connections}", *sc.extra]
    if tool == "aria2c":
        return [ARIA2C, *opts, url]
    return [sys.executable, "-m", "trioaria", *opts, url]


def child_env(pycache: Path | None = None) -> dict[str, str]:
    """The environment for both tools: this checkout first on ``PYTHONPATH``.

    With *pycache*, bytecode is cached there (``PYTHONPYCACHEPREFIX``) even if the caller's
    environment sets ``PYTHONDONTWRITEBYTECODE``: an installed trioaria has ``.pyc`` files, and
    compiling ~30 modules from source costs ~40 ms CPU per run.  The warm-up fills the cache.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_once(
    tool: str, sc: Scenario, url: str, out: Path, alloc: str, sha: str, env: dict[str, str]
) -> Measurement:
    target = out / "dl.bin"
    for p in (target, out / "dl.bin.aria2"):
        p.unlink(missing_ok=True)
    r = measure(tool_argv(tool, sc, url, out, alloc), env=env, cwd=out)
    rc = r.returncode
    ok = rc == 0 and target.exists() and sha256_file(target) == sha
    if not ok:
        print(f"    !! {tool} {sc.key}: rc={rc} sha256 {'missing' if not target.exists() else 'checked'}",
              file=sys.stderr)  # fmt: skip
    for p in (target, out / "dl.bin.aria2"):
        p.unlink(missing_ok=True)
    return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, rc, ok)


def run_version(tool: str, env: dict[str, str]) -> Measurement:
    argv = (
        [ARIA2C, "--version"]
        if tool == "aria2c"
        else [sys.executable, "-m", "trioaria", "--version"]
    )
    r = measure(argv, env=env)
    return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, r.returncode, r.returncode == 0)


# --- reporting ------------------------------------------------------------------------


def _fmt_size(n: int) -> str:
    return f"{n // GiB} GiB" if n % GiB == 0 else f"{n // MiB} MiB"


def _med(ms: list[Measurement], fn: Callable[[Measurement], float]) -> float:
    """Median over the successful runs (all runs if none succeeded)."""
    good = [m for m in ms if m.ok] or ms
    return statistics.median(fn(m) for m in good)


def _row(label: str, ms: list[Measurement], size: int | None) -> str:
    walls = [m.wall for m in ms if m.ok] or [m.wall for m in ms]
    wall = statistics.median(walls)
    speed = f"{size / MiB / wall:.0f}" if size else "-"
    cpu = _med(ms, lambda m: m.cpu)
    user = _med(ms, lambda m: m.user)
    sys_ = _med(ms, lambda m: m.sys)
    rss = _med(ms, lambda m: m.maxrss_kib) / 1024
    bad = sum(not m.ok for m in ms)
    check = "OK" if not bad else f"{bad} FAILED (medians over the others)"
    return (
        f"| {label} | {len(ms)} | {wall:.3f} ({min(walls):.3f}-{max(walls):.3f}) | {speed} "
        f"| {cpu:.2f} ({user:.2f}+{sys_:.2f}) | {rss:.1f} | {check} |"
    )


@dataclasses.dataclass
class Target:
    text: str
    measured: float | None
    limit: float
    unit: str

    def line(self) -> str:
        if self.measured is None:
            return f"| {self.text} | not run | {self.limit:g}{self.unit} | - |"
        verdict = "PASS" if self.measured <= self.limit else "FAIL"
        return f"| {self.text} | {self.measured:.2f}{self.unit} | ≤ {self.limit:g}{self.unit} | {verdict} |"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _aria2c_version() -> str:
    res = subprocess.run([ARIA2C, "--version"], capture_output=True, text=True, check=False)
    return res.stdout.splitlines()[0].removeprefix("aria2 version ") if res.stdout else "?"


# --- main -----------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64/32 MiB files, 3 runs (smoke run)")
    ap.add_argument(
        "--runs", type=int, default=None, help="measured runs per tool (default 5; 3 with --quick)"
    )
    ap.add_argument(
        "--only", default="", help="comma list of: 1conn,16conn,throttled,sftp,ftp,https,version"
    )
    ap.add_argument(
        "--file-allocation", default="none", choices=["none", "prealloc", "trunc", "falloc"]
    )
    ap.add_argument(
        "--no-tmpfs", action="store_true", help="do not mount a private tmpfs (root only)"
    )
    ap.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the caller's PYTHONDONTWRITEBYTECODE (compile trioaria from source every run)",
    )
    ap.add_argument(
        "--big", type=int, default=None, help="size in MiB of the unthrottled file (default 1024)"
    )
    ap.add_argument(
        "--mid", type=int, default=None, help="size in MiB of the throttled file (default 512)"
    )
    ap.add_argument(
        "--sftp", type=int, default=None, help="size in MiB of the SFTP file (default 256)"
    )
    ap.add_argument(
        "--ftp", type=int, default=None, help="size in MiB of the FTP file (default 512)"
    )
    ap.add_argument("--tsv", type=Path, default=None, help="append raw per-run rows to this file")
    args = ap.parse_args(argv)

    runs = args.runs or (3 if args.quick else 5)
    big = (args.big or (64 if args.quick else 1024)) * MiB
    mid = (args.mid or (32 if args.quick else 512)) * MiB
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    wanted = [sc for sc in SCENARIOS if not only or sc.key in only]
    do_version = not only or "version" in only
    sizes = {
        "big.bin": big,
        "mid.bin": mid,
        "sftp.bin": (args.sftp or (32 if args.quick else 256)) * MiB,
    }
    sizes["ftp.bin"] = (args.ftp or (32 if args.quick else 512)) * MiB
    needed = {sc.file for sc in wanted}

    # SIGTERM → KeyboardInterrupt, so the finally blocks stop nginx and unmount the tmpfs.
    signal.signal(signal.SIGTERM, _interrupt)

    results: dict[tuple[str, str], list[Measurement]] = {}
    load_before = _loadavg()
    t_start = time.monotonic()
    scratch_size = sum(sizes[f] for f in needed) + max((sizes[f] for f in needed), default=0)
    with scratch_dir(scratch_size, tmpfs=not args.no_tmpfs) as base:
        www, out, ngdir = base / "www", base / "out", base / "nginx"
        for d in (www, out, ngdir):
            d.mkdir()
        fs = _fs_type(out)
        env = child_env(None if args.no_bytecode_cache else base / "pycache")
        shas = {}
        for name in sorted(needed):
            print(f"generating {name} ({_fmt_size(sizes[name])}) ...", file=sys.stderr)
            shas[name] = make_random_file(www / name, sizes[name])
        server = start_nginx(ngdir, www) if wanted else None
        sftp = _start_sftp(base, www) if any(sc.scheme == "sftp" for sc in wanted) else None
        ftp = _start_ftp(base, www, "ftp.bin") if any(sc.scheme == "ftp" for sc in wanted) else None
        https = (
            _start_https(base, www, "mid.bin")
            if any(sc.scheme == "https" for sc in wanted)
            else None
        )
        tsv = open(args.tsv, "a", encoding="utf-8") if args.tsv else None  # noqa: SIM115
        try:
            for sc in wanted:
                assert server is not None
                url = server.url(("/slow/" if sc.throttled else "/") + sc.file)
                if sc.scheme == "sftp":
                    assert sftp is not None
                    url = sftp.url(sc.file, credentials=False)
                if sc.scheme == "ftp":
                    assert ftp is not None
                    url = ftp.url(sc.file)
                if sc.scheme == "https":
                    assert https is not None
                    url = https.https_url("/" + sc.file)
                    sc = dataclasses.replace(
                        sc, extra=(*sc.extra, f"--ca-certificate={https.ca_cert}")
                    )
                title = sc.title.format(size=_fmt_size(sizes[sc.file]))
                print(f"{title}: warm-up ...", file=sys.stderr)
                for tool in ("aria2c", "trioaria"):
                    run_once(tool, sc, url, out, args.file_allocation, shas[sc.file], env)
                for i in range(runs):
                    order = ("trioaria", "aria2c") if i % 2 == 0 else ("aria2c", "trioaria")
                    for tool in order:
                        m = run_once(tool, sc, url, out, args.file_allocation, shas[sc.file], env)
                        results.setdefault((sc.key, tool), []).append(m)
                        print(f"  run {i + 1}/{runs} {tool:8s} wall {m.wall:6.3f} cpu {m.cpu:5.2f} "
                              f"rss {m.maxrss_kib / 1024:5.1f} MiB {'ok' if m.ok else 'FAILED'}",
                              file=sys.stderr)  # fmt: skip
                        if tsv:
                            tsv.write(f"{sc.key}\t{tool}\t{i + 1}\t{m.wall:.4f}\t{m.user:.3f}\t"
                                      f"{m.sys:.3f}\t{m.maxrss_kib}\t{m.returncode}\t{m.ok}\n")  # fmt: skip
            if do_version:
                print("--version: warm-up ...", file=sys.stderr)
                for tool in ("aria2c", "trioaria"):
                    run_version(tool, env)
                for i in range(max(runs, 10)):
                    order = ("trioaria", "aria2c") if i % 2 == 0 else ("aria2c", "trioaria")
                    for tool in order:
                        results.setdefault(("version", tool), []).append(run_version(tool, env))
        finally:
            if tsv:
                tsv.close()
            if server is not None:
                server.stop()
            if sftp is not None:
                sftp.stop()
            if ftp is not None:
                ftp.stop()
            if https is not None:
                https.stop()

    # ----- report -----
    elapsed = time.monotonic() - t_start
    lines = [
        f"trioaria bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU ({_cpu_model()}), "
        f"Linux {platform.release()}, Python {platform.python_version()}, aria2 {_aria2c_version()}, "
        f"nginx {server.version() if server else '-'} (1 worker, sendfile).",
        f"Output on {fs} (both tools), `--file-allocation={args.file_allocation}` for both; "
        f"median of {runs} runs after one warm-up, tools alternated; CPU = user+sys of the client "
        f"process (os.wait4), RSS = ru_maxrss. Load average before {load_before}, after "
        f"{_loadavg()}; bench took {elapsed:.0f} s. Python bytecode cache "
        f"{'as the caller set it' if args.no_bytecode_cache else 'on (private PYTHONPYCACHEPREFIX)'}.",
        "",
        "| scenario / tool | runs | wall s median (min-max) | MiB/s | CPU s (user+sys) | peak RSS MiB | sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    for sc in wanted:
        size = sizes[sc.file]
        lines.append(f"| **{sc.title.format(size=_fmt_size(size))}** | | | | | | |")
        for tool in ("aria2c", "trioaria"):
            lines.append(_row(tool, results[(sc.key, tool)], size))
        tr, ar = results[(sc.key, "trioaria")], results[(sc.key, "aria2c")]
        lines.append(
            f"| ratio trioaria/aria2c | | {_med(tr, lambda m: m.wall) / _med(ar, lambda m: m.wall):.2f} "
            f"| | {_med(tr, lambda m: m.cpu) / _med(ar, lambda m: m.cpu):.2f} "
            f"| {_med(tr, lambda m: m.maxrss_kib) / _med(ar, lambda m: m.maxrss_kib):.2f} | |"
        )
    if do_version:
        lines.append("| **`--version`** | | | | | | |")
        for tool in ("aria2c", "trioaria"):
            lines.append(_row(tool, results[("version", tool)], None))

    def ratio(key: str, fn: Callable[[Measurement], float]) -> float | None:
        if (key, "trioaria") not in results:
            return None
        return _med(results[(key, "trioaria")], fn) / _med(results[(key, "aria2c")], fn)

    rss16 = [
        _med(results[(k, "trioaria")], lambda m: m.maxrss_kib) / 1024
        for k in ("16conn", "throttled")
        if (k, "trioaria") in results
    ]
    targets = [
        Target("1 conn: CPU vs aria2c", ratio("1conn", lambda m: m.cpu), 0.7, "x"),
        Target("1 conn: wall vs aria2c", ratio("1conn", lambda m: m.wall), 0.8, "x"),
        Target("16 conn: wall vs aria2c", ratio("16conn", lambda m: m.wall), 1.0, "x"),
        Target(
            "throttled 16 conn: wall vs aria2c", ratio("throttled", lambda m: m.wall), 1.05, "x"
        ),
        Target("SFTP -x4: wall vs aria2c", ratio("sftp", lambda m: m.wall), 1.5, "x"),
        Target("FTP -x4: wall vs aria2c", ratio("ftp", lambda m: m.wall), 1.0, "x"),
        Target(
            "16 conn: peak RSS (worst scenario median)", max(rss16) if rss16 else None, 48, " MiB"
        ),
        Target(
            "`trioaria --version` wall",
            _med(results[("version", "trioaria")], lambda m: m.wall) if do_version else None,
            0.15,
            " s",
        ),
    ]
    lines += ["", "| target | measured | limit | result |", "|---|---|---|---|"]
    lines += [t.line() for t in targets]
    all_ok = all(m.ok for ms in results.values() for m in ms)
    if not all_ok:
        lines += ["", "**Some runs FAILED (exit status or sha256) — see stderr.**"]
    if args.quick:
        lines += [
            "",
            "(--quick: small files; the ratios are dominated by start-up and are not the targets' numbers.)",
        ]
    print("\n".join(lines))
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
