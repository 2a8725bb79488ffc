"""The options contract, engine side (README "Options"): -f prompt files (read by the engine
itself, so a prompt over 128 KiB works), -N, --version, the reserved -k and the llama.cpp
habits' words; and -f through the toolkit in user mode (full-system: tests/system)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from toolkit import __version__, format as fmt
from toolkit.emulate import run_user
from toolkit.toolchain import Build
from tests.helpers import GoldenCase, golden_params, require_case

from .conftest import cli, target

ARG_MAX_STRING = 128 * 1024  # Linux's MAX_ARG_STRLEN: no single argv string may be longer


def engine(builds: dict[str, Build], name: str, models: dict[str, Path], *args: str,
           stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    ran = run_user(target(name), builds[name].engine, [str(models[name]), *args], timeout=300)
    return subprocess.CompletedProcess([], ran.returncode, ran.stdout, ran.stderr)


def one_line(stderr: bytes, text: str) -> None:
    lines = stderr.decode(errors="replace").strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines


@pytest.mark.parametrize("case", golden_params())
def test_a_prompt_file_is_the_prompt(case: GoldenCase | None, builds: dict[str, Build], models: dict[str, Path],
                                     tmp_path: Path) -> None:
    """-f with the golden case's prompt (and a final newline, dropped) prints the golden text."""
    case = require_case(case)
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(case.prompt.encode() + b"\n")
    options = [str(a) for a in case.args().flags() if a not in ("-i", case.prompt)]
    for name in ("host", "g4"):
        result = engine(builds, name, models, *options, "-f", str(prompt))
        assert result.returncode == 0, result.stderr
        assert result.stdout == case.expected, name


def test_a_prompt_too_long_for_argv_runs_from_a_file(builds: dict[str, Build], models: dict[str, Path],
                                                     tmp_path: Path, cache: Path) -> None:
    """A 200 KiB prompt (argv refuses any string over 128 KiB) runs from -f, in the engine and
    through run-qemu: its first positions print as the same prompt's first KiB given with -i."""
    text = b"Once upon a time, there was a little girl named Lily. " * 4000
    assert len(text) > ARG_MAX_STRING
    big = tmp_path / "big.txt"
    big.write_bytes(text)
    for name in ("host", "g4"):
        from_file = engine(builds, name, models, "-t", "0", "-n", "12", "-f", str(big))
        short = engine(builds, name, models, "-t", "0", "-n", "12", "-i", text[:1024].decode())
        assert from_file.returncode == 0, from_file.stderr
        assert from_file.stdout == short.stdout and from_file.stdout.startswith(b"Once upon a time"), name
    toolkit = cli("run-qemu", "--target", "g4", "-t", "0", "-n", "12", "--file", str(big), cache_dir=cache,
                  timeout=300)
    assert toolkit.returncode == 0, toolkit.stderr
    assert toolkit.stdout == from_file.stdout


@pytest.mark.parametrize("content,code,text", [
    (b"Lily\0saw", 2, "the prompt file contains a NUL byte"),
    (None, 1, "cannot open prompt file"),
])
def test_a_bad_prompt_file_is_one_line(builds: dict[str, Build], models: dict[str, Path], tmp_path: Path,
                                       content: bytes | None, code: int, text: str) -> None:
    prompt = tmp_path / "p.txt"
    if content is not None:
        prompt.write_bytes(content)
    result = engine(builds, "host", models, "-f", str(prompt))
    assert result.returncode == code and result.stdout == b""
    one_line(result.stderr, text)


@pytest.mark.parametrize("args,text", [
    (["-k", "f16"], "-k is reserved for the KV-cache type"),
    (["-p", "Once upon a time"], "top-p must be a number in [0, 1] (the prompt is -i)"),
    (["-n", "5", "-N", "5"], "-n and -N both set the length"),
    (["-i", "a", "-f", "p.txt"], "-i and -f both give the prompt"),
    (["-N", "-1"], "tokens to generate must be an integer"),
    (["-K", "x"], "top-k must be an integer"),
])
def test_engine_refusals_are_one_line(builds: dict[str, Build], models: dict[str, Path], args: list[str],
                                      text: str) -> None:
    for name in ("host", "g4"):
        result = engine(builds, name, models, *args)
        assert result.returncode == 2 and result.stdout == b"", name
        one_line(result.stderr, text)


def test_a_thread_habit_on_t_is_a_note(builds: dict[str, Build], models: dict[str, Path]) -> None:
    result = engine(builds, "host", models, "-t", "4", "-n", "4", "-s", "1")
    assert result.returncode == 0
    assert b"note: -t 4 is the temperature (as in llama2.c); the thread count is -T" in result.stderr
    assert b"note:" not in engine(builds, "host", models, "-t", "2", "-n", "4", "-s", "1").stderr


def test_n_predict_counts_generated_tokens(builds: dict[str, Build], models: dict[str, Path]) -> None:
    """-N N runs N positions past the prompt: -n (prompt tokens without BOS + N) prints the same."""
    for name in ("host", "g4"):
        ids = engine(builds, name, models, "-m", "encode", "-i", "Lily saw").stdout.split()
        for count in (1, 7, 30):
            by_count = engine(builds, name, models, "-t", "0", "-N", str(count), "-i", "Lily saw")
            by_steps = engine(builds, name, models, "-t", "0", "-n", str(len(ids) - 1 + count), "-i", "Lily saw")
            assert by_count.returncode == 0 and by_count.stdout == by_steps.stdout, (name, count)
        whole = engine(builds, name, models, "-t", "0", "-N", "0", "-i", "Lily saw")
        assert whole.stdout == engine(builds, name, models, "-t", "0", "-n", "0", "-i", "Lily saw").stdout


def test_n_predict_with_a_prompt_longer_than_the_context(builds: dict[str, Build], models: dict[str, Path]) -> None:
    """-N must fit the whole prompt: past the context it is exit 3 and one line naming -c (-n
    keeps llama2.c's way: the prompt is cut at the step limit)."""
    result = engine(builds, "host", models, "-c", "4", "-N", "3", "-i", "Lily saw a big red ball")
    assert result.returncode == 3 and result.stdout == b""
    one_line(result.stderr, "(-c)")


def test_engine_version(builds: dict[str, Build], models: dict[str, Path]) -> None:
    for name in ("host", "g4"):
        ran = run_user(target(name), builds[name].engine, ["--version"], timeout=60)
        assert ran.returncode == 0 and ran.stderr == b""
        assert ran.stdout == f"ppcllm {__version__} (model format v{fmt.FORMAT_VERSION}, target {name})\n".encode()


def test_toolkit_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"ppc-llm {__version__} (model format v{fmt.FORMAT_VERSION})\n".encode()
