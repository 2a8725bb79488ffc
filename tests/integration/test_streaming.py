"""Output streams with real processes: ``pump`` hands output on while the program still runs and
kills the whole process group at the deadline; ``ppc-llm run-qemu`` shows the engine's text while
QEMU still runs, keeps it when --timeout cuts the run (exit 8, no QEMU left), stops quietly when
its stdout's reader goes away, and still verifies the copy it kept."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from toolkit.emulate.stream import pump
from toolkit.pipeline import build, convert, open_input
from toolkit.targets import load_target
from tests.helpers import GoldenCase
from tests.streams import live_processes, read_all, start_cli

# -n 0: the whole context (512 positions of stories260K), tens of seconds under qemu-ppc
CUT_TIMEOUT_S = 4


@pytest.fixture(scope="module")
def g4_ready(cache: Path, bundled_model_paths: tuple[Path, Path]) -> None:
    """The g4 engine and model in the cache, so the runs below time the engine only."""
    checkpoint, tokenizer = bundled_model_paths
    target = load_target("g4")
    build(target, cache)
    convert(open_input(checkpoint, tokenizer), target, cache)


def test_pump_hands_output_on_while_the_program_runs(tmp_path: Path) -> None:
    """The child waits for a file that only the sink, given its first line, creates: a pump that
    held the output until the end would deadlock and hit its deadline."""
    flag = tmp_path / "seen"
    script = textwrap.dedent(f"""
        import os, sys, time
        print("first", flush=True)
        print("note", file=sys.stderr, flush=True)
        end = time.monotonic() + 60
        while not os.path.exists({str(flag)!r}) and time.monotonic() < end:
            time.sleep(0.02)
        print("second" if os.path.exists({str(flag)!r}) else "never seen")
    """)
    outs: list[bytes] = []
    errs: list[bytes] = []

    def sink(chunk: bytes) -> None:
        outs.append(chunk)
        flag.touch()

    ran = pump([sys.executable, "-c", script], 120, sink, errs.append)
    assert ran.returncode == 0
    assert ran.stdout == b"first\nsecond\n" == b"".join(outs) and b"second" not in outs[0]
    assert ran.stderr == b"note\n" == b"".join(errs)


def test_pump_kills_the_process_group_at_the_deadline() -> None:
    """A program that started a child of its own and never ends: both are gone after the deadline,
    and what it printed is kept."""
    script = textwrap.dedent("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print(child.pid, flush=True)
        time.sleep(300)
    """)
    start = time.monotonic()
    ran = pump([sys.executable, "-c", script], 3)
    assert ran.returncode is None and time.monotonic() - start < 60
    grandchild = int(ran.stdout.split()[0])
    for _ in range(100):  # reaped by whoever adopted it
        if not Path(f"/proc/{grandchild}/cmdline").exists() or not Path(f"/proc/{grandchild}/cmdline").read_bytes():
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the program's own child {grandchild} survived the deadline")


def test_timeout_keeps_the_text_printed_so_far(g4_ready: None, golden: list[GoldenCase], cache: Path) -> None:
    """--timeout cuts a long greedy run: the text arrived while QEMU ran, stays printed (a prefix of
    the golden greedy text), exit 8, and no QEMU is left."""
    greedy = next(case for case in golden if case.temperature == 0)
    golden_text = greedy.expected.removesuffix(b"\n")  # the engine ends a finished run with a newline
    seed = random.randrange(10**8, 10**9)  # marks this run's QEMU among the machine's processes
    marker = b"\0-s\0%d\0" % seed
    proc = start_cli("run-qemu", "--target", "g4", "-t", "0", "-s", str(seed), "-n", "0", "-i", greedy.prompt,
                     "--timeout", str(CUT_TIMEOUT_S), cache=cache)
    stdout, stderr, qemu_at_first_bytes = read_all(proc, lambda: live_processes(b"qemu-ppc", marker))
    text = stderr.decode(errors="replace")
    assert proc.returncode == 8, text
    assert qemu_at_first_bytes, "the first text arrived only after QEMU had exited"
    assert stdout.startswith(greedy.prompt.encode()), stdout  # something was printed before the cut
    # greedy: the first 256 positions of -n 0 are the golden 256-position text
    assert golden_text.startswith(stdout) or stdout.startswith(golden_text), stdout
    lines = text.strip().splitlines()
    assert lines[-2] == f"error: ppcllm timed out after {CUT_TIMEOUT_S} s on g4 and was stopped", text
    assert lines[-1].startswith("hint: raise --timeout") and "Traceback" not in text
    assert live_processes(b"qemu-ppc", marker) == []


def test_closed_stdout_stops_the_engine_quietly(g4_ready: None, cache: Path) -> None:
    """`ppc-llm run-qemu ... | head -c 10`: the reader goes away, the engine is stopped before its
    end, no traceback, exit 0."""
    seed = random.randrange(10**8, 10**9)
    marker = b"\0-s\0%d\0" % seed
    proc = start_cli("run-qemu", "--target", "g4", "-t", "0", "-s", str(seed), "-n", "0", "-i", "Once upon a time",
                     cache=cache)
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(10)
    proc.stdout.close()  # as `head -c 10` does
    stderr = proc.stderr.read()
    proc.wait(120)
    text = stderr.decode(errors="replace")
    assert head == b"Once upon "
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "error:" not in text
    assert "achieved tok/s" not in text  # the engine's end-of-run line: it was stopped first
    assert live_processes(b"qemu-ppc", marker) == []


def test_verify_checks_the_streamed_copy(golden: list[GoldenCase], cache: Path) -> None:
    case = golden[0]
    env = dict(os.environ, PPC_LLM_CACHE=str(cache))
    result = subprocess.run([sys.executable, "-m", "toolkit", "run-qemu", "--target", "host", *case.engine_args(),
                             "--verify"], capture_output=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected  # each byte once
    assert b"verified: " in result.stderr
