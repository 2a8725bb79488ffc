"""Full-system output streams: the program's stdout comes over the machine's second serial port
and reaches our stdout while the machine still runs; --timeout cuts a long run, keeps what was
printed, exits 8 and leaves no qemu-system behind."""

from __future__ import annotations

import random
from pathlib import Path

from toolkit.system.kernel import cached_kernel
from toolkit.targets import load_target
from tests.helpers import GoldenCase
from tests.streams import live_processes, read_all, start_cli

CUT_TIMEOUT_S = 8  # from the machine's start: firmware and boot take a few seconds, -n 0 tens more


def test_system_run_streams_and_keeps_its_text_on_timeout(golden: list[GoldenCase], cache: Path) -> None:
    target = load_target("g4")
    assert target.system is not None
    cached_kernel(target, cache)  # built (or taken from the cache) before the timed run
    greedy = next(case for case in golden if case.temperature == 0)
    golden_text = greedy.expected.removesuffix(b"\n")  # the engine ends a finished run with a newline
    machine = str(cache / "system" / "runs").encode()  # in this cache's qemu-system command lines only
    proc = start_cli("run-qemu", "--system", "--target", "g4", "-t", "0", "-s", str(random.randrange(1, 10**6)),
                     "-n", "0", "-i", greedy.prompt, "--timeout", str(CUT_TIMEOUT_S), cache=cache)
    stdout, stderr, machine_at_first_bytes = read_all(
        proc, lambda: live_processes(target.system.command.encode(), machine), timeout=1800)  # type: ignore[union-attr]
    text = stderr.decode(errors="replace")
    assert proc.returncode == 8, text
    assert machine_at_first_bytes, "the first text arrived only after the machine had stopped"
    assert stdout.startswith(greedy.prompt.encode()), stdout
    assert golden_text.startswith(stdout) or stdout.startswith(golden_text), stdout  # greedy: same text
    lines = text.strip().splitlines()
    assert lines[-2].startswith(f"error: the guest timed out after {CUT_TIMEOUT_S} s on g4"), text
    assert lines[-1].startswith("hint: raise --timeout, or lower -n (console log: ")
    assert live_processes(target.system.command.encode(), machine) == []
