"""How the engine's failures reach the toolkit's exit codes (no processes): its exit 3 (the
context is full) is ContextFullError (exit 9) with the engine's own line and a hint naming --ctx,
its exit 2 a UsageError with its line, anything else a RunError; and a chat on the terminal
(``run_interactive``) leaves Ctrl-C to the engine: this process does nothing on SIGINT while the
child runs and has its own handler back after."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from toolkit import emulate, pipeline
from toolkit.errors import EXIT_CODES, ContextFullError, RunError, UsageError
from toolkit.targets import load_target

HOST = load_target("host")
FULL = (b"[12 tokens, 3.00 tok/s; context 40 of 48 positions]\n"
        b"error: the conversation has filled the context (48 of 48 positions): start a new one, or allow more "
        b"with -c (this model has 8192)\n")


def test_context_full_is_exit_9_with_the_engines_line_and_a_ctx_hint() -> None:
    err = pipeline.program_failure("the engine", HOST, 3, FULL)
    assert isinstance(err, ContextFullError) and isinstance(err, RunError)
    assert err.exit_code == 9 and 9 in EXIT_CODES
    assert err.message == ("the conversation has filled the context (48 of 48 positions): start a new one, or "
                           "allow more with -c (this model has 8192)")
    assert err.hint is not None and "--ctx N" in err.hint


def test_context_full_without_stderr_still_says_so() -> None:
    """A conversation on the terminal: the engine's line went to the terminal, not to us."""
    err = pipeline.program_failure("the engine", HOST, 3, b"")
    assert isinstance(err, ContextFullError) and "context is full" in err.message and "--ctx" in (err.hint or "")


def test_engine_usage_is_a_usage_error_with_its_line() -> None:
    err = pipeline.program_failure("the engine", HOST, 2, b"error: -K -1: top-k must be an integer in [0, 2147483647]\n")
    assert type(err) is UsageError and err.exit_code == 2
    assert err.message == "-K -1: top-k must be an integer in [0, 2147483647]"


@pytest.mark.parametrize("code", [1, 4, 127, 134, -11])
def test_other_codes_stay_run_errors(code: int) -> None:
    err = pipeline.program_failure("the engine", HOST, code, b"error: cannot open model.bin\n")
    assert type(err) is RunError and err.exit_code == 6
    assert err.message == f"the engine failed on host (exit status {code}): error: cannot open model.bin"


def test_run_interactive_leaves_ctrl_c_to_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the child runs, SIGINT (the terminal's Ctrl-C reaches the whole group) does nothing
    here; the child's 130 is returned as it is; the previous handler is back after."""
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    def fake_run(argv: list[str], check: bool) -> subprocess.CompletedProcess[bytes]:
        assert signal.getsignal(signal.SIGINT) not in (previous, signal.default_int_handler, signal.SIG_IGN)
        os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C, delivered to us too
        return subprocess.CompletedProcess(argv, 130)

    def fake_command_for(target: Any, binary: Path, args: list[str | bytes]) -> list[str | bytes]:
        return [str(binary), *args]

    monkeypatch.setattr(subprocess, "run", fake_run)  # the module toolkit.emulate calls
    monkeypatch.setattr(emulate, "command_for", fake_command_for)
    monkeypatch.setattr(emulate, "echo", lambda argv: None)
    old = signal.signal(signal.SIGINT, previous)
    try:
        assert emulate.run_interactive(HOST, Path("ppcllm"), ["model.bin", "-m", "chat"]) == 130
        assert signal.getsignal(signal.SIGINT) is previous
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == []  # the Ctrl-C during the child never reached the previous handler
