"""Running a built program: one emulator interface over user mode and full-system mode.

``Emulator.run(engine, args, timeout, out, err)`` runs the engine with its arguments
(``EngineArgs``) and returns one ``RunResult``: stdout and stderr as bytes, the exit status, the
wall time, and the guest's figures when the run had a guest (full-system mode). Given sinks, the
output is also passed on as it arrives (``stream.py``): ``ppc-llm run-qemu`` shows the text while
it is generated. ``UserMode`` is here (user-mode QEMU for emulated targets, directly for the
host); ``SystemMode`` is in ``toolkit/system``. ``run_user`` is the plain user-mode run of any
program (the kernel tests, a raw argv)."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from ..cmd import echo, require_tool
from ..errors import RunTimeoutError
from ..targets import Target
from .args import EngineArgs
from .stream import Sink, StdoutClosed, pump, silence_stdout, to_stderr, to_stdout


@dataclass(frozen=True)
class GuestFigures:
    """What a full-system guest reports about the run."""

    peak_rss_kib: int     # the program's peak resident memory (wait4's ru_maxrss)
    program_ms: int       # the program's wall time inside the guest
    mem_total_kib: int    # the memory the guest kernel saw (MemTotal)
    boot_ms: int          # from the kernel's start to the program's (CLOCK_MONOTONIC in the guest)
    machine_s: float      # from `cont` to power-off: firmware, boot, run, shutdown


@dataclass(frozen=True)
class RunResult:
    stdout: bytes
    stderr: bytes
    returncode: int
    wall_s: float
    guest: GuestFigures | None = None  # full-system runs only


class Emulator(Protocol):
    """Where an engine runs for a target: ``UserMode`` or ``toolkit.system.SystemMode``."""

    @property
    def target(self) -> Target:
        ...

    def run(self, engine: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
            err: Sink | None = None) -> RunResult:
        """Run ``engine`` with ``args``; past ``timeout`` seconds RunTimeoutError (after whatever
        the sinks were already given)."""
        ...


@dataclass(frozen=True)
class UserMode:
    """User-mode QEMU (with any extra emulator options, such as a plugin), or the host itself."""

    target: Target
    emulator_args: tuple[str, ...] = ()

    def run(self, engine: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
            err: Sink | None = None) -> RunResult:
        return run_user(self.target, engine, args.argv(), timeout, list(self.emulator_args), out=out, err=err)

    def interactive(self, engine: Path, args: EngineArgs) -> int:
        """Run with this terminal as the engine's stdin, stdout and stderr (a chat); its exit status."""
        return run_interactive(self.target, engine, args.argv())


def command_for(target: Target, binary: Path, args: list[str | bytes],
                emulator_args: list[str] | None = None) -> list[str | bytes]:
    """The argv that runs ``binary`` for ``target``: under its emulator (with any extra emulator
    options, such as a plugin), or directly."""
    if target.emulator is None:
        return [str(binary), *args]
    emulator = require_tool(target.emulator.command, target.emulator.package)
    return [emulator, *target.emulator.args, *(emulator_args or []), str(binary), *args]


def run_user(target: Target, binary: Path, args: list[str | bytes], timeout: float,
             emulator_args: list[str] | None = None, *, out: Sink | None = None,
             err: Sink | None = None) -> RunResult:
    """Run ``binary`` for ``target`` in user mode, keeping stdout and stderr as bytes and handing
    each chunk to ``out`` / ``err`` as it arrives. Past ``timeout`` seconds the program (and its
    QEMU) is killed: RunTimeoutError, after whatever the sinks were already given."""
    argv = command_for(target, binary, args, emulator_args)
    echo([a if isinstance(a, str) else a.decode("utf-8", "backslashreplace") for a in argv])
    ran = pump(argv, timeout, out, err)
    if ran.returncode is None:
        raise RunTimeoutError(f"{binary.name} timed out after {timeout:g} s on {target.name} and was stopped",
                              "raise --timeout, or lower -n")
    return RunResult(ran.stdout, ran.stderr, ran.returncode, ran.wall_s)


def run_interactive(target: Target, binary: Path, args: list[str | bytes]) -> int:
    """Run ``binary`` for ``target`` with this terminal as its stdin, stdout and stderr (a chat).
    The terminal's Ctrl-C reaches the whole foreground group; while the program runs, this
    process ignores it (a do-nothing handler, the previous one restored after), so that only the
    program acts on it: a reply stopped, or the conversation ended (its exit 130)."""
    argv = command_for(target, binary, args)
    echo([a if isinstance(a, str) else a.decode("utf-8", "backslashreplace") for a in argv])
    with _sigint_to_child():
        return subprocess.run(argv, check=False).returncode


@contextmanager
def _sigint_to_child() -> Iterator[None]:
    """SIGINT does nothing here for the duration (a handler, not SIG_IGN: the child's SIGINT
    stays at its default, as a handler is reset across exec and an ignored signal is not)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a test's worker thread, say)
        return
    previous = signal.signal(signal.SIGINT, _ignore_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _ignore_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame


__all__ = ["Emulator", "EngineArgs", "GuestFigures", "RunResult", "Sink", "StdoutClosed", "UserMode", "command_for",
           "run_interactive", "run_user", "silence_stdout", "to_stderr", "to_stdout"]
