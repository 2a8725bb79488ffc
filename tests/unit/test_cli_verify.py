"""run-qemu --verify wiring, with the build and the emulator stubbed: the reference decides, for
llama2.c vocabularies (the golden cases) and GGUF models (the tiny GGUF model, converted for real)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from toolkit import cli, pipeline, reference
from toolkit.fuzz import tinygguf
from toolkit.models.gguf import read_gguf
from toolkit.emulate import EngineArgs, RunResult, Sink, UserMode
from toolkit.targets import Target
from toolkit.toolchain import Build
from tests.helpers import GoldenCase


def run_with_output(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[Any], tmp_path: Path,
                    case: GoldenCase | list[str], stdout: bytes) -> tuple[int, Any, Any]:
    """``run-qemu --target g4 ARGS --verify`` (ARGS: the golden case's, or the list) printing ``stdout``."""
    args = case if isinstance(case, list) else case.engine_args()
    monkeypatch.setenv("PPC_LLM_CACHE", str(tmp_path))

    def fake_build(target: Target, cache: Path) -> Build:
        return Build(tmp_path, target, {})

    def fake_run(self: UserMode, binary: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
                 err: Sink | None = None) -> RunResult:
        assert out is not None
        out(stdout)  # the engine's text, passed on as it comes
        return RunResult(stdout, b"achieved tok/s: 1.0\n", 0, 0.1)

    monkeypatch.setattr(pipeline, "build", fake_build)
    monkeypatch.setattr(UserMode, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["ppc-llm", "run-qemu", "--target", "g4", *args, "--verify"])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_accepts_the_reference_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, golden: list[GoldenCase]) -> None:
    case = golden[0]
    code, out, err = run_with_output(monkeypatch, capsys, tmp_path, case, case.expected)
    assert code == 0, err
    assert out.encode() == case.expected and "verified" in err


def test_verify_reports_the_first_mismatch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, golden: list[GoldenCase]) -> None:
    case = golden[-1]
    tampered = case.expected.replace(b"Tim", b"Tom", 2)
    code, _, err = run_with_output(monkeypatch, capsys, tmp_path, case, tampered)
    assert code == 7, err
    assert "first mismatch at step" in err and "Traceback" not in err


GGUF_RUNS = [(["-t", "0", "-n", "12", "-i", "Once upon a time"], (0.0, 0.9, 1, 12)),
             (["-t", "0.8", "-s", "42", "-n", "12", "-i", "the"], (0.8, 0.9, 42, 12)),
             (["-t", "1", "-p", "0", "-s", "7", "-n", "9", "-i", "a wa"], (1.0, 0.0, 7, 9))]


@pytest.mark.parametrize("args,settings", GGUF_RUNS, ids=["greedy", "sampled", "multinomial"])
def test_verify_covers_gguf_models(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes],
                                   tmp_path: Path, args: list[str], settings: tuple[float, float, int, int]) -> None:
    gguf = tinygguf.write(tmp_path / "tiny.gguf")
    prompt = args[args.index("-i") + 1]
    expected = reference.generate(read_gguf(gguf, gguf.read_bytes()), prompt, *settings).text
    code, out, err = run_with_output(monkeypatch, capsysbinary, tmp_path, ["-c", str(gguf), *args], expected)
    assert code == 0, err
    assert out == expected and b"verified" in err and b"Traceback" not in err  # the tiny model prints any bytes
    tampered = expected[:1] + b"#" + expected[2:]  # inside the prompt, which the program prints as typed
    code, _, err = run_with_output(monkeypatch, capsysbinary, tmp_path, ["-c", str(gguf), *args], tampered)
    assert code == 7, err
    assert b"first mismatch at step" in err and b"Traceback" not in err


def test_verify_still_refuses_chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    gguf = tinygguf.write(tmp_path / "tiny.gguf")
    code, _, err = run_with_output(monkeypatch, capsys, tmp_path, ["-c", str(gguf), "--chat", "-i", "hi"], b"")
    assert code == 2 and "--verify compares raw completions" in err
