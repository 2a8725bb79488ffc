"""The chat on a real terminal (a pty, the program its session leader and foreground group, so
the pty's Ctrl-C is a real SIGINT from the line discipline), README "Options": Ctrl-C during a
reply stops it and the prompt comes back with the conversation kept, Ctrl-C at the prompt ends
it (exit 130), Ctrl-D ends it (exit 0), a message with a NUL byte is refused with one line and
the chat goes on; the engine on the host and on g4 under qemu-ppc, and run-qemu's own terminal
path (no traceback: run-qemu ignores the Ctrl-C the engine handles). And a one-turn chat that
does not fit --ctx is run-qemu's exit 9, with the hint naming --ctx.

The tiny ChatML GGUF's greedy reply to STORY runs near 1000 tokens (random weights rarely reach
<|im_end|>); to be sure the Ctrl-C lands during it, output is first held with Ctrl-S (the
engine blocks writing its next piece), then Ctrl-C (which also restarts the output)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolkit.emulate import command_for
from toolkit.fuzz.tinygguf import write
from toolkit.pipeline import build, convert, open_input

from .conftest import cli, target

CTX = 8192
STORY = b"Tell me a story"
STATS = re.compile(rb"\[(\d+) tokens?, [0-9.]+ tok/s; context (\d+) of (\d+) positions\]")
CTRL_C, CTRL_D, CTRL_S, CTRL_Q = b"\x03", b"\x04", b"\x13", b"\x11"
WAIT = 30.0  # seconds for any one expected output (g4 under QEMU runs the tiny model at ~60 tok/s)


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("chat") / "tiny.gguf", extra={"llama.context_length": CTX})


@pytest.fixture(scope="module")
def engines(cache: Path, gguf: Path) -> dict[str, tuple[Path, Path]]:
    """(engine, converted model) for the host and g4."""
    source = open_input(gguf, None)
    return {name: (build(target(name), cache).engine, convert(source, target(name), cache).path)
            for name in ("host", "g4")}


def _become_terminal_owner() -> None:
    """In the child: a new session whose controlling terminal is the pty (stdin)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class Terminal:
    """A program on a pty: send keys, wait for its output, never hang (every wait has a limit)."""

    proc: subprocess.Popen[bytes]
    master: int
    out: bytearray
    mark: int = 0  # where the next expect() starts looking

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def _read(self, timeout: float) -> int | None:
        """Bytes read within timeout: their count, None when none came, 0 at the end."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return None
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the program has gone and closed the terminal
            chunk = b""
        self.out.extend(chunk)
        return len(chunk)

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = WAIT) -> re.Match[bytes]:
        """Wait for pattern in the output after the mark; the mark moves past it."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        end = time.monotonic() + timeout
        while True:
            found = regex.search(self.out, self.mark)
            if found:
                self.mark = found.end()
                return found
            if time.monotonic() > end or self._read(min(0.1, max(0.0, end - time.monotonic()))) == 0:
                found = regex.search(self.out, self.mark)
                assert found, f"no {regex.pattern!r} in {bytes(self.out[self.mark:])[-2000:]!r}"
                self.mark = found.end()
                return found

    def more_than(self, count: int, timeout: float = WAIT) -> None:
        """Wait until more than count bytes follow the mark."""
        end = time.monotonic() + timeout
        while len(self.out) - self.mark <= count:
            assert time.monotonic() < end and self._read(0.1) != 0, bytes(self.out[self.mark:])

    def exit_status(self, timeout: float = WAIT) -> int:
        """The program's exit status (it must end within timeout), after what it left on the terminal."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(0.05)
        code = self.proc.wait(timeout=1)
        end = time.monotonic() + 5
        while time.monotonic() < end and self._read(0.05):
            pass
        return code

    def stop_the_reply(self) -> None:
        """Hold the output (Ctrl-S: the engine blocks on its next piece), then Ctrl-C, then Ctrl-Q
        (the output restarts in any case)."""
        self.send(CTRL_S)
        time.sleep(0.2)
        self.send(CTRL_C)
        time.sleep(0.05)
        self.send(CTRL_Q)


def terminal(argv: list[str | bytes], env: dict[str, str] | None = None) -> Iterator[Terminal]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            preexec_fn=_become_terminal_owner)
    os.close(slave)
    term = Terminal(proc, master, bytearray())
    try:
        yield term
    finally:
        if proc.poll() is None:  # a failed test: end the program's whole group (run-qemu's engine too)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        os.close(master)


def engine_terminal(engines: dict[str, tuple[Path, Path]], name: str, *options: str) -> Iterator[Terminal]:
    engine, model = engines[name]
    return terminal(command_for(target(name), engine, [str(model), "-m", "chat", "-t", "0", "-c", str(CTX),
                                                       *options]))


def reply_stats(term: Terminal) -> tuple[int, int]:
    """(tokens, context) from the stats line after a reply."""
    found = term.expect(STATS)
    assert int(found.group(3)) == CTX  # the run's context (-c), not the model's
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("name", ["host", "g4"])
def test_ctrl_c_stops_a_reply_and_the_conversation_goes_on(engines: dict[str, tuple[Path, Path]], name: str) -> None:
    """A reply stopped by Ctrl-C: the prompt again, the context grown by the turn; the next turn
    grows it further (the conversation was kept); Ctrl-C at the empty prompt: exit 130."""
    for term in engine_terminal(engines, name, "-n", "2000" if name == "host" else "200"):
        term.expect(b"> ")
        term.send(STORY + b"\n")
        term.expect(STORY + b"\r\n")
        term.more_than(0)  # the reply has begun
        term.stop_the_reply()
        term.expect(b"[reply stopped]")
        tokens, first = reply_stats(term)
        assert 0 < tokens < 900 and first > tokens
        term.expect(b"> ")
        term.send(b"what next\n")
        tokens, second = reply_stats(term)
        assert b"[reply stopped]" not in term.out[term.mark:]
        assert second > first + tokens - 1  # the turn's template and reply, after the first turn's
        term.expect(b"> ")
        term.send(CTRL_C)
        assert term.exit_status() == 130
        assert b"peak engine memory" in term.out  # the engine's own way out, not a kill


@pytest.mark.parametrize("name", ["host", "g4"])
def test_a_nul_message_is_refused_and_ctrl_d_ends(engines: dict[str, tuple[Path, Path]], name: str) -> None:
    """A message with a NUL byte: one line, no turn (the next reply's context starts from 0),
    the prompt again; Ctrl-D at the prompt: exit 0."""
    for term in engine_terminal(engines, name, "-n", "8"):
        term.expect(b"> ")
        term.send(b"a\x00b\n")
        term.expect(b"error: the message contains a NUL byte")
        term.expect(b"> ")
        assert STATS.search(term.out) is None
        term.send(b"hi\n")
        tokens, context = reply_stats(term)
        assert 0 < tokens <= 8 and context < 80  # one short turn: the refused message never ran
        term.expect(b"> ")
        term.send(CTRL_D)
        assert term.exit_status() == 0


def test_run_qemu_chat_on_a_terminal(gguf: Path, cache: Path) -> None:
    """run-qemu --chat with the terminal as stdin: Ctrl-C during a reply returns to the prompt
    and the next message gets its reply (run-qemu, which gets the Ctrl-C too, lives on), Ctrl-C
    at the prompt ends it with 130 and no traceback."""
    env = dict(os.environ, PPC_LLM_CACHE=str(cache))
    argv: list[str | bytes] = [sys.executable, "-m", "toolkit", "run-qemu", "--target", "host", "--chat", "-c",
                               str(gguf), "-t", "0", "-n", "2000", "--ctx", str(CTX)]
    for term in terminal(argv, env):
        term.expect(b"> ", timeout=120)  # a cold cache converts the model and builds the engine
        term.send(STORY + b"\n")
        term.expect(STORY + b"\r\n")
        term.more_than(0)
        term.stop_the_reply()
        term.expect(b"[reply stopped]")
        reply_stats(term)
        term.expect(b"> ")
        time.sleep(0.5)  # past subprocess's 0.25 s grace after a KeyboardInterrupt in run-qemu (the bug)
        assert term.proc.poll() is None
        term.send(b"what next\n")
        reply_stats(term)
        term.expect(b"> ")
        term.send(CTRL_C)
        assert term.exit_status() == 130
        assert b"Traceback" not in term.out and b"error:" not in term.out, bytes(term.out[-2000:])


def test_a_turn_that_does_not_fit_is_exit_9(gguf: Path, cache: Path) -> None:
    result = cli("run-qemu", "--target", "host", "--chat", "-c", str(gguf), "-i", "hello", "--ctx", "2",
                 cache_dir=cache, timeout=300)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 9, stderr
    assert "error: the conversation has filled the context (0 of 2 positions)" in stderr
    assert "(this model has 8192)" in stderr  # the model's own context, not the run's
    assert "hint: allow more positions with --ctx N" in stderr and "Traceback" not in stderr


def test_a_full_context_on_a_terminal_is_exit_9(gguf: Path, cache: Path) -> None:
    """The same in a conversation: the engine's line on the terminal, then run-qemu's with the hint."""
    env = dict(os.environ, PPC_LLM_CACHE=str(cache))
    argv: list[str | bytes] = [sys.executable, "-m", "toolkit", "run-qemu", "--target", "host", "--chat", "-c",
                               str(gguf), "-t", "0", "--ctx", "40"]
    for term in terminal(argv, env):
        term.expect(b"> ", timeout=120)
        term.send(b"hello\n")  # the template and the message alone are more than 40 positions
        term.expect(b"error: the conversation has filled the context (0 of 40 positions)")
        assert term.exit_status() == 9
        assert b"hint: allow more positions with --ctx N" in term.out and b"Traceback" not in term.out
