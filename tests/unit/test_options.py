"""The options contract (README "Options"), toolkit side: every spelling of an option reaches the
engine as its one engine spelling, llama.cpp's habits get a word instead of a misfire, and the
new refusals are one line with exit 2. The run itself is stubbed (the engine side: the
integration tests test_limits.py, test_sampling.py, test_chat.py and test_prompt_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit import __version__, format as fmt
from toolkit.emulate import EngineArgs, RunResult, Sink, UserMode

from .test_cli import assert_clean_error, invoke


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[EngineArgs]:
    """run-qemu with the build and the run stubbed: the EngineArgs each run got."""
    from toolkit import pipeline
    from toolkit.toolchain import Build

    runs: list[EngineArgs] = []

    def fake_run(self: UserMode, binary: Path, args: EngineArgs, timeout: float, out: Sink | None = None,
                 err: Sink | None = None) -> RunResult:
        runs.append(args)
        return RunResult(b"", b"", 0, 0.1)

    monkeypatch.setenv("PPC_LLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pipeline, "build", lambda target, cache: Build(tmp_path, target, {}))
    monkeypatch.setattr(UserMode, "run", fake_run)
    return runs


def flags(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seen: list[EngineArgs],
          *options: str) -> tuple[list[str | bytes], str]:
    code, _, err = invoke(monkeypatch, capsys, "run-qemu", "--target", "host", "-s", "5", *options)
    assert code == 0, err
    return seen[-1].flags(), err


BASE: list[str | bytes] = ["-t", "1.0", "-p", "0.9", "-s", "5"]


I: list[str | bytes] = ["-i", b""]


@pytest.mark.parametrize("spellings,expected", [
    ((["-t", "0.5"], ["--temp", "0.5"], ["--temperature", "0.5"]), ["-t", "0.5", "-p", "0.9", "-s", "5", "-n", "256", *I]),
    ((["-p", "0.5"], ["--top-p", "0.5"], ["--topp", "0.5"]), ["-t", "1.0", "-p", "0.5", "-s", "5", "-n", "256", *I]),
    ((["-n", "9"], ["--steps", "9"]), [*BASE, "-n", "9", *I]),
    ((["--n-predict", "9"],), [*BASE, "-N", "9", *I]),
    ((["--top-k", "40"],), [*BASE, "-n", "256", *I, "-K", "40"]),
    ((["--min-p", "0.05"],), [*BASE, "-n", "256", *I, "-M", "0.05"]),
    ((["--repeat-penalty", "1.1"],), [*BASE, "-n", "256", *I, "-r", "1.1"]),
    ((["--repeat-last-n", "-1"],), [*BASE, "-n", "256", *I, "-R", "-1"]),
    ((["--ctx", "64"], ["--ctx-size", "64"]), [*BASE, "-n", "256", *I, "-c", "64"]),
    ((["--threads", "1"],), [*BASE, "-n", "256", *I, "-T", "1"]),
    ((["-s", "5"], ["--seed", "5"]), [*BASE, "-n", "256", *I]),
])
def test_every_spelling_is_the_one_engine_option(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                 seen: list[EngineArgs], spellings: tuple[list[str], ...],
                                                 expected: list[str | bytes]) -> None:
    for spelling in spellings:
        got, _ = flags(monkeypatch, capsys, seen, *spelling)
        assert got == expected, spelling


def test_defaults_pass_no_new_option(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     seen: list[EngineArgs]) -> None:
    """The chain's new stages at their defaults are not passed: the engine's argv is llama2.c's."""
    got, _ = flags(monkeypatch, capsys, seen, "--top-k", "0", "--min-p", "0", "--repeat-penalty", "1",
                   "--repeat-last-n", "64", "-i", "hi")
    assert got == [*BASE, "-n", "256", "-i", b"hi"]


def test_model_and_prompt_long_spellings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         seen: list[EngineArgs], bundled_model_paths: tuple[Path, Path]) -> None:
    checkpoint, tokenizer = bundled_model_paths
    for spelling in ("--model", "--checkpoint", "-c"):
        got, _ = flags(monkeypatch, capsys, seen, spelling, str(checkpoint), "-z", str(tokenizer),
                       "--prompt", "Lily")
        assert got[-2:] == ["-i", b"Lily"] and seen[-1].model is not None


def test_prompt_file_goes_to_the_engine_as_a_file(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], seen: list[EngineArgs],
                                                  tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(b"x" * 200_000 + b"\n")  # over 128 KiB: it could not travel in argv
    for spelling in ("-f", "--file"):
        got, _ = flags(monkeypatch, capsys, seen, spelling, str(prompt))
        assert got == [*BASE, "-n", "256", "-f", str(prompt)]


@pytest.mark.parametrize("content,text", [(b"a\0b", "contains a NUL byte")])
def test_a_bad_prompt_file_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      seen: list[EngineArgs], tmp_path: Path, content: bytes, text: str) -> None:
    prompt = tmp_path / "p.txt"
    prompt.write_bytes(content)
    assert_clean_error(*invoke(monkeypatch, capsys, "run-qemu", "--target", "host", "-f", str(prompt)), 2, text)
    assert seen == []


def test_a_missing_prompt_file_is_an_input_error(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], seen: list[EngineArgs],
                                                 tmp_path: Path) -> None:
    result = invoke(monkeypatch, capsys, "run-qemu", "--target", "host", "-f", str(tmp_path / "none.txt"))
    assert_clean_error(*result, 3, "cannot read the prompt file")
    assert_clean_error(*invoke(monkeypatch, capsys, "run-qemu", "--target", "host", "-f", str(tmp_path)), 3,
                       "is a directory")


@pytest.mark.parametrize("args,text,hint", [
    (["-n", "5", "--n-predict", "5"], "both set the length", "--n-predict the tokens generated"),
    (["-n", "-1"], "steps must be", "llama.cpp's -n -1"),
    (["--n-predict", "-1"], "--n-predict -1", "llama.cpp's -1"),
    (["-t", "1", "--temp", "1"], "both give the temperature", "give one"),
    (["-i", "a", "-f", "x.txt"], "both give the prompt", "give one"),
    (["-c", "4096"], "no checkpoint file named 4096", "the context is --ctx / --ctx-size"),
    (["-p", "Once upon a time"], "Invalid value for '-p'", "the prompt is -i / --prompt"),
    (["--top-k", "-1"], "--top-k -1", "to disable it"),
    (["--min-p", "1.5"], "--min-p 1.5", "to disable it"),
    (["--repeat-penalty", "0"], "--repeat-penalty 0.0", "to disable it"),
    (["--repeat-last-n", "-2"], "--repeat-last-n -2", None),
])
def test_llama_cpp_habits_and_new_refusals(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          seen: list[EngineArgs], args: list[str], text: str,
                                          hint: str | None) -> None:
    code, out, err = invoke(monkeypatch, capsys, "run-qemu", "--target", "host", *args)
    assert_clean_error(code, out, err, 2, text)
    lines = err.strip().splitlines()
    assert (lines[1].startswith("hint: ") and hint in lines[1]) if hint else len(lines) == 1, err
    assert seen == []


def test_a_thread_count_habit_on_t_gets_a_note(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], seen: list[EngineArgs]) -> None:
    _, err = flags(monkeypatch, capsys, seen, "-t", "4")
    assert "note: -t 4 is the temperature (as in llama2.c); threads are --threads" in err
    for quiet in (["-t", "2"], ["--temp", "4"]):  # 2 is a plausible temperature; --temp says what it means
        _, err = flags(monkeypatch, capsys, seen, *quiet)
        assert "note:" not in err, quiet


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(monkeypatch, capsys, "--version")
    assert code == 0 and err == ""
    assert out == f"ppc-llm {__version__} (model format v{fmt.FORMAT_VERSION})\n"
