"""Output streams without processes: run-qemu passes the engine's text on as it arrives (the run
stubbed: it hands chunks to the CLI's sinks), a timeout keeps what was printed and has its own
exit code, a closed stdout stops the run quietly; the guest's output is followed while its files
grow; the kernel build's progress is condensed; --system checks its tools before any build."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from toolkit import cli, doctor, pipeline
from toolkit.emulate import EngineArgs, RunResult, Sink, StdoutClosed, UserMode, to_stdout
from toolkit.errors import EXIT_CODES, RunError, RunTimeoutError, ToolMissingError
from toolkit.system import Follower, preflight, program_stderr, stderr_so_far, timed_out
from toolkit.system import kernel as kernelmod
from toolkit.targets import Target, load_target
from toolkit.toolchain import Build

PROMPT_ARGS = ["--target", "g4", "-t", "0", "-s", "1", "-n", "8", "-i", "Once upon a time"]


def invoke(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["ppc-llm", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def stub_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: "object") -> None:
    """run-qemu with the engine build stubbed and run_user replaced by ``script(out, err)``."""
    monkeypatch.setenv("PPC_LLM_CACHE", str(tmp_path))
    monkeypatch.setattr(pipeline, "build", lambda target, cache: Build(tmp_path, target, {}))

    def fake_run(self: UserMode, binary: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
                 err: Sink | None = None) -> RunResult:
        assert out is not None and err is not None
        return script(out, err)  # type: ignore[operator,no-any-return]

    monkeypatch.setattr(UserMode, "run", fake_run)


def test_text_reaches_stdout_while_the_engine_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    seen: list[str] = []

    def script(out: Sink, err: Sink) -> RunResult:
        out(b"Once upon")
        seen.append(capsys.readouterr().out)  # already on our stdout, with the engine still "running"
        err(b"achieved tok/s: 3.0\n")
        out(b" a time")
        return RunResult(b"Once upon a time", b"achieved tok/s: 3.0\n", 0, 0.5)

    stub_run(monkeypatch, tmp_path, script)
    assert invoke(monkeypatch, "run-qemu", *PROMPT_ARGS) == 0
    captured = capsys.readouterr()
    assert seen == ["Once upon"]
    assert captured.out == " a time"  # each byte once: no second copy after the run
    assert "achieved tok/s: 3.0" in captured.err and "seed 1; g4 run took" in captured.err


def test_timeout_keeps_the_text_and_has_its_own_code(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def script(out: Sink, err: Sink) -> RunResult:
        out(b"Once upon")
        raise RunTimeoutError("ppcllm timed out after 5 s on g4 and was stopped", "raise --timeout, or lower -n")

    stub_run(monkeypatch, tmp_path, script)
    code = invoke(monkeypatch, "run-qemu", *PROMPT_ARGS)
    captured = capsys.readouterr()
    assert code == RunTimeoutError.exit_code == 8 and code in EXIT_CODES and code != RunError.exit_code
    assert captured.out == "Once upon"
    lines = captured.err.strip().splitlines()
    assert lines[-2:] == ["error: ppcllm timed out after 5 s on g4 and was stopped", "hint: raise --timeout, or lower -n"]
    assert "run took" not in captured.err


def test_closed_stdout_stops_quietly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    silenced: list[bool] = []
    monkeypatch.setattr("toolkit.emulate.silence_stdout", lambda: silenced.append(True))

    def script(out: Sink, err: Sink) -> RunResult:
        raise StdoutClosed()

    stub_run(monkeypatch, tmp_path, script)
    code = invoke(monkeypatch, "run-qemu", *PROMPT_ARGS)
    captured = capsys.readouterr()
    assert code == 0 and silenced == [True]
    assert "error" not in captured.err and "Traceback" not in captured.err and "run took" not in captured.err


class _ClosedPipe(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_on_stdout_is_stdout_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(_ClosedPipe())))
    with pytest.raises(StdoutClosed):
        to_stdout(b"x" * 10)


CONSOLE = (b"[    0.000000] Linux version 6.1\r\n\r\nppcllm-init: start: /ppcllm/engine\r\n"
           b"loading\r\n\r\nachieved tok/s: 12.5\r\n\r\nppcllm-init: result exit=0 signal=0 maxrss_kib=2048 "
           b"wall_ms=900 mem_total_kib=1030000 boot_ms=1234\r\n")


def test_stderr_so_far_only_grows() -> None:
    final = program_stderr(CONSOLE)
    previous = b""
    for cut in range(len(CONSOLE) + 1):
        text = stderr_so_far(CONSOLE[:cut])
        assert text.startswith(previous) and final.startswith(text), cut
        assert b"\r" not in text and b"ppcllm-init" not in text
        previous = text
    assert previous == final == b"loading\n\nachieved tok/s: 12.5\n"


def test_follower_passes_the_guest_output_on_as_the_files_grow(tmp_path: Path) -> None:
    console, channel = tmp_path / "console.log", tmp_path / "stdout.bin"
    outs: list[bytes] = []
    errs: list[bytes] = []
    follower = Follower(console, channel, outs.append, errs.append)
    follower.poll()  # QEMU has not made the files yet
    assert outs == errs == []
    text = b"Once upon a time, \xe2\x80\x9cthere\xe2\x80\x9d"
    for step, i in enumerate(range(0, len(CONSOLE), 7)):
        with console.open("ab") as c:
            c.write(CONSOLE[i:i + 7])
        with channel.open("ab") as o:
            o.write(text[step:step + 1])
        follower.poll()
    with channel.open("ab") as o:
        o.write(text[step + 1:])
    follower.poll()
    assert b"".join(outs) == bytes(follower.stdout) == text
    assert len(outs) > 10  # byte by byte as they came, not at the end
    assert b"".join(errs) == program_stderr(CONSOLE)
    assert errs[0] == b"loading\n"  # a line is passed on as soon as it is whole


def test_a_guest_past_its_deadline_is_a_timeout() -> None:
    assert timed_out(b"booting...", None)
    assert not timed_out(b"booting...", "guest-shutdown")
    assert not timed_out(b"Kernel panic - not syncing: x\r\n", None)
    assert not timed_out(b"ppcllm-init: error: no channel\r\n", None)


def test_make_progress_is_one_line_per_period(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]
    progress = kernelmod.MakeProgress("kernel g4", every_s=30.0, clock=lambda: now[0])
    log = b"".join(b"  CC      kernel/f%d.o\n" % i for i in range(40)) + b"  AS      arch/head.o\n  LD      vmlinux\n"
    for i in range(0, len(log), 5):  # chunks cut anywhere, even inside a line
        now[0] += 1.0
        progress.feed(log[i:i + 5])
    assert progress.files == 41  # CC and AS lines, not LD
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == int((now[0] - 100.0) // 30)
    whole_lines = log[:30 * 5].count(b"\n")  # the log fed by the 30th second, all CC lines
    assert lines[0] == f"kernel g4: still building, {whole_lines} files compiled, 30 s"
    assert lines[1].endswith(" files compiled, 60 s")


def test_kernel_build_reports_its_stages(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    """_build with tar and make stubbed: a line per stage, make's output condensed, not shown."""
    from toolkit.emulate.stream import Pumped

    target = load_target("g4")
    system = kernelmod.system_of(target)
    fragment = system.kernel_config.read_text(encoding="utf-8")

    def fake_run(argv: list[str | Path], **kwargs: object) -> object:
        import subprocess

        if argv[0] == "tar":
            (Path(str(argv[-1])) / "linux-source-6.1").mkdir()
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    def fake_pump(argv: list[str], timeout: float, out: Sink | None = None, err: Sink | None = None) -> Pumped:
        obj = Path(next(a for a in argv if a.startswith("O="))[2:])
        obj.mkdir(parents=True)
        (obj / ".config").write_text(fragment, encoding="utf-8")
        (obj / system.kernel_image).write_bytes(b"\x7fELF")
        log = b"  CC      init/main.o\n  CC      kernel/fork.o\n  LD      vmlinux\n"
        assert out is not None
        out(log)
        return Pumped(log, b"", 0, 1.0)

    monkeypatch.setattr(kernelmod, "run", fake_run)
    monkeypatch.setattr(kernelmod, "pump", fake_pump)
    built = kernelmod._build(target, system, tmp_path, tmp_path / "kernels" / "g4-x", Path(system.kernel_source),
                             "a" * 64, "key")
    err = capsys.readouterr().err
    assert built.image.read_bytes() == b"\x7fELF"
    assert "kernel g4 1/3: unpacking linux-source-6.1.tar.xz" in err
    assert "kernel g4 2/3: configuring (allnoconfig + mac99.config)" in err
    assert "kernel g4 3/3: building vmlinux" in err
    assert "(2 files compiled)" in err and "kernel/fork.o" not in err


def _fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leave_out: set[str]) -> None:
    """PATH = a folder of stand-ins for every tool --system on g4 needs, less ``leave_out``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = ["qemu-system-ppc", "powerpc-linux-gnu-gcc", *(command for command, _ in kernelmod.BUILD_TOOLS)]
    for tool in tools:
        if tool not in leave_out:
            (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
            os.chmod(bin_dir / tool, 0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_system_without_qemu_system_fails_before_a_kernel_build(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    def no_build(target: Target, cache: Path) -> None:
        raise AssertionError("the kernel build started")

    monkeypatch.setattr("toolkit.system.cached_kernel", no_build)
    stub_run(monkeypatch, tmp_path, lambda out, err: None)
    _fake_path(tmp_path, monkeypatch, {"qemu-system-ppc"})
    code = invoke(monkeypatch, "run-qemu", "--system", *PROMPT_ARGS)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 4 and captured.out == ""
    assert lines[-2].startswith("error: --system on g4 needs qemu-system-ppc") and lines[-2].endswith("not installed")
    assert lines[-1].startswith("hint: install ") and "sudo apt-get install qemu-system-ppc" in lines[-1]


def test_preflight_names_every_missing_piece(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = load_target("g4")
    assert target.system is not None
    no_source = dataclasses.replace(target, system=dataclasses.replace(
        target.system, kernel_source=str(tmp_path / "linux-source-6.1.tar.xz")))
    _fake_path(tmp_path, monkeypatch, {"qemu-system-ppc", "flex"})
    with pytest.raises(ToolMissingError) as caught:
        preflight(no_source)
    error = caught.value
    assert error.exit_code == 4
    assert "qemu-system-ppc" in error.message and f"the kernel source {tmp_path}/linux-source-6.1.tar.xz" in error.message
    assert "flex" in error.message and "powerpc-linux-gnu-gcc" not in error.message
    assert error.hint == "install them with: sudo apt-get install qemu-system-ppc linux-source-6.1 flex"
    (tmp_path / "linux-source-6.1.tar.xz").write_bytes(b"")
    (tmp_path / "all").mkdir()
    _fake_path(tmp_path / "all", monkeypatch, set())
    preflight(no_source)  # everything there now: no error


def test_doctor_reports_what_system_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = {"qemu-system-ppc", "bison"}
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in missing else f"/usr/bin/{tool}")
    monkeypatch.setattr(doctor, "engine_answers", lambda engine, timeout=20: False)
    lines, incomplete = doctor.report([load_target("g4"), load_target("xenon"), load_target("host")])
    text = "\n".join(lines)
    assert incomplete == 0  # user-mode runs have their tools; --system is reported on its own
    g4 = lines[lines.index(next(line for line in lines if line.startswith("g4 "))):]
    assert g4[4] == "  --system (full-system QEMU): INCOMPLETE"
    assert "MISSING  qemu-system-ppc              sudo apt-get install qemu-system-ppc" in g4[5]
    assert "kernel source" in g4[6] and "powerpc-linux-gnu-gcc" in g4[7] and g4[7].startswith("  ok")
    assert "  ok       qemu-system-ppc64" in text  # xenon's machine is there
    assert text.count("MISSING  bison") == 1  # the host's build tools, once for all targets
    host = next(i for i, line in enumerate(lines) if line.startswith("host "))
    assert not lines[host + 3].startswith("  --system")
