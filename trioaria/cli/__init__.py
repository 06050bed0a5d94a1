"""The command line: options, help, console readout, input files.

``main`` is imported lazily so that ``trioaria --version`` and ``-h`` do not pay for trio, ssl and
the protocol drivers (issue 15: start-up time).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

__all__ = ["main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``trioaria`` command (see :func:`trioaria.cli.app.main`)."""
    from .app import main as run

    return run(argv)


def run() -> NoReturn:
    """The ``trioaria`` console script and ``python -m trioaria``: :func:`main`, then exit.

    Everything the run wrote is on disk or flushed by then, so the interpreter is left with
    :func:`os._exit` after the standard streams are flushed and the ``atexit`` hooks (logging's
    among them) have run: tearing down the modules and objects would cost ~8 ms for nothing
    (docs/performance.md "Start-up").  Still-running non-daemon threads, a stream that cannot
    be flushed (a closed pipe), or a profiler or tracer (``python -m cProfile -m trioaria``,
    coverage), take the ordinary way out.
    """
    try:
        code = main()
    except BrokenPipeError:
        # the reader of standard output went away (``trioaria -h | head -1``): leave quietly,
        # as aria2 does (killed by SIGPIPE; a shell reports 128 + 13)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 128 + 13
    _leave(code)


def _leave(code: int) -> NoReturn:
    import atexit
    import threading

    if sys.gettrace() is not None or sys.getprofile() is not None:
        raise SystemExit(code)  # a profiler or coverage tool writes its data after we return
    me = threading.current_thread()
    if any(t is not me and t.is_alive() and not t.daemon for t in threading.enumerate()):
        raise SystemExit(code)
    run_hooks = getattr(atexit, "_run_exitfuncs", None)
    if run_hooks is None:
        raise SystemExit(code)
    run_hooks()  # runs each hook once: the ordinary exit below does not run them again
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    os._exit(code)
