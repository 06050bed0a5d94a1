"""Tests for the ``.aria2`` control-file codec (aria2 ``DefaultBtProgressInfoFile``).

The fixtures in ``tests/data/aria2c/`` were written by the real aria2c (regenerate them with
``tests/data/make_aria2c_fixtures.sh``); the round trip there must be byte-exact.
"""

from __future__ import annotations

import http.server
import json
import struct
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trioaria.base.errors import (
    CannotResumeError,
    ExitCode,
    PieceLengthChangedError,
    ResumeFileError,
)
from trioaria.storage.control_file import (
    BLOCK_LENGTH,
    ControlFile,
    InFlightPiece,
    bitfield_length,
    completed_length,
    convert_piece_length,
    num_pieces,
    parse,
    piece_bitfield_length,
    serialize,
    validate_against,
)

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "aria2c"
MANIFEST = json.loads((FIXTURES / "fixtures.json").read_text())

HASH = bytes.fromhex("112233445566778899aabbccddeeff00ffffffff")

# --- an independent encoder (struct), used as the oracle for both byte orders ------------------


def encode(
    *,
    order: str,
    version: bytes,
    ext: int,
    info_hash: bytes,
    piece_length: int,
    total_length: int,
    upload_length: int,
    bitfield: bytes,
    in_flight: list[tuple[int, int, bytes]],
    hash_len: int | None = None,
    bf_len: int | None = None,
) -> bytes:
    e = "<" if order == "little" else ">"
    out = version + bytes([0, 0, 0, ext])
    out += struct.pack(e + "I", len(info_hash) if hash_len is None else hash_len) + info_hash
    out += struct.pack(e + "IQQ", piece_length, total_length, upload_length)
    out += struct.pack(e + "I", len(bitfield) if bf_len is None else bf_len) + bitfield
    out += struct.pack(e + "I", len(in_flight))
    for index, length, pbf in in_flight:
        out += struct.pack(e + "III", index, length, len(pbf)) + pbf
    return out


# aria2's own test fixture, described in docs/aria2-compat.md (test/load-v0001.aria2 and its v0 twin):
# BT, pieceLength 1024, total 81920, upload 1024, bitfield ff*9 fe, in-flight pieces 1 and 2.
ARIA2_LOAD = {
    "ext": 1,
    "info_hash": HASH,
    "piece_length": 1024,
    "total_length": 81920,
    "upload_length": 1024,
    "bitfield": b"\xff" * 9 + b"\xfe",
    "in_flight": [(1, 1024, b"\x00"), (2, 2, b"\x00")],
}


def _mask_spare(data: bytes, bits: int) -> bytes:
    if bits % 8 == 0 or not data:
        return data
    return data[:-1] + bytes([data[-1] & (0xFF << (8 - bits % 8)) & 0xFF])


# --- strategies ----------------------------------------------------------------------------


@st.composite
def control_files(draw: st.DrawFn) -> ControlFile:
    piece_length = draw(
        st.one_of(
            st.sampled_from([1, 2, 16383, 16384, 16385, 1 << 18, 1 << 20, 3 << 20]),
            st.integers(1, 1 << 22),
            st.just(0xFFFF_FFFF),
        )
    )
    n = draw(st.integers(0, 130))
    if n == 0:
        total = 0
    else:
        # the last piece: full (multiple) or short (non-multiple)
        last = draw(st.one_of(st.just(piece_length), st.integers(1, piece_length)))
        total = (n - 1) * piece_length + last
    raw = draw(st.binary(min_size=bitfield_length(n), max_size=bitfield_length(n)))
    bitfield = _mask_spare(raw, n)
    in_flight = []
    if n:
        for index in draw(st.lists(st.integers(0, n - 1), max_size=6, unique=True)):
            length = draw(st.integers(0, min(piece_length, 1 << 22)))
            blocks = -(-length // BLOCK_LENGTH)
            pbf = draw(
                st.binary(min_size=bitfield_length(blocks), max_size=bitfield_length(blocks))
            )
            in_flight.append(InFlightPiece(index, length, _mask_spare(pbf, blocks)))
    bt = draw(st.booleans())
    info_hash = draw(st.binary(min_size=20, max_size=20)) if bt else draw(st.binary(max_size=20))
    return ControlFile(
        piece_length=piece_length,
        total_length=total,
        bitfield=bitfield,
        in_flight=tuple(in_flight),
        upload_length=draw(st.integers(0, 2**64 - 1)),
        info_hash=info_hash,
        bittorrent=bt,
    )


# --- round trip ----------------------------------------------------------------------------


@settings(max_examples=300)
@given(control_files())
def test_round_trip(cf: ControlFile) -> None:
    data = serialize(cf)
    assert parse(data) == cf
    assert serialize(parse(data)) == data


@given(control_files())
def test_serialize_matches_independent_encoder(cf: ControlFile) -> None:
    expected = encode(
        order="big",
        version=b"\x00\x01",
        ext=int(cf.bittorrent),
        info_hash=cf.info_hash,
        piece_length=cf.piece_length,
        total_length=cf.total_length,
        upload_length=cf.upload_length,
        bitfield=cf.bitfield,
        in_flight=[(p.index, p.length, p.bitfield) for p in cf.in_flight],
    )
    assert serialize(cf) == expected


@given(control_files(), st.binary(min_size=1, max_size=64))
def test_trailing_bytes_are_ignored_like_aria2(cf: ControlFile, tail: bytes) -> None:
    assert parse(serialize(cf) + tail) == cf


def test_version_zero_is_little_endian_and_written_back_as_version_one() -> None:
    v0 = encode(order="little", version=b"\x00\x00", **ARIA2_LOAD)
    v1 = encode(order="big", version=b"\x00\x01", **ARIA2_LOAD)
    cf = parse(v0)
    assert cf.version == 0
    assert cf.bittorrent
    assert cf.info_hash == HASH
    assert (cf.piece_length, cf.total_length, cf.upload_length) == (1024, 81920, 1024)
    assert cf.num_pieces == 80
    assert cf.bitfield == b"\xff" * 9 + b"\xfe"
    assert cf.in_flight == (InFlightPiece(1, 1024, b"\x00"), InFlightPiece(2, 2, b"\x00"))
    assert serialize(cf) == v1
    assert parse(v1) == replace(cf, version=1)


def test_info_hash_without_extension_bit_is_kept() -> None:
    # aria2's load-nonBt.aria2 carries a hash while the BitTorrent bit is clear
    data = encode(order="little", version=b"\x00\x00", **{**ARIA2_LOAD, "ext": 0})
    cf = parse(data)
    assert not cf.bittorrent
    assert cf.info_hash == HASH
    # no torrent, no check (aria2 compares only when the bit is set and the download is BT)
    validate_against(cf, total_length=81920, piece_length=1024, info_hash=b"\x00" * 20)


def test_spare_bits_are_cleared_on_load() -> None:
    fields = {**ARIA2_LOAD, "bitfield": b"\xff" * 10, "in_flight": [(5, 2, b"\xff")]}
    cf = parse(encode(order="big", version=b"\x00\x01", **fields))
    assert cf.bitfield == b"\xff" * 10  # 80 pieces: no spare bits
    assert cf.in_flight[0].bitfield == b"\x80"  # 1 block: 7 spare bits cleared
    odd = {**fields, "total_length": 81920 - 1024 * 3}  # 77 pieces
    cf = parse(encode(order="big", version=b"\x00\x01", **odd))
    assert cf.bitfield == b"\xff" * 9 + b"\xf8"
    assert cf.num_pieces == 77


# --- malformed input -----------------------------------------------------------------------

V1 = {"order": "big", "version": b"\x00\x01"}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "truncated"),
        (b"\x00", "truncated"),
        (encode(**{**V1, "version": b"\x00\x02"}, **ARIA2_LOAD), "version: 0002"),
        (encode(**{**V1, "version": b"\x01\x00"}, **ARIA2_LOAD), "version: 0100"),
        (encode(**V1, **{**ARIA2_LOAD, "info_hash": HASH + b"\x00"}), "info hash length"),
        (encode(**V1, **{**ARIA2_LOAD, "piece_length": 0}), "must not be 0"),
        (encode(**V1, **ARIA2_LOAD, bf_len=11), "bitfield length mismatch"),
        (encode(**V1, **{**ARIA2_LOAD, "bitfield": b"\xff" * 11}), "bitfield length mismatch"),
        (encode(**V1, **{**ARIA2_LOAD, "in_flight": [(80, 2, b"\x00")]}), "index out of range"),
        (encode(**V1, **{**ARIA2_LOAD, "in_flight": [(1, 1025, b"\x00")]}), "length out of range"),
        (encode(**V1, **{**ARIA2_LOAD, "in_flight": [(1, 1024, b"")]}), "bitfield length mismatch"),
        (
            encode(**V1, **{**ARIA2_LOAD, "in_flight": [(1, 1024, b"\x00\x00")]}),
            "bitfield length mismatch",
        ),
        # a count of 2**32 - 1 in-flight pieces in a short file fails at once
        (encode(**V1, **{**ARIA2_LOAD, "in_flight": []})[:-4] + b"\xff" * 4, "need at least"),
    ],
)
def test_malformed_input_raises_resume_file_error(data: bytes, needle: str) -> None:
    with pytest.raises(ResumeFileError, match=needle) as info:
        parse(data)
    assert info.value.exit_code == ExitCode.UNKNOWN_ERROR
    assert "\n" not in str(info.value)


def _valid_samples() -> list[bytes]:
    samples = [
        encode(**V1, **ARIA2_LOAD),
        encode(order="little", version=b"\x00\x00", **ARIA2_LOAD),
    ]
    samples += [(FIXTURES / f["file"]).read_bytes() for f in MANIFEST["fixtures"].values()]
    return samples


@pytest.mark.parametrize("data", _valid_samples())
def test_every_truncation_is_rejected(data: bytes) -> None:
    parse(data)
    for cut in range(len(data)):
        with pytest.raises(ResumeFileError):
            parse(data[:cut])


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_only_resume_file_error(data: bytes) -> None:
    try:
        cf = parse(data)
    except ResumeFileError:
        return
    assert parse(serialize(cf)) == replace(cf, version=1)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(control_files(), st.data())
def test_mutated_files_raise_only_resume_file_error(cf: ControlFile, data: st.DataObject) -> None:
    buf = bytearray(serialize(cf))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf)))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set" and pos < len(buf):
            buf[pos] = data.draw(st.integers(0, 255))
        elif action == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del buf[pos : pos + data.draw(st.integers(1, 4))]
    try:
        parsed = parse(bytes(buf))
    except ResumeFileError:
        return
    assert parse(serialize(parsed)) == replace(parsed, version=1)


def test_constructor_rejects_inconsistent_values() -> None:
    good = {"piece_length": 1024, "total_length": 3000, "bitfield": b"\x00"}
    ControlFile(**good)
    bad = [
        {"piece_length": 0},
        {"piece_length": 1 << 32},
        {"total_length": -1},
        {"total_length": 1 << 64},
        {"upload_length": -1},
        {"bitfield": b""},
        {"bitfield": b"\x00\x00"},
        {"bitfield": b"\x10"},  # bit 3 of 3 pieces is a spare bit
        {"info_hash": b"x" * 21},
        {"version": 2},
        {"in_flight": (InFlightPiece(3, 10, b"\x00"),)},
        {"in_flight": (InFlightPiece(0, 1025, b"\x00"),)},
    ]
    for change in bad:
        with pytest.raises(ValueError):
            ControlFile(**{**good, **change})
    for args in [
        (-1, 0, b""),
        (0, -1, b""),
        (0, 8 * BLOCK_LENGTH + 1, b"\x00"),
        (0, 16384, b""),
        (0, 1, b"\x01"),
    ]:
        with pytest.raises(ValueError):
            InFlightPiece(*args)


# --- geometry and completed length -------------------------------------------------------------


def test_geometry() -> None:
    assert num_pieces(0, 1024) == 0
    assert num_pieces(1, 1024) == 1
    assert num_pieces(1024, 1024) == 1
    assert num_pieces(1025, 1024) == 2
    with pytest.raises(ValueError):
        num_pieces(10, 0)
    assert piece_bitfield_length(0) == 0
    assert piece_bitfield_length(1) == 1
    assert piece_bitfield_length(8 * BLOCK_LENGTH) == 1
    assert piece_bitfield_length(8 * BLOCK_LENGTH + 1) == 2
    assert piece_bitfield_length(1 << 20) == 8  # 64 blocks
    assert ControlFile.empty(0, 1024) == ControlFile(1024, 0, b"")
    bt = ControlFile.empty(5000, 1024, info_hash=HASH)
    assert bt.bittorrent
    assert bt.bitfield == b"\x00"
    assert not bt.has_progress


def test_completed_length() -> None:
    # 5 pieces of 1024, the last 100 bytes; pieces 0 and 4 done
    cf = ControlFile(1024, 4196, b"\x88")
    assert cf.piece_done(0)
    assert cf.piece_done(4)
    assert not cf.piece_done(1)
    with pytest.raises(IndexError):
        cf.piece_done(5)
    assert completed_length(cf) == 1024 + 100
    assert completed_length(ControlFile(1024, 4196, b"\xf8")) == 4196
    assert completed_length(ControlFile(1024, 4196, b"\x00")) == 0

    # 1 MiB pieces, total 2.5 MiB + 5: last piece 0.5 MiB + 5 bytes -> 33 blocks, last 5 bytes
    big = 1 << 20
    total = 2 * big + big // 2 + 5
    last = InFlightPiece(2, total - 2 * big, bytes([0x80, 0, 0, 0, 0x80]))  # blocks 0 and 32
    mid = InFlightPiece(1, big, b"\xc0" + bytes(7))  # blocks 0, 1
    cf = ControlFile(big, total, b"\x80", in_flight=(mid, last))
    assert last.completed_length == BLOCK_LENGTH + 5
    assert mid.completed_length == 2 * BLOCK_LENGTH
    assert completed_length(cf) == big + 3 * BLOCK_LENGTH + 5
    # a duplicated in-flight index counts once (first wins); one on a done piece not at all
    dup = InFlightPiece(1, big, b"\xff" * 8)
    on_done = InFlightPiece(0, big, b"\xff" * 8)
    cf2 = replace(cf, in_flight=(mid, last, dup, on_done))
    assert completed_length(cf2) == completed_length(cf)


# --- validation against the current download -------------------------------------------------


def test_validate_against() -> None:
    cf = parse(encode(**V1, **ARIA2_LOAD))
    validate_against(cf, total_length=81920, piece_length=1024, info_hash=HASH)
    validate_against(cf, total_length=81920, piece_length=1024)  # not a torrent now: no check

    with pytest.raises(CannotResumeError, match="total length mismatch") as info:
        validate_against(cf, total_length=81921, piece_length=1024)
    assert info.value.exit_code == ExitCode.CANNOT_RESUME == 8

    with pytest.raises(PieceLengthChangedError) as info2:
        validate_against(cf, total_length=81920, piece_length=2048)
    assert info2.value.exit_code == ExitCode.PIECE_LENGTH_CHANGED == 10
    assert "--allow-piece-length-change" in str(info2.value)
    validate_against(cf, total_length=81920, piece_length=2048, allow_piece_length_change=True)

    # no progress: a piece length change is silently fine
    empty = ControlFile.empty(81920, 1024)
    validate_against(empty, total_length=81920, piece_length=4096)
    # in-flight pieces alone count as progress
    only_in_flight = replace(empty, in_flight=(InFlightPiece(3, 1024, b"\x00"),))
    with pytest.raises(PieceLengthChangedError):
        validate_against(only_in_flight, total_length=81920, piece_length=4096)

    with pytest.raises(ResumeFileError, match="info hash mismatch"):
        validate_against(cf, total_length=81920, piece_length=1024, info_hash=b"\x01" * 20)
    short = replace(cf, info_hash=HASH[:10])
    with pytest.raises(ResumeFileError, match="info hash length"):
        validate_against(short, total_length=81920, piece_length=1024, info_hash=HASH)
    # the info hash is checked before the total length, as in aria2
    with pytest.raises(ResumeFileError):
        validate_against(cf, total_length=1, piece_length=1024, info_hash=b"\x01" * 20)


# --- piece length conversion (aria2 util::convertBitfield) -----------------------------------


def _brute_convert(cf: ControlFile, new: int) -> bytes:
    n = num_pieces(cf.total_length, new)
    out = bytearray(bitfield_length(n))
    for i in range(n):
        start, end = i * new, min((i + 1) * new, cf.total_length)
        old = range(start // cf.piece_length, (end - 1) // cf.piece_length + 1)
        if all(cf.piece_done(k) for k in old):
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def test_convert_piece_length_examples() -> None:
    mib = 1 << 20
    cf = ControlFile(mib, 4 * mib, b"\xd0", in_flight=(InFlightPiece(2, mib, bytes(8)),))  # 1101
    to2 = convert_piece_length(cf, 2 * mib)
    assert to2.bitfield == b"\x80"  # [11][01] -> 1 0
    assert to2.in_flight == ()
    assert to2.piece_length == 2 * mib
    to_half = convert_piece_length(cf, mib // 2)
    assert to_half.bitfield == b"\xf3"  # 11 11 00 11
    # total not a multiple: 2.5 MiB with 1 MiB pieces done 1,1,1 -> 3 MiB pieces: 1
    odd = ControlFile(mib, 2 * mib + mib // 2, b"\xe0")
    assert convert_piece_length(odd, 3 * mib).bitfield == b"\x80"
    assert convert_piece_length(ControlFile(mib, 0, b""), 7).bitfield == b""
    with pytest.raises(ValueError):
        convert_piece_length(cf, 0)


@settings(max_examples=200)
@given(control_files(), st.integers(1, 1 << 21))
def test_convert_piece_length_matches_brute_force(cf: ControlFile, new: int) -> None:
    if num_pieces(cf.total_length, new) > 2000:
        new = max(new, cf.total_length // 2000 + 1)
    converted = convert_piece_length(cf, new)
    assert converted.bitfield == _brute_convert(cf, new)
    assert converted.in_flight == ()
    assert (converted.total_length, converted.info_hash) == (cf.total_length, cf.info_hash)
    # never more progress than the whole pieces we had
    assert completed_length(converted) <= completed_length(replace(cf, in_flight=()))


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(control_files(), st.integers(2, 16))
def test_convert_to_divisor_and_back_is_identity(cf: ControlFile, k: int) -> None:
    assume(cf.piece_length % k == 0 and cf.num_pieces * k <= 3000)
    small = convert_piece_length(cf, cf.piece_length // k)
    assert completed_length(small) == completed_length(replace(cf, in_flight=()))
    assert convert_piece_length(small, cf.piece_length).bitfield == cf.bitfield


# --- byte-exact fixtures from the real aria2c ------------------------------------------------

FIXTURE_NAMES = sorted(MANIFEST["fixtures"])


def test_fixture_manifest_covers_the_required_cases() -> None:
    assert {"single-1M", "multi4-1M", "multi2-2M"} <= set(FIXTURE_NAMES)
    assert MANIFEST["payload"]["length"] % (1 << 20) != 0  # the last piece is short


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_aria2c_fixture(name: str) -> None:
    meta = MANIFEST["fixtures"][name]
    data = (FIXTURES / meta["file"]).read_bytes()
    cf = parse(data)
    assert serialize(cf) == data  # byte-exact
    assert cf.version == 1
    assert not cf.bittorrent
    assert cf.info_hash == b""
    assert cf.upload_length == 0
    assert cf.total_length == meta["total_length"]
    assert cf.piece_length == meta["piece_length"]
    validate_against(cf, total_length=meta["total_length"], piece_length=meta["piece_length"])

    # aria2 was interrupted mid-download: some pieces done, some in flight, not all done
    done = [i for i in range(cf.num_pieces) if cf.piece_done(i)]
    assert done
    assert cf.in_flight
    assert 0 < completed_length(cf) < cf.total_length
    indexes = [p.index for p in cf.in_flight]
    assert indexes == sorted(set(indexes))  # aria2 writes its in-flight set by index
    for p in cf.in_flight:
        assert not cf.piece_done(p.index)
        expected = min(cf.piece_length, cf.total_length - p.index * cf.piece_length)
        assert p.length == expected

    # every block the control file calls done held the right bytes in aria2's partial file
    written = bytes.fromhex(meta["written_blocks_hex"])
    per_piece = cf.piece_length // BLOCK_LENGTH

    def block_written(b: int) -> bool:
        return bool(written[b // 8] & (0x80 >> (b % 8)))

    total_blocks = -(-cf.total_length // BLOCK_LENGTH)
    for i in done:
        for b in range(i * per_piece, min((i + 1) * per_piece, total_blocks)):
            assert block_written(b), f"piece {i} block {b} marked done but not written"
    for p in cf.in_flight:
        for j in range(p.num_blocks):
            if p.bitfield[j // 8] & (0x80 >> (j % 8)):
                assert block_written(p.index * per_piece + j)

    # another piece length with progress needs --allow-piece-length-change (exit 10)
    with pytest.raises(PieceLengthChangedError):
        validate_against(cf, total_length=cf.total_length, piece_length=cf.piece_length * 2)
    with pytest.raises(CannotResumeError):
        validate_against(cf, total_length=cf.total_length + 1, piece_length=cf.piece_length)


def test_multi_connection_fixture_has_several_pieces_in_flight() -> None:
    cf = parse((FIXTURES / MANIFEST["fixtures"]["multi4-1M"]["file"]).read_bytes())
    assert len(cf.in_flight) >= 2


# --- aria2c resumes a control file we wrote ---------------------------------------------------


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.payload`` at any path, honouring ``Range: bytes=A-`` / ``bytes=A-B``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        payload: bytes = self.server.payload  # type: ignore[attr-defined]
        start, end = 0, len(payload) - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start = int(first)
            end = int(last) if last else end
            status = 206
        body = payload[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(payload)}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_aria2c_resumes_our_control_file(tmp_path: Path) -> None:
    """Pieces our file marks done must be trusted by aria2c: we fill them with a marker byte
    that differs from the payload, and after aria2c finishes the markers are still there."""
    mib = 1 << 20
    total = 3 * mib + 20000  # pieces 0..3, the last 20000 bytes (2 blocks)
    payload = bytes((i * 7 + (i >> 11)) % 251 for i in range(total))
    marker = 0xFE  # never produced by "% 251"
    partial = bytearray(total)
    done_blocks_p1 = 10
    for piece in (0, 2):
        partial[piece * mib : (piece + 1) * mib] = bytes([marker]) * mib
    partial[mib : mib + done_blocks_p1 * BLOCK_LENGTH] = bytes([marker]) * (
        done_blocks_p1 * BLOCK_LENGTH
    )
    cf = ControlFile(
        piece_length=mib,
        total_length=total,
        bitfield=b"\xa0",  # pieces 0 and 2
        in_flight=(InFlightPiece(1, mib, b"\xff\xc0" + bytes(6)),),  # blocks 0..9 of piece 1
    )
    out = tmp_path / "payload.bin"
    out.write_bytes(partial)
    (tmp_path / "payload.bin.aria2").write_bytes(serialize(cf))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    server.payload = payload  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        proc = subprocess.run(
            [
                "aria2c",
                "--no-conf",
                f"--dir={tmp_path}",
                "--out=payload.bin",
                "--piece-length=1M",
                "--file-allocation=none",
                "--console-log-level=warn",
                "--summary-interval=0",
                "--show-console-readout=false",
                f"http://127.0.0.1:{port}/payload.bin",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "payload.bin.aria2").exists()
    got = out.read_bytes()
    assert len(got) == total
    expected = bytearray(payload)
    expected[0:mib] = partial[0:mib]
    expected[2 * mib : 3 * mib] = partial[2 * mib : 3 * mib]
    expected[mib : mib + done_blocks_p1 * BLOCK_LENGTH] = partial[
        mib : mib + done_blocks_p1 * BLOCK_LENGTH
    ]
    assert got == bytes(expected)
