"""Where the toolchain's commands run (the compiler, the linker, objdump): on the host, or inside
a container (toolkit/container.py). This is the build side's executor; where a built engine runs
is the emulator interface (toolkit/emulate: user mode, toolkit/system: full-system mode).

Both take the same argv (absolute paths are the same inside a container, which mounts the work
directory at its own path) and return the captured result; the caller judges the exit status.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .cmd import require_tool, run

TOOLCHAINS = ("host", "docker")


class Runner(Protocol):
    name: str

    def which(self, tool: str, package: str) -> str:
        """The tool's path where the commands run, or ToolMissingError naming its package."""
        ...

    def run(self, argv: Sequence[str | Path], *, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
        ...


class HostRunner:
    name = "host"

    def which(self, tool: str, package: str) -> str:
        return require_tool(tool, package)

    def run(self, argv: Sequence[str | Path], *, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
        return run(argv, cwd=cwd, quiet=quiet)


HOST_RUNNER = HostRunner()
