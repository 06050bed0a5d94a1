"""The BEP 15 client gives up on a tracker that answers connects only (trioaria.bt.udp_tracker)."""

from __future__ import annotations

import itertools

from trioaria.bt.tracker import AnnounceEvent, AnnounceRequest
from trioaria.bt.udp_tracker import (
    UdpConnectRequest,
    UdpConnectResponse,
    UdpTimeout,
    UdpTrackerClient,
    decode_udp_request,
    encode_udp,
)

IH = bytes(range(20))
PID = b"-TA0100-abcdefghijkl"
REQ = AnnounceRequest(IH, PID, 6881, event=AnnounceEvent.STARTED)


def test_tracker_answering_only_connects_still_times_out() -> None:
    """A tracker that answers every connect but never an announce: BEP 15's retransmission
    schedule (n up to 8) still ends the operation with UdpTimeout, although each expired
    60 s connection id sends it back to connecting."""
    counter = itertools.count(100)
    c = UdpTrackerClient(lambda: next(counter))
    c.announce(REQ, now=0.0)
    now = 0.0
    for _ in range(2000):  # far more steps than 9 connects + 9 announces need
        for datagram in c.datagrams_to_send(now):
            request = decode_udp_request(datagram)
            if isinstance(request, UdpConnectRequest):  # answer connects only
                c.receive_datagram(
                    encode_udp(UdpConnectResponse(request.transaction_id, 0xC1D)), now
                )
        event = c.next_event()
        if event is not None:
            assert isinstance(event, UdpTimeout)
            return
        deadline = c.get_timer()
        assert deadline is not None
        now = deadline
        c.handle_timer(now)
    raise AssertionError(f"still retransmitting at t={now:.0f}s, never gave up")
