"""run-qemu --verify wiring, with the build and the emulator stubbed: the reference decides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from toolkit import cli
from toolkit.emulate import RunResult, Sink
from toolkit.targets import Target
from toolkit.toolchain import Build
from tests.helpers import GoldenCase


def run_with_output(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                    case: GoldenCase, stdout: bytes) -> tuple[int, str, str]:
    monkeypatch.setenv("PPC_LLM_CACHE", str(tmp_path))

    def fake_build(target: Target, cache: Path) -> Build:
        return Build(tmp_path, target, {})

    def fake_run(target: Target, binary: Path, args: list[str | bytes], timeout: float, *,
                 out: Sink | None = None, err: Sink | None = None) -> RunResult:
        assert out is not None
        out(stdout)  # the engine's text, passed on as it comes
        return RunResult(stdout, b"achieved tok/s: 1.0\n", 0, 0.1)

    monkeypatch.setattr(cli, "cached_build", fake_build)
    monkeypatch.setattr(cli, "run_user", fake_run)
    monkeypatch.setattr(sys, "argv", ["ppc-llm", "run-qemu", "--target", "g4", *case.engine_args(), "--verify"])
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
