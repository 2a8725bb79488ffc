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
    9     the context is full: a chat turn (or a prompt) no longer fits the run's context (--ctx)
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
    """Exit 2: the command line cannot be acted on (an option's value out of range, a bad
    combination); the hint says what to type instead."""

    exit_code = 2


class InputError(ToolkitError):
    """Exit 3: a file the user gave is missing, damaged or the wrong kind, or a path cannot be
    written. Messages name the file and, where one is known, the byte offset of the fault;
    the hint says how to get or make a good file."""

    exit_code = 3


class ToolMissingError(ToolkitError):
    """Exit 4: a tool the command runs is not installed (or no container engine answers); the
    hint says how to get it."""

    exit_code = 4


class BuildError(ToolkitError):
    """Exit 5: the generated C did not compile or link, or the ELF check or ISA audit of the
    result failed (a bug in ppc-llm or a profile, never the user's doing)."""

    exit_code = 5


class RunError(ToolkitError):
    """Exit 6: the built program failed, under QEMU or natively."""

    exit_code = 6


class VerifyError(ToolkitError):
    """Exit 7 (``--verify``): the program printed other text than the NumPy reference, at a
    step where no near-tie explains it; the message shows the step and both texts."""

    exit_code = 7


class RunTimeoutError(RunError):
    """A run failure of its own kind: the program was still running at --timeout and was killed."""

    exit_code = 8


class ContextFullError(RunError):
    """A run failure of its own kind: the engine's context (``--ctx``) is full (the engine's
    exit 3), a chat turn or a prompt that no longer fits; the hint says how to allow more."""

    exit_code = 9


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
    9: "the context is full: a chat turn (or a prompt) no longer fits the run's context (--ctx)",
    130: "interrupted",
}
