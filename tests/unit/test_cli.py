"""The CLI's error contract: one line (plus at most a hint), a documented exit code, no traceback,
and no partial output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from toolkit import cli, format as fmt
from toolkit.errors import EXIT_CODES


def invoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["ppc-llm", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, out: str, err: str, expected: int, text: str) -> None:
    assert code == expected, err
    assert code in EXIT_CODES
    assert out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: ") and text in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("args,expected,text", [
    (["run-qemu", "--target", "g9"], 2, "unknown target 'g9'"),
    (["run-qemu", "--system", "--target", "host"], 2, "target 'host' has no full-system machine"),
    (["kernel", "--target", "host"], 2, "target 'host' has no full-system machine"),
    (["run-qemu", "-t", "-1"], 2, "temperature must be"),
    (["run-qemu", "-p", "2"], 2, "top-p must be"),
    (["run-qemu", "-n", "-5"], 2, "steps must be"),
    (["run-qemu", "--checkpoint", "/nonexistent/model.bin", "--tokenizer", "x"], 3, "does not exist"),
    (["build", "--target", "nope"], 2, "unknown target"),
    (["convert", "/nonexistent.bin"], 3, "does not exist"),
    (["convert", "x.bin", "--endian", "middle"], 2, "--endian middle"),
    (["run-qemu", "--no-such-option"], 2, "No such option"),
])
def test_bad_input_gives_one_line_and_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           args: list[str], expected: int, text: str) -> None:
    assert_clean_error(*invoke(monkeypatch, capsys, *args), expected, text)


def test_convert_without_tokenizer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                   bundled_model_paths: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    result = invoke(monkeypatch, capsys, "convert", str(bundled_model_paths[0]), "-o", str(out))
    assert_clean_error(*result, 3, "needs its tokenizer")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_convert_writes_file_atomically(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                        bundled_model_paths: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.be.bin"
    code, stdout, err = invoke(monkeypatch, capsys, "convert", str(bundled_model_paths[0]), "--tokenizer",
                               str(bundled_model_paths[1]), "--endian", "big", "-o", str(out))
    assert code == 0 and stdout == "" and "wrote" in err
    assert [p.name for p in tmp_path.iterdir()] == ["m.be.bin"]
    assert fmt.file_endian(out.read_bytes(), "m") == "big"


def test_convert_into_unwritable_place(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       bundled_model_paths: tuple[Path, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(monkeypatch, capsys, "convert", str(bundled_model_paths[0]), "--tokenizer",
                    str(bundled_model_paths[1]), "-o", str(blocker / "out.bin"))
    assert_clean_error(*result, 3, "cannot write")


def test_debug_shows_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(monkeypatch, capsys, "--debug", "run-qemu", "--target", "g9")
    assert code == 2 and "Traceback" in err


@pytest.mark.parametrize("options,expected", [
    (["-t", "0", "-s", "3", "-n", "8", "-i", "hi", "--threads", "2", "--ctx", "64"],
     ["-t", "0.0", "-p", "0.9", "-s", "3", "-n", "8", "-i", b"hi", "-T", "2", "-c", "64"]),
    (["-s", "5", "-p", "1"], ["-t", "1.0", "-p", "1.0", "-s", "5", "-n", "256", "-i", b""]),
])
def test_run_qemu_hands_the_engine_its_argv(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, options: list[str], expected: list[object]) -> None:
    """What run-qemu's options become on the engine's command line (EngineArgs), the run stubbed."""
    from toolkit import pipeline
    from toolkit.emulate import EngineArgs, RunResult, Sink, UserMode
    from toolkit.toolchain import Build

    seen: list[EngineArgs] = []

    def fake_run(self: UserMode, binary: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
                 err: Sink | None = None) -> RunResult:
        seen.append(args)
        return RunResult(b"", b"", 0, 0.1)

    monkeypatch.setenv("PPC_LLM_CACHE", str(tmp_path))
    monkeypatch.setattr(pipeline, "build", lambda target, cache: Build(tmp_path, target, {}))
    monkeypatch.setattr(UserMode, "run", fake_run)
    code, _, err = invoke(monkeypatch, capsys, "run-qemu", "--target", "xenon", *options)
    assert code == 0, err
    assert len(seen) == 1 and seen[0].model is not None and seen[0].argv() == [str(seen[0].model), *expected]
