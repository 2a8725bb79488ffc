"""Interruption: SIGTERM (and SIGHUP) end the toolkit the way Ctrl-C does, so every ``except
BaseException`` / ``finally`` that removes a temporary file or directory runs and the previous
output stays; the swap of a finished output into place is never cut in half.

``PPC_LLM_TEST_FAULT=POINT:SIGNAL`` (tests only) sends SIGNAL (INT, TERM) to the toolkit itself
when it reaches POINT, ``POINT:ENOSPC`` fails there as a full disk would, and ``POINT:STOP`` prints
``fault point POINT reached`` on stderr and waits there forever (for a test to SIGKILL it). The
points are ``write`` (a temporary file written, not yet renamed), ``stage`` (a locked staging
folder just made, toolkit/fsutil.py) and ``publish`` (a finished directory about to replace the old
one). That makes "interrupted mid-run" tests deterministic.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

FAULT_ENV = "PPC_LLM_TEST_FAULT"
_SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt (SIGINT already does)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM / SIGHUP until the block is done (a two-step rename, say)."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def fault_point(name: str) -> None:
    """The test hook (see the module's doc): nothing unless $PPC_LLM_TEST_FAULT names this point."""
    spec = os.environ.get(FAULT_ENV, "")
    point, _, action = spec.partition(":")
    if point != name:
        return
    if action == "ENOSPC":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if action in _SIGNALS:
        os.kill(os.getpid(), _SIGNALS[action])
    if action == "STOP":
        print(f"fault point {name} reached", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
