"""The one error hierarchy of the toolkit.

Every user-facing failure is a ``ToolkitError`` with a one-line message, an optional one-line
hint, and an exit code from the table below (also in the README). Only ``toolkit.cli`` catches
them.

    code  meaning
    0     success (also when the reader of stdout stops early, as `| head` does)
    1     internal error (a bug: please report it)
    2     usage error: a bad option value or combination
    3     input or environment error: an input file is missing or invalid, an output or cache path
          cannot be written (read-only or full disk, name too long), or stdout is closed
    4     a required tool (cross-compiler, QEMU, ...) is not installed
    5     build failure: the compiler or the ELF check failed
    6     run failure: the program under QEMU (or natively) failed
    7     verification failure: output differs from the reference
    8     timed out: the program ran past --timeout and was stopped (what it printed stays printed)
    130   interrupted (Ctrl-C)
"""

from __future__ import annotations


class ToolkitError(Exception):
    """Base of all errors the CLI reports as one line and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ToolkitError):
    exit_code = 2


class InputError(ToolkitError):
    exit_code = 3


class ToolMissingError(ToolkitError):
    exit_code = 4


class BuildError(ToolkitError):
    exit_code = 5


class RunError(ToolkitError):
    exit_code = 6


class VerifyError(ToolkitError):
    exit_code = 7


class RunTimeoutError(RunError):
    """A run failure of its own kind: the program was still running at --timeout and was killed."""

    exit_code = 8


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: please report it)",
    2: "usage error: a bad option value or combination",
    3: "input or environment error: a model, tokenizer, target or other input file is missing or invalid, "
       "or an output or cache path cannot be written (read-only or full disk, name too long), or stdout is closed",
    4: "a required tool (cross-compiler, QEMU) is not installed",
    5: "build failure: the compiler or the ELF check failed",
    6: "run failure: the program failed",
    7: "verification failure: output differs from the reference",
    8: "timed out: the program ran past --timeout and was stopped",
    130: "interrupted",
}
