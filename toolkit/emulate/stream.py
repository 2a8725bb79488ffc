"""Running a program with its output passed on as it arrives, and a copy kept.

``pump`` reads the program's stdout and stderr pipes with ``os.read`` in chunks as soon as either
has bytes, hands each chunk to a sink (the CLI's write our stdout / stderr and flush) and keeps
every byte for the caller (``--verify`` compares the copy afterwards). The program runs in a
process group of its own; on a timeout, an interruption or a sink that fails, the whole group is
killed, so no QEMU and no child of it is left behind.

A closed stdout (``ppc-llm run-qemu ... | head -c 10``: the reader went away) is ``StdoutClosed``:
the CLI stops the run and exits quietly.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHUNK = 65536
Sink = Callable[[bytes], None]


class StdoutClosed(Exception):
    """Our stdout's reader went away: nothing more can be shown, so the run is stopped."""


@dataclass(frozen=True)
class Pumped:
    stdout: bytes
    stderr: bytes
    returncode: int | None  # None: still running at the deadline, and killed
    wall_s: float


def to_stdout(chunk: bytes) -> None:
    """A sink: the bytes on our stdout at once (the program's text, byte for byte)."""
    try:
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise StdoutClosed() from None


def to_stderr(chunk: bytes) -> None:
    """A sink: the bytes on our stderr at once; a closed stderr loses them, the run goes on."""
    try:
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
    except BrokenPipeError:
        pass


def silence_stdout() -> None:
    """After ``StdoutClosed``: point fd 1 at the null device, so that Python's final flush of what
    is still buffered cannot fail (the recipe of Python's ``signal`` documentation, SIGPIPE note)."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


def pump(argv: Sequence[str | bytes], timeout: float, out: Sink | None = None, err: Sink | None = None) -> Pumped:
    """Run ``argv`` (stdin inherited) for at most ``timeout`` seconds, passing its stdout to
    ``out`` and its stderr to ``err`` chunk by chunk as they arrive."""
    start = time.monotonic()
    deadline = start + timeout
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = bytearray(), bytearray()
    kept = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr}
    sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    returncode: int | None = None
    try:
        if _drain(kept, sinks, deadline):
            returncode = _wait(proc, deadline)
    finally:
        if returncode is None:
            _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    return Pumped(bytes(stdout), bytes(stderr), returncode, time.monotonic() - start)


def _drain(kept: dict[int, bytearray], sinks: dict[int, Sink | None], deadline: float) -> bool:
    """Read the pipes until both are closed (True) or the deadline passes (False)."""
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                kept[key.fd] += chunk
                sink = sinks[key.fd]
                if sink is not None:
                    sink(chunk)
    return True


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """The exit status once the pipes are closed, or None if it is still running at the deadline."""
    try:
        return proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the program's process group (before reaping its leader: the group id is still ours)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
