"""Running a built program: user-mode QEMU for emulated targets, directly for the host."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..cmd import echo, require_tool
from ..errors import RunError
from ..targets import Target


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
             emulator_args: list[str] | None = None) -> RunResult:
    """Run ``binary`` for ``target`` in user mode, capturing stdout and stderr as bytes."""
    argv = command_for(target, binary, args, emulator_args)
    echo([a if isinstance(a, str) else a.decode("utf-8", "backslashreplace") for a in argv])
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RunError(f"{binary.name} did not finish within {timeout:.0f} s on {target.name}",
                       "raise --timeout, or lower -n") from None
    return RunResult(proc.stdout, proc.stderr, proc.returncode, time.monotonic() - start)


def run_interactive(target: Target, binary: Path, args: list[str | bytes]) -> int:
    """Run ``binary`` for ``target`` with this terminal as its stdin, stdout and stderr (a chat)."""
    argv = command_for(target, binary, args)
    echo([a if isinstance(a, str) else a.decode("utf-8", "backslashreplace") for a in argv])
    return subprocess.run(argv, check=False).returncode
