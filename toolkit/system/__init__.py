"""Full-system runs: boot the target's machine under qemu-system with a guest kernel and a minimal
initramfs whose /init runs the engine, and return the same result as a user-mode run, with the
guest's figures (peak memory, time) in it: ``SystemMode`` is the emulator interface
(toolkit/emulate) over ``run_system``. While the machine runs, the program's stdout (its own serial
port, a file on the host) and its stderr (the console's lines between /init's start and result
lines) are passed on as they arrive, like a user-mode run's."""

from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..cmd import require_tool
from ..emulate import EngineArgs, GuestFigures, RunResult, Sink
from ..errors import RunError, RunTimeoutError, UsageError
from ..targets import System, Target
from . import initramfs
from .guest import cached_init
from .kernel import Need, cached_kernel, kernel_needs, require_needs, system_of
from .machine import Machine

MARK = b"ppcllm-init: "
_RESULT = re.compile(rb"ppcllm-init: result exit=(-?\d+) signal=(\d+) maxrss_kib=(-?\d+) wall_ms=(-?\d+) "
                     rb"mem_total_kib=(-?\d+) boot_ms=(-?\d+)")
_PANIC = re.compile(rb"Kernel panic[^\r\n]*")
_INIT_ERROR = re.compile(rb"ppcllm-init: error: ([^\r\n]*)")
GUEST_DIR = "ppcllm"


def system_needs(target: Target) -> list[Need]:
    """What ``--system`` needs on this machine for ``target``: its qemu-system, then the kernel
    build's (source tarball, cross-compiler, host tools), each found or not."""
    system = system_of(target)
    return [Need(system.command, system.package, shutil.which(system.command)), *kernel_needs(system)]


def preflight(target: Target) -> None:
    """Every missing piece of ``--system`` named at once, before a kernel build can start."""
    require_needs(system_needs(target), f"--system on {target.name}")


def qemu_argv(target: Target, system: System, kernel: Path, initrd: Path, console_log: Path,
              channel_out: Path) -> list[str]:
    """The qemu-system command line (without -S and -qmp, which the Machine adds)."""
    qemu = require_tool(system.command, system.package)
    cmdline = ["quiet", f"console={system.console}", "panic=-1", *system.cmdline]
    return [qemu, *system.args, "-m", str(target.ram_mib), "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", " ".join(cmdline), "-display", "none", "-monitor", "none", "-nic", "none",
            "-serial", f"file:{console_log}", "-serial", f"file:{channel_out}", "-no-reboot", "-no-shutdown"]


PROMPT_IN_GUEST = f"/{GUEST_DIR}/prompt/prompt.txt"  # -f's file, copied into the initramfs


def guest_entries(init: Path, engine: Path, model: Path, args: EngineArgs, channel: str) -> list[initramfs.Entry]:
    """The initramfs: /init, the engine, the model, a prompt file (-f), the engine's arguments
    (NUL-separated) and the channel."""
    model_in_guest = f"/{GUEST_DIR}/model/{model.name}"  # its own folder: any name is safe
    argv = [f"/{GUEST_DIR}/engine".encode(), model_in_guest.encode()]
    flags = args.flags(PROMPT_IN_GUEST if args.prompt_file is not None else None)
    argv += [a if isinstance(a, bytes) else a.encode("utf-8", "surrogateescape") for a in flags]
    E = initramfs.Entry
    prompt = [E.directory(f"{GUEST_DIR}/prompt"), E.file(PROMPT_IN_GUEST[1:], args.prompt_file)] \
        if args.prompt_file is not None else []
    return [E.directory("dev"), E.char_device("dev/console", 5, 1), E.directory("proc"), E.directory("sys"),
            E.directory("tmp"), E.directory(GUEST_DIR), E.directory(f"{GUEST_DIR}/model"),
            E.file("init", init, executable=True), E.file(f"{GUEST_DIR}/engine", engine, executable=True),
            E.file(model_in_guest[1:], model), *prompt,
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


def stderr_so_far(console: bytes) -> bytes:
    """``program_stderr`` of a console that may still grow: its whole lines only, so that each
    answer is a prefix of the next and of the final one (the bytes can be passed on as they come)."""
    if _RESULT.search(console):
        return program_stderr(console)
    return program_stderr(console[:console.rfind(b"\n") + 1])


class Follower:
    """Passes a running guest's output on: the channel file's new bytes to ``out``, the console's
    new program-stderr bytes to ``err``. ``poll`` as often as wanted; the last one after power-off."""

    def __init__(self, console: Path, channel: Path, out: Sink | None, err: Sink | None) -> None:
        self.console, self.channel, self.out, self.err = console, channel, out, err
        self.stdout = bytearray()
        self._stderr_sent = 0

    def poll(self) -> None:
        fresh = _read_from(self.channel, len(self.stdout))
        if fresh:
            self.stdout += fresh
            if self.out is not None:
                self.out(fresh)
        if self.err is not None:
            text = stderr_so_far(_read_from(self.console, 0))
            if len(text) > self._stderr_sent:
                self.err(text[self._stderr_sent:])
                self._stderr_sent = len(text)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read()
    except FileNotFoundError:
        return b""


def timed_out(console: bytes, reason: str | None) -> bool:
    """The guest was still running at the deadline (no shutdown, no panic, no /init error)."""
    return reason is None and not _PANIC.search(console) and _INIT_ERROR.search(console) is None


def diagnose(target: Target, console: bytes, reason: str | None, timeout: float) -> str:
    """The one-line reason a guest gave no report: panic, timeout, or a missing marker."""
    panic = _PANIC.search(console)
    if panic:
        return f"the guest kernel panicked on {target.name}: {panic.group(0).decode(errors='replace').strip()}"
    init_error = _INIT_ERROR.search(console)
    if init_error:
        return f"the guest's /init failed on {target.name}: {init_error.group(1).decode(errors='replace')}"
    if reason is None:
        return f"the guest timed out after {timeout:g} s on {target.name} (it did not power off) and was stopped"
    if MARK + b"start" not in console:
        return f"the guest powered off ({reason}) before /init started the engine on {target.name}"
    return f"the guest powered off ({reason}) without /init's result line on {target.name}"


@dataclass(frozen=True)
class SystemMode:
    """The emulator interface over ``run_system``: the target's machine, the cache for its kernel."""

    target: Target
    cache: Path

    def run(self, engine: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
            err: Sink | None = None) -> RunResult:
        return run_system(self.target, engine, args, timeout, self.cache, out, err)


def run_system(target: Target, engine: Path, args: EngineArgs, timeout: float,
               cache: Path, out: Sink | None = None, err: Sink | None = None) -> RunResult:
    """Boot ``target``'s machine, run ``engine`` with ``args`` as the guest's only program, power
    off; the program's stdout and stderr go to ``out`` / ``err`` as they arrive (and are kept)."""
    if args.model is None:
        raise UsageError("a full-system run needs a model file")
    system = system_of(target)
    preflight(target)
    kernel = cached_kernel(target, cache)
    init = cached_init(target, cache)
    with Machine([], f"{target.name}-system", cache / "system" / "runs") as machine:
        initrd, console_log, channel_out = (machine.workdir / n for n in ("initramfs.cpio", "console.log", "stdout.bin"))
        initramfs.write_file(initrd, guest_entries(init, engine, args.model, args, system.channel))
        machine.argv = qemu_argv(target, system, kernel.image, initrd, console_log, channel_out)
        follower = Follower(console_log, channel_out, out, err)
        shutdown = machine.run(timeout, follower.poll)
        follower.poll()  # what came after the last poll: what was printed stays printed, even on a timeout
        console = console_log.read_bytes() if console_log.exists() else b""
        report = parse_report(console)
        if report is None:
            kept = _keep_log(console_log, cache, target)
            if timed_out(console, shutdown.reason):
                raise RunTimeoutError(diagnose(target, console, shutdown.reason, timeout),
                                      f"raise --timeout, or lower -n (console log: {kept})")
            raise RunError(diagnose(target, console, shutdown.reason, timeout), f"console log: {kept}")
        code, sig, figures = report
        stdout = bytes(follower.stdout)
    returncode = code if sig == 0 else -sig
    figures = dataclasses.replace(figures, machine_s=shutdown.wall_s)
    return RunResult(stdout, program_stderr(console), returncode, figures.program_ms / 1000.0, figures)


def _keep_log(log: Path, cache: Path, target: Target) -> Path:
    kept = cache / "system" / f"{target.name}-failed-console.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    if log.exists():
        shutil.copyfile(log, kept)
    else:
        kept.write_bytes(b"")
    return kept
