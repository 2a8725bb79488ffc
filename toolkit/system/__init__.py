"""Full-system runs: boot the target's machine under qemu-system with a guest kernel and a minimal
initramfs whose /init runs the engine, and return the same result as a user-mode run plus the
guest's figures (peak memory, time)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..cmd import require_tool
from ..emulate import RunResult
from ..errors import RunError
from ..targets import System, Target
from . import initramfs
from .guest import cached_init
from .kernel import Kernel, cached_kernel, system_of
from .machine import Machine

MARK = b"ppcllm-init: "
_RESULT = re.compile(rb"ppcllm-init: result exit=(-?\d+) signal=(\d+) maxrss_kib=(-?\d+) wall_ms=(-?\d+) "
                     rb"mem_total_kib=(-?\d+) boot_ms=(-?\d+)")
_PANIC = re.compile(rb"Kernel panic[^\r\n]*")
GUEST_DIR = "ppcllm"


@dataclass(frozen=True)
class GuestFigures:
    peak_rss_kib: int     # the program's peak resident memory (wait4's ru_maxrss)
    program_ms: int       # the program's wall time inside the guest
    mem_total_kib: int    # the memory the guest kernel saw (MemTotal)
    boot_ms: int          # from the kernel's start to the program's (CLOCK_MONOTONIC in the guest)
    machine_s: float      # from `cont` to power-off: firmware, boot, run, shutdown


@dataclass(frozen=True)
class SystemResult:
    run: RunResult
    figures: GuestFigures
    kernel: Kernel


def qemu_argv(target: Target, system: System, kernel: Path, initrd: Path, console_log: Path,
              channel_out: Path) -> list[str]:
    """The qemu-system command line (without -S and -qmp, which the Machine adds)."""
    qemu = require_tool(system.command, system.package)
    cmdline = ["quiet", f"console={system.console}", "panic=-1", *system.cmdline]
    return [qemu, *system.args, "-m", str(target.ram_mib), "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", " ".join(cmdline), "-display", "none", "-monitor", "none", "-nic", "none",
            "-serial", f"file:{console_log}", "-serial", f"file:{channel_out}", "-no-reboot", "-no-shutdown"]


def guest_entries(init: Path, engine: Path, model: Path, args: list[str | bytes], channel: str) -> list[initramfs.Entry]:
    """The initramfs: /init, the engine, the model, its arguments (NUL-separated) and the channel."""
    model_in_guest = f"/{GUEST_DIR}/model/{model.name}"  # its own folder: any name is safe
    argv = [f"/{GUEST_DIR}/engine".encode(), model_in_guest.encode()]
    argv += [a if isinstance(a, bytes) else a.encode("utf-8", "surrogateescape") for a in args]
    E = initramfs.Entry
    return [E.directory("dev"), E.char_device("dev/console", 5, 1), E.directory("proc"), E.directory("sys"),
            E.directory("tmp"), E.directory(GUEST_DIR), E.directory(f"{GUEST_DIR}/model"),
            E.file("init", init, executable=True), E.file(f"{GUEST_DIR}/engine", engine, executable=True),
            E.file(model_in_guest[1:], model),
            E.file(f"{GUEST_DIR}/argv", b"".join(a + b"\0" for a in argv)),
            E.file(f"{GUEST_DIR}/channel", f"/dev/{channel}\n".encode())]


def program_stderr(console: bytes) -> bytes:
    """What the program wrote to stderr: the console between /init's start and result lines."""
    start = console.find(MARK + b"start")
    if start < 0:
        return b""
    start = console.find(b"\n", start) + 1
    end = console.find(MARK + b"result", start)
    text = console[start:end if end >= 0 else len(console)].replace(b"\r\n", b"\n")
    return text[:-1] if text.endswith(b"\n\n") else text


def parse_report(console: bytes) -> tuple[int, int, GuestFigures] | None:
    """(exit status, signal, figures without machine time) from /init's result line, if there is one."""
    match = _RESULT.search(console)
    if match is None:
        return None
    code, sig, rss, ms, total, boot = (int(g) for g in match.groups())
    return code, sig, GuestFigures(rss, ms, total, boot, 0.0)


def diagnose(target: Target, console: bytes, reason: str | None, timeout: float) -> str:
    """The one-line reason a guest gave no report: panic, timeout, or a missing marker."""
    panic = _PANIC.search(console)
    if panic:
        return f"the guest kernel panicked on {target.name}: {panic.group(0).decode(errors='replace').strip()}"
    init_error = re.search(rb"ppcllm-init: error: ([^\r\n]*)", console)
    if init_error:
        return f"the guest's /init failed on {target.name}: {init_error.group(1).decode(errors='replace')}"
    if reason is None:
        return f"the guest did not power off within {timeout:.0f} s on {target.name}"
    if MARK + b"start" not in console:
        return f"the guest powered off ({reason}) before /init started the engine on {target.name}"
    return f"the guest powered off ({reason}) without /init's result line on {target.name}"


def run_system(target: Target, engine: Path, model: Path, args: list[str | bytes], timeout: float,
               cache: Path) -> SystemResult:
    """Boot ``target``'s machine, run ``engine model args`` as the guest's only program, power off."""
    system = system_of(target)
    kernel = cached_kernel(target, cache)
    init = cached_init(target, cache)
    with Machine([], f"{target.name}-system", cache / "system" / "runs") as machine:
        initrd, console_log, channel_out = (machine.workdir / n for n in ("initramfs.cpio", "console.log", "stdout.bin"))
        initramfs.write_file(initrd, guest_entries(init, engine, model, args, system.channel))
        machine.argv = qemu_argv(target, system, kernel.image, initrd, console_log, channel_out)
        shutdown = machine.run(timeout)
        console = console_log.read_bytes() if console_log.exists() else b""
        report = parse_report(console)
        if report is None:
            kept = _keep_log(console_log, cache, target)
            raise RunError(diagnose(target, console, shutdown.reason, timeout), f"console log: {kept}")
        code, sig, figures = report
        stdout = channel_out.read_bytes() if channel_out.exists() else b""
    returncode = code if sig == 0 else -sig
    figures = dataclasses.replace(figures, machine_s=shutdown.wall_s)
    return SystemResult(RunResult(stdout, program_stderr(console), returncode, figures.program_ms / 1000.0),
                        figures, kernel)


def _keep_log(log: Path, cache: Path, target: Target) -> Path:
    kept = cache / "system" / f"{target.name}-failed-console.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    if log.exists():
        shutil.copyfile(log, kept)
    else:
        kept.write_bytes(b"")
    return kept
