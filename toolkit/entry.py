"""The `ppc-llm` entry point: signals are handled before anything heavy is imported.

Importing the CLI (typer, numpy, jinja2, gguf) takes a moment; a Ctrl-C, SIGTERM or SIGHUP in
that moment ends the program with "interrupted" and exit status 130, never a traceback. Once the
CLI is loaded, ``toolkit.cli.main`` installs its own handlers (which clean up temporary files).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

INTERRUPTED = 130


def _quit(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(INTERRUPTED)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _quit)
    if os.environ.get("PPC_LLM_TEST_FAULT") == "startup:STOP":  # tests: a signal during start-up
        os.write(2, b"startup\n")
        signal.pause()
    from .cli import main as cli_main

    cli_main()
    sys.exit(0)
