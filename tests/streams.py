"""Helpers of the streaming tests (tests/integration/test_streaming.py, tests/system): run the
CLI with its stdout and stderr read as they come, and find a run's live processes."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def live_processes(*needles: bytes) -> list[int]:
    """Pids of running processes whose command line holds every needle (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if all(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


def start_cli(*args: str, cache: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PPC_LLM_CACHE=str(cache))
    return subprocess.Popen([sys.executable, "-m", "toolkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def read_all(proc: subprocess.Popen[bytes], on_first_stdout: Callable[[], object] | None = None,
             timeout: float = 600) -> tuple[bytes, bytes, object]:
    """Both pipes to their end; ``on_first_stdout()`` is called when stdout's first bytes arrive
    and its answer returned."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    answer: object = None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, out)
        selector.register(proc.stderr, selectors.EVENT_READ, err)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                if key.data is out and not out and on_first_stdout is not None:
                    answer = on_first_stdout()
                key.data.extend(chunk)
    proc.wait(max(1.0, deadline - time.monotonic()))
    return bytes(out), bytes(err), answer
