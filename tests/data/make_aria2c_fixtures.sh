#!/usr/bin/env bash
# Regenerate tests/data/aria2c/: real `.aria2` control files written by aria2c.
#
# A throttled nginx (limit_rate) on 127.0.0.1:<port the OS picked> serves a deterministic payload
# (SHA-256 counter stream of a fixed seed, so it is byte-identical on every run).  aria2c downloads
# it with several connection/piece-length settings, is interrupted with SIGINT after a few seconds
# (aria2 then saves the control file and exits 7), and the resulting `.aria2` file is copied here.
# fixtures.json records, per fixture: the command line, the payload's total length, the piece
# length asked for, and which 16 KiB blocks of aria2's partial output file already held the
# right bytes (hex, MSB first) -- the tests check that every block the control file marks done
# is among them.
#
# Usage: tests/data/make_aria2c_fixtures.sh      (needs nginx and aria2c; ~25 s)
# Env:   NGINX=/usr/sbin/nginx ARIA2C=aria2c RATE=250k
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/aria2c
NGINX=${NGINX:-/usr/sbin/nginx}
ARIA2C=${ARIA2C:-aria2c}
RATE=${RATE:-250k}
WORK=$(mktemp -d /tmp/trioaria-aria2c-fixtures.XXXXXX)
NGINX_PID=

cleanup() {
    if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT" "$WORK/www" "$WORK/logs" "$WORK/tmp"

# --- the payload: 8 MiB + 12345 bytes, so the last piece is short ---------------------------
python3 - "$WORK/www/payload.bin" <<'PY'
import hashlib, sys
size = 8 * 1024 * 1024 + 12345
seed = b"trioaria control-file fixture v1"
buf = bytearray()
i = 0
while len(buf) < size:
    buf += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
    i += 1
with open(sys.argv[1], "wb") as f:
    f.write(buf[:size])
PY
chmod -R a+rX "$WORK"

# --- nginx on an OS-assigned loopback port ----------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat > "$WORK/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp/body; proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fcgi; uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
  server {
    listen 127.0.0.1:$PORT;
    root $WORK/www;
    location /slow/ { alias $WORK/www/; limit_rate $RATE; }
  }
}
CONF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):  # bounded: 10 s
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("nginx did not start")
PY

URL=http://127.0.0.1:$PORT/slow/payload.bin

# run_case NAME SECONDS PIECE_LENGTH ARIA2C_ARGS...
run_case() {
    local name=$1 secs=$2 plen=$3
    shift 3
    rm -rf "$WORK/dl"
    mkdir -p "$WORK/dl"
    local args=(--no-conf --dir="$WORK/dl" --out=payload.bin --auto-save-interval=1
        --file-allocation=none --summary-interval=0 --console-log-level=warn
        --show-console-readout=false --piece-length="$plen" "$@")
    "$ARIA2C" "${args[@]}" "$URL" > "$WORK/logs/$name.log" 2>&1 &
    local pid=$!
    sleep "$secs"
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    if [ "$rc" != 7 ]; then
        echo "$name: aria2c exited $rc, expected 7 (interrupted); log:" >&2
        cat "$WORK/logs/$name.log" >&2
        exit 1
    fi
    cp "$WORK/dl/payload.bin.aria2" "$OUT/$name.aria2"
    python3 - "$name" "$WORK/www/payload.bin" "$WORK/dl/payload.bin" "$WORK/blocks.tsv" \
        "$plen" "$*" <<'PY'
import sys
name, ref, part, out, plen, args = sys.argv[1:]
B = 16384
ref_data = open(ref, "rb").read()
try:
    part_data = open(part, "rb").read()
except FileNotFoundError:
    part_data = b""
nblocks = -(-len(ref_data) // B)
bits = bytearray((nblocks + 7) // 8)
for i in range(nblocks):
    a, b = i * B, min((i + 1) * B, len(ref_data))
    if part_data[a:b] == ref_data[a:b]:
        bits[i >> 3] |= 0x80 >> (i & 7)
with open(out, "a") as f:
    mult = {"K": 1 << 10, "M": 1 << 20}
    plen_bytes = int(plen[:-1]) * mult[plen[-1]] if plen[-1] in mult else int(plen)
    f.write(f"{name}\t{plen_bytes}\t--piece-length={plen} {args}\t{bits.hex()}\n")
PY
}

: > "$WORK/blocks.tsv"
run_case single-1M 6 1M --max-connection-per-server=1 --split=1
run_case multi4-1M 6 1M --max-connection-per-server=4 --split=4 --min-split-size=1M
run_case multi2-2M 10 2M --max-connection-per-server=2 --split=2 --min-split-size=1M

# --- fixtures.json ----------------------------------------------------------------------------
VERSION=$("$ARIA2C" --version | head -n 1)
python3 - "$OUT/fixtures.json" "$WORK/www/payload.bin" "$WORK/blocks.tsv" "$VERSION" "$RATE" <<'PY'
import hashlib, json, sys
out, payload, blocks_tsv, version, rate = sys.argv[1:]
data = open(payload, "rb").read()
fixtures = {}
for line in open(blocks_tsv):
    name, plen, args, bits = line.rstrip("\n").split("\t")
    fixtures[name] = {
        "file": f"{name}.aria2",
        "aria2c_args": args + " --auto-save-interval=1 --file-allocation=none",
        "total_length": len(data),
        "piece_length": int(plen),
        "written_blocks_hex": bits,
    }
doc = {
    "generator": "tests/data/make_aria2c_fixtures.sh",
    "aria2c": version,
    "nginx_limit_rate": rate,
    "payload": {
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "recipe": "sha256(b'trioaria control-file fixture v1' + u64be(i)) for i = 0, 1, ...",
    },
    "block_length": 16384,
    "fixtures": fixtures,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2, sort_keys=True)
    f.write("\n")
PY
ls -l "$OUT"
