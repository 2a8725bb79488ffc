"""One set of limits (toolkit/limits.py): for every run option, the boundary values the toolkit
accepts run in the engine, and the first value past them is refused by both (exit 2, one line).

The accepted values go through the real command line (`ppc-llm run-qemu`, which checks them and
then runs the engine with them); the refused ones go to the toolkit and, as the same text, to
the engine directly."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolkit.emulate import run_user
from toolkit.limits import LIMITS
from toolkit.pipeline import convert, open_input
from toolkit.targets import load_target
from toolkit.toolchain import cached_build

from .conftest import cli


@dataclass(frozen=True)
class Limit:
    label: str
    toolkit_flag: str   # run-qemu's option
    engine_flag: str    # the engine's
    accepted: tuple[str, ...]
    refused: tuple[str, ...]
    target: str = "host"


def text(value: float) -> str:
    return repr(value)  # what GenerateOptions.argv passes to the engine


LIMIT_CASES = [
    Limit("steps", "-n", "-n", ("0", str(LIMITS.max_steps)), ("-1", str(LIMITS.max_steps + 1))),
    Limit("context", "--ctx", "-c", (str(LIMITS.min_ctx), str(LIMITS.max_ctx)),
          (str(LIMITS.min_ctx - 1), str(LIMITS.max_ctx + 1))),
    Limit("seed", "-s", "-s", ("0", "1", str(LIMITS.max_seed)), ("-1", str(LIMITS.max_seed + 1))),
    Limit("temperature", "-t", "-t",
          (text(0.0), text(LIMITS.min_temperature), text(LIMITS.max_temperature)),
          (text(-math.ulp(0.0)), text(math.ulp(0.0)), text(math.nextafter(LIMITS.min_temperature, 0.0)),
           text(math.nextafter(LIMITS.max_temperature, math.inf)), "nan", "inf")),
    Limit("top-p", "-p", "-p", (text(LIMITS.min_topp), text(math.ulp(0.0)), text(LIMITS.max_topp)),
          (text(math.nextafter(LIMITS.min_topp, -1.0)), text(math.nextafter(LIMITS.max_topp, 2.0)), "nan")),
    Limit("n-predict", "--n-predict", "-N", ("0", str(LIMITS.max_n_predict)), ("-1", str(LIMITS.max_n_predict + 1))),
    Limit("top-k", "--top-k", "-K", ("0", "1", str(LIMITS.max_top_k)), ("-1", str(LIMITS.max_top_k + 1))),
    Limit("min-p", "--min-p", "-M", (text(LIMITS.min_min_p), text(LIMITS.max_min_p)),
          (text(math.nextafter(LIMITS.min_min_p, -1.0)), text(math.nextafter(LIMITS.max_min_p, 2.0)), "nan")),
    Limit("repeat-penalty", "--repeat-penalty", "-r", (text(LIMITS.min_repeat_penalty), text(LIMITS.max_repeat_penalty)),
          (text(math.nextafter(LIMITS.min_repeat_penalty, 0.0)), text(math.nextafter(LIMITS.max_repeat_penalty, 2e3)),
           "0.0", "nan")),
    Limit("repeat-last-n", "--repeat-last-n", "-R", (str(LIMITS.min_repeat_last_n), "0", str(LIMITS.max_repeat_last_n)),
          (str(LIMITS.min_repeat_last_n - 1), str(LIMITS.max_repeat_last_n + 1))),
    Limit("threads-one-thread-target", "--threads", "-T", ("1",), ("0", "2")),
    Limit("threads-pooled-target", "--threads", "-T",
          ("1", str(LIMITS.threads_allowed(load_target("g4dual").hardware_threads))),
          ("0", str(LIMITS.threads_allowed(load_target("g4dual").hardware_threads) + 1)), target="g4dual"),
]


LENGTH_FLAGS = ("-n", "--n-predict", "-N")  # given with -n 3, they would be refused as two lengths


def run_args(limit: Limit, value: str) -> list[str]:
    steps = [] if limit.toolkit_flag in LENGTH_FLAGS else ["-n", "3"]
    return ["run-qemu", "--target", limit.target, "-s", "7", *steps, limit.toolkit_flag, value]


def engine_args(limit: Limit, model: Path, value: str) -> list[str]:
    steps = [] if limit.engine_flag in LENGTH_FLAGS else ["-n", "3"]
    return [str(model), *steps, limit.engine_flag, value]


def engine_model(limit: Limit, cache: Path, bundled_model_paths: tuple[Path, Path]) -> Path:
    checkpoint, tokenizer = bundled_model_paths
    return convert(open_input(checkpoint, tokenizer), load_target(limit.target), cache).path


def one_error_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    assert len(lines) in (1, 2) and lines[0].startswith("error: "), lines  # an error, maybe a hint
    assert len(lines) == 1 or lines[1].startswith("hint: "), lines
    return lines[0]


@pytest.mark.parametrize("limit", LIMIT_CASES, ids=[c.label for c in LIMIT_CASES])
def test_accepted_boundaries_run_in_the_engine(limit: Limit, cache: Path,
                                               bundled_model_paths: tuple[Path, Path]) -> None:
    profile = load_target(limit.target)
    engine = cached_build(profile, cache).engine
    model = engine_model(limit, cache, bundled_model_paths)
    for value in limit.accepted:
        result = cli(*run_args(limit, value), cache_dir=cache)
        assert result.returncode == 0, (value, result.stderr.decode(errors="replace"))
        assert b"peak engine memory" in result.stderr, value  # the engine ran to its end
        ran = run_user(profile, engine, engine_args(limit, model, value), timeout=120)
        assert ran.returncode == 0, (value, ran.stderr.decode(errors="replace"))  # the value itself, too


@pytest.mark.parametrize("limit", LIMIT_CASES, ids=[c.label for c in LIMIT_CASES])
def test_first_refused_values_are_refused_by_both(limit: Limit, cache: Path,
                                                  bundled_model_paths: tuple[Path, Path]) -> None:
    profile = load_target(limit.target)
    engine = cached_build(profile, cache).engine
    model = engine_model(limit, cache, bundled_model_paths)
    for value in limit.refused:
        toolkit = cli(*run_args(limit, value), cache_dir=cache)
        assert toolkit.returncode == 2, (value, toolkit.stderr.decode(errors="replace"))
        one_error_line(toolkit.stderr)
        assert toolkit.stdout == b""
        ran = run_user(profile, engine, engine_args(limit, model, value), timeout=120)
        assert ran.returncode == 2, (value, ran.stderr.decode(errors="replace"))
        assert len(ran.stderr.decode(errors="replace").strip().splitlines()) == 1, ran.stderr
        one_error_line(ran.stderr)
        assert ran.stdout == b""


def test_engine_threads_limit_is_the_toolkits(cache: Path) -> None:
    """PPCLLM_MAX_THREADS in every rendered config header is max(1, hardware threads) * 8."""
    for name in ("host", "g4", "g4dual", "xenon"):
        profile = load_target(name)
        header = (cached_build(profile, cache).engine.parent / "src" / "ppcllm_config.h").read_text()
        assert f"#define PPCLLM_MAX_THREADS {max(1, profile.hardware_threads) * 8}\n" in header, name


def test_engine_usage_names_the_ranges(cache: Path) -> None:
    engine = cached_build(load_target("host"), cache).engine
    usage = subprocess.run([str(engine)], capture_output=True, check=False).stderr.decode()
    assert f"[0, {LIMITS.max_steps}]" in usage and f"[{LIMITS.min_ctx}, {LIMITS.max_ctx}]" in usage
    assert f"[{LIMITS.min_temperature:g}, {LIMITS.max_temperature:g}]" in usage
    assert f"[0, {LIMITS.max_n_predict}]" in usage and f"[{LIMITS.min_min_p:g}, {LIMITS.max_min_p:g}]" in usage
    assert f"[{LIMITS.min_repeat_penalty:g}, {LIMITS.max_repeat_penalty:g}]" in usage
