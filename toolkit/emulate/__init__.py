"""Running a built program: user-mode QEMU for emulated targets, directly for the host.

``run_user`` keeps the program's stdout and stderr as bytes and, given sinks, also passes them on
as they arrive (``stream.py``): ``ppc-llm run-qemu`` shows the text while it is generated."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..cmd import echo, require_tool
from ..errors import RunTimeoutError
from ..targets import Target
from .stream import Sink, StdoutClosed, pump, silence_stdout, to_stderr, to_stdout


@dataclass(frozen=True)
class RunResult:
    stdout: bytes
    stderr: bytes
    returncode: int
    wall_s: float


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
    """Run ``binary`` for ``target`` with this terminal as its stdin, stdout and stderr (a chat)."""
    argv = command_for(target, binary, args)
    echo([a if isinstance(a, str) else a.decode("utf-8", "backslashreplace") for a in argv])
    return subprocess.run(argv, check=False).returncode


__all__ = ["RunResult", "Sink", "StdoutClosed", "command_for", "run_interactive", "run_user", "silence_stdout",
           "to_stderr", "to_stdout"]
