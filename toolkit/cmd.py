"""Running external tools: check they exist, echo the command on stderr, capture the result."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ToolMissingError


def require_tool(command: str, package: str) -> str:
    """The tool's full path, or a ToolMissingError naming the apt package that installs it."""
    found = shutil.which(command)
    if found is None:
        raise ToolMissingError(f"'{command}' is not installed", f"install it with: sudo apt-get install {package}")
    return found


def echo(argv: Sequence[str | Path]) -> None:
    print("+ " + shlex.join(str(a) for a in argv), file=sys.stderr, flush=True)


def run(argv: Sequence[str | Path], *, cwd: Path | None = None, timeout: float | None = None,
        quiet: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run argv with stdout and stderr captured (bytes); the caller judges the exit status."""
    if not quiet:
        echo(argv)
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, timeout=timeout, check=False)
