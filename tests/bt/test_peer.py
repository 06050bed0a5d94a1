"""trioaria.bt.peer: the per-peer state machine driven with wire events and explicit time."""

from __future__ import annotations

import pytest

from trioaria.bt.errors import PeerProtocolError
from trioaria.bt.messages import (
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    ExtendedHandshake,
    Have,
    HaveAll,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
)
from trioaria.bt.peer import (
    BlockArrived,
    PeerHasChanged,
    PeerIdle,
    PeerState,
    RequestsDropped,
    SendMessage,
    UnrequestedBlock,
    UploadCancelled,
    UploadQueued,
)

BLOCK = b"x" * 16384


def test_flags_and_piece_set():
    p = PeerState(12, now=0.0)
    assert (p.am_choking, p.am_interested, p.peer_choking, p.peer_interested) == (
        True,
        False,
        True,
        False,
    )
    assert p.receive(Bitfield(b"\xc0\x00"), 1.0) == [PeerHasChanged((0, 1), False)]
    assert p.receive(Have(11), 1.0) == [PeerHasChanged((11,), False)]
    assert p.receive(Have(11), 1.0) == []  # nothing new
    assert p.has(0) and p.has(11) and not p.has(5) and not p.seed
    p.receive(Unchoke(), 1.0)
    p.receive(Interested(), 1.0)
    assert not p.peer_choking and p.peer_interested
    p.receive(NotInterested(), 1.0)
    assert not p.peer_interested
    with pytest.raises(PeerProtocolError):
        PeerState(12, 0.0).receive(Bitfield(b"\xff\xff"), 0.0)  # spare bits set


def test_have_all_and_magnet_before_metadata():
    p = PeerState(None, now=0.0)
    assert p.receive(Bitfield(b"\xa0"), 0.0) == []
    assert p.receive(Have(1), 0.0) == []
    assert p.pieces is None and not p.has(0)
    assert p.set_num_pieces(3) == [PeerHasChanged((0, 2), False), PeerHasChanged((1,), True)]
    assert p.seed
    seed = PeerState(None, now=0.0)
    seed.receive(HaveAll(), 0.0)
    assert seed.set_num_pieces(4) == [PeerHasChanged((0, 1, 2, 3), True)]
    assert seed.pieces is not None and seed.pieces.all()
    assert PeerState(3, 0.0).receive(HaveAll(), 0.0) == [PeerHasChanged((0, 1, 2), True)]
    bad = PeerState(None, 0.0)
    bad.receive(Have(9), 0.0)
    with pytest.raises(PeerProtocolError):
        bad.set_num_pieces(3)


def test_pipeline_grows_with_the_rate_and_respects_reqq():
    p = PeerState(100, now=0.0)
    p.receive(HaveAll(), 0.0)
    assert p.request_slots(0.0) == 0  # choked, nothing allowed fast
    p.receive(Unchoke(), 0.0)
    assert p.pipeline_depth(0.0) == 4 and p.request_slots(0.0) == 4
    # Feed 100 MiB/s for two seconds: the pipeline opens to the cap.
    t = 0.0
    for i in range(12800):
        t = i * (2.0 / 12800)
        p.sent_request(Request(i % 100, (i // 100) * 16384, 16384), t)
        assert p.receive(Piece(i % 100, (i // 100) * 16384, BLOCK), t)[0] == BlockArrived(
            i % 100, (i // 100) * 16384, BLOCK
        )
    assert p.pipeline_depth(t) >= 64
    assert p.pipeline_depth(t) == 250
    p.receive(ExtendedHandshake(reqq=100), t)
    assert p.pipeline_depth(t) == 100
    p.sent_request(Request(0, 0, 16384), t)
    assert p.request_slots(t) == 99


def test_blocks_match_requests():
    p = PeerState(4, now=0.0)
    p.receive(Unchoke(), 0.0)
    p.sent_request(Request(1, 0, 16384), 0.0)
    assert p.receive(Piece(1, 16384, BLOCK), 1.0) == [UnrequestedBlock(1, 16384, 16384)]
    assert p.receive(Piece(1, 0, b"short"), 1.0) == [UnrequestedBlock(1, 0, 5)]
    assert p.outstanding == 1  # the wrong-length answer did not consume the request
    assert p.receive(Piece(1, 0, BLOCK), 1.0) == [BlockArrived(1, 0, BLOCK)]
    assert p.outstanding == 0
    p.sent_request(Request(2, 0, 100), 2.0)
    assert p.cancel_request(2, 0) and not p.cancel_request(2, 0)
    assert p.receive(Piece(2, 0, b"y" * 100), 2.5) == [UnrequestedBlock(2, 0, 100)]


def test_driver_fast_path_takes_blocks_and_counts_a_read_once() -> None:
    """``sent_requests`` + ``take_block`` + ``blocks_arrived`` (the reader's per-read path) keep
    the same books as ``sent_request`` + ``receive(Piece)`` per block."""
    p = PeerState(4, now=0.0)
    p.receive(Unchoke(), 0.0)
    p.sent_requests([(1, 0, 16384), (1, 16384, 16384), (2, 0, 100)], 0.0)
    assert p.outstanding_blocks() == [(1, 0, 16384), (1, 16384, 16384), (2, 0, 100)]
    assert not p.take_block(1, 0, 5, 1.0)  # wrong length: still outstanding
    assert not p.take_block(3, 0, 16384, 1.0)  # never requested
    assert p.outstanding == 3
    assert p.take_block(1, 0, 16384, 1.0) and p.take_block(1, 16384, 16384, 1.0)
    assert not p.take_block(1, 0, 16384, 1.0)  # only once
    assert p.outstanding == 1 and p.download.total == 0  # counted per read, not per block
    p.blocks_arrived(2 * 16384, 1.0)
    assert p.download.total == 2 * 16384
    # the snub clock moved: no snub 60 s after the first request, only 60 s after this read
    assert p.handle_timer(60.5) == [] and not p.snubbed
    p.handle_timer(61.0)
    assert p.snubbed


def test_take_blocks_keeps_the_requested_ones_in_order() -> None:
    """``take_blocks`` (a whole read's blocks at once) is ``take_block`` for each: requested
    blocks come back in order, a wrong length stays outstanding, an unrequested one is
    dropped; when every block was requested the same list comes back."""
    p = PeerState(4, now=0.0)
    p.receive(Unchoke(), 0.0)
    p.sent_requests([(1, 0, 16384), (1, 16384, 16384), (2, 0, 100), (3, 0, 16384)], 0.0)
    view = memoryview(bytes(16384))
    blocks = [(1, 0, view), (0, 0, view), (1, 16384, view), (2, 0, view), (3, 0, view)]
    assert p.take_blocks(blocks, 1.0) == [(1, 0, view), (1, 16384, view), (3, 0, view)]
    assert p.outstanding_blocks() == [(2, 0, 100)]  # its 16384-byte answer did not fit
    assert p.take_blocks([(2, 0, view[:100])], 2.0) == [(2, 0, view[:100])]
    p.sent_requests([(0, 0, 16384), (0, 16384, 16384)], 3.0)
    every = [(0, 0, view), (0, 16384, view)]
    assert p.take_blocks(every, 3.0) is every
    assert p.outstanding == 0 and p.take_blocks(every, 3.0) == []


def test_choke_drops_requests_without_fast_but_not_with_it():
    p = PeerState(4, now=0.0)
    p.receive(Unchoke(), 0.0)
    p.sent_request(Request(1, 0, 16384), 0.0)
    p.sent_request(Request(1, 16384, 16384), 0.0)
    assert p.receive(Choke(), 1.0) == [RequestsDropped(((1, 0, 16384), (1, 16384, 16384)))]
    assert p.outstanding == 0
    f = PeerState(4, now=0.0, fast=True)
    f.receive(Unchoke(), 0.0)
    f.sent_request(Request(1, 0, 16384), 0.0)
    assert f.receive(Choke(), 1.0) == []
    assert f.outstanding == 1
    assert f.receive(RejectRequest(1, 0, 999), 1.0) == []  # not what we asked
    assert f.receive(RejectRequest(1, 0, 16384), 1.0) == [RequestsDropped(((1, 0, 16384),))]


def test_allowed_fast_while_choked():
    p = PeerState(8, now=0.0, fast=True)
    p.receive(HaveAll(), 0.0)
    assert not p.can_request(3) and p.request_slots(0.0) == 0
    p.receive(AllowedFast(3), 0.0)
    assert p.can_request(3) and not p.can_request(4) and p.request_slots(0.0) == 4
    p.receive(SuggestPiece(5), 0.0)
    assert p.suggested == [5]


def test_uploads_queue_reject_and_cancel():
    p = PeerState(8, now=0.0, fast=True, max_upload_queue=2)
    assert p.receive(Request(0, 0, 16384), 0.0) == [SendMessage(RejectRequest(0, 0, 16384))]
    p.allow_fast({0})
    assert p.receive(Request(0, 0, 16384), 0.0) == [UploadQueued(0, 0, 16384)]
    p.set_choking(False, 0.0)
    assert p.receive(Request(1, 0, 16384), 0.0) == [UploadQueued(1, 0, 16384)]
    assert p.receive(Request(2, 0, 16384), 0.0) == [SendMessage(RejectRequest(2, 0, 16384))]
    # BEP 6: "even when a request is cancelled, the peer receiving the cancel should respond
    # with either the corresponding reject or the corresponding piece"
    assert p.receive(Cancel(0, 0, 16384), 0.0) == [SendMessage(RejectRequest(0, 0, 16384))]
    assert p.receive(Cancel(0, 0, 16384), 0.0) == []  # not queued (any more): no answer
    assert p.next_upload() == (1, 0, 16384) and p.next_upload() is None
    p.receive(Request(3, 0, 16384), 0.0)
    assert p.set_choking(True, 0.0) == [SendMessage(RejectRequest(3, 0, 16384))]
    assert p.queued_uploads == 0
    plain = PeerState(8, now=0.0)
    assert plain.receive(Request(0, 0, 16384), 0.0) == []  # choked, no Fast: ignored
    plain.set_choking(False, 0.0)
    assert plain.receive(Request(0, 0, 16384), 0.0) == [UploadQueued(0, 0, 16384)]
    assert plain.receive(Cancel(0, 0, 16384), 0.0) == [UploadCancelled(0, 0, 16384)]
    plain.set_choking(False, 0.0)
    plain.receive(Request(0, 0, 16384), 0.0)
    assert plain.set_choking(True, 0.0) == [] and plain.queued_uploads == 0


def test_snubbing_keepalive_and_idle_timers():
    p = PeerState(4, now=0.0)
    p.receive(Unchoke(), 0.0)
    assert p.get_timer() == 120.0  # keep-alive first; no requests, so no snub timer
    p.sent_request(Request(0, 0, 16384), 10.0)
    assert p.get_timer() == 70.0
    assert p.handle_timer(69.9) == [] and not p.snubbed
    assert p.handle_timer(70.0) == [] and p.snubbed
    assert p.get_timer() == 130.0  # keep-alive: last sent at 10
    assert p.handle_timer(130.0) == [SendMessage(KeepAlive())]
    p.receive(Piece(0, 0, BLOCK), 140.0)
    assert not p.snubbed
    assert p.get_timer() == 250.0
    assert p.handle_timer(320.0) == [PeerIdle(), SendMessage(KeepAlive())]


def test_allowed_fast_and_early_haves_are_bounded() -> None:
    """Before the metadata the piece count is unknown: a flood of ``allowed fast`` or ``have``
    messages keeps a bounded set; after it, indices past the last piece are ignored."""
    from trioaria.bt.peer import MAX_ALLOWED_FAST

    p = PeerState(None, now=0.0, fast=True)
    for i in range(MAX_ALLOWED_FAST + 100):
        p.receive(AllowedFast(i), 0.0)
    assert len(p.allowed_fast) == MAX_ALLOWED_FAST
    known = PeerState(8, now=0.0, fast=True)
    known.receive(AllowedFast(8), 0.0)
    known.receive(AllowedFast(7), 0.0)
    assert known.allowed_fast == {7}
