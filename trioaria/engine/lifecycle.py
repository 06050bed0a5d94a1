"""The download lifecycle as a transition table (h11 ``_state.py`` style; docs/design.md).

Every state change of a :class:`~trioaria.engine.group.RequestGroup` goes through
:func:`transition`, so an impossible change (say, ``complete`` back to ``active``) is a bug that
raises instead of a state that silently lies to the readout or to RPC.  Pure.
"""

from __future__ import annotations

from ..base.errors import LocalProtocolError
from ..base.stats import DownloadStatus as S

__all__ = ["TRANSITIONS", "transition"]

# state -> event -> new state
TRANSITIONS: dict[S, dict[str, S]] = {
    S.WAITING: {"start": S.ACTIVE, "pause": S.PAUSED, "remove": S.REMOVED, "fail": S.ERROR},
    S.ACTIVE: {
        "complete": S.COMPLETE,
        "fail": S.ERROR,
        "pause": S.PAUSED,
        "remove": S.REMOVED,
        "stop": S.WAITING,  # interrupted by shutdown: unfinished, resumable (aria2 "INPR")
    },
    S.PAUSED: {"unpause": S.WAITING, "remove": S.REMOVED},
    S.ERROR: {},
    S.COMPLETE: {},
    S.REMOVED: {},
}


def transition(state: S, event: str) -> S:
    """Return the state after ``event``; raise LocalProtocolError if it is not allowed."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise LocalProtocolError(f"download cannot {event!r} while {state.value}") from None
