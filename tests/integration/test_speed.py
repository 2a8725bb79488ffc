"""Quantized weights, threads and the bench command, with the real cross-compilers and QEMU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from toolkit.emulate import EngineArgs, UserMode
from toolkit.toolchain import Build
from tests.helpers import GoldenCase

from .conftest import cli, target


@pytest.mark.parametrize("quant", ["q8_0", "q4_0"])
@pytest.mark.parametrize("name", ["g4", "xenon"])
def test_quantized_greedy_text_matches_the_reference(name: str, quant: str, cache: Path) -> None:
    """The greedy story from stories260K with quantized weights: the emulated program and the NumPy
    reference on the same quantized weights print the same text."""
    result = cli("run-qemu", "--target", name, "--quant", quant, "-t", "0", "-n", "160", "-i", "Once upon a time",
                 "--verify", cache_dir=cache)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "verified: 160 tokens identical" in err
    assert result.stdout.startswith(b"Once upon a time")


def test_quantized_output_is_the_same_on_every_target(cache: Path) -> None:
    outputs = {name: cli("run-qemu", "--target", name, "--quant", "q8_0", "-s", "5", "-n", "80", "-i", "Lily",
                         cache_dir=cache) for name in ("host", "g4", "xenon")}
    for name, result in outputs.items():
        assert result.returncode == 0, (name, result.stderr.decode())
    assert outputs["host"].stdout == outputs["g4"].stdout == outputs["xenon"].stdout


@pytest.mark.parametrize("threads", ["1", "2", "6"])
def test_xenon_threads_give_identical_output(threads: str, golden: list[GoldenCase], builds: dict[str, Build],
                                             models: dict[str, Path]) -> None:
    case = golden[-1]
    args = dataclasses.replace(case.args(models["xenon"]), threads=int(threads))
    result = UserMode(target("xenon")).run(builds["xenon"].engine, args, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
    assert f"{threads} thread".encode() in result.stderr


def test_single_thread_target_refuses_threads(builds: dict[str, Build], models: dict[str, Path]) -> None:
    result = UserMode(target("g4")).run(builds["g4"].engine, EngineArgs(models["g4"], steps=4, threads=2), timeout=120)
    assert result.returncode == 2 and b"no thread support" in result.stderr


def run_bench_json(cache: Path, *args: str) -> list[dict[str, object]]:
    result = cli("bench", "--shape", "stories260K", "--lengths", "2,4", "--json", *args, cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_bench_counts_and_projects_on_g4(cache: Path) -> None:
    rows = run_bench_json(cache, "--target", "g4", "--quant", "f32,q8_0")
    keys = {"quant", "kernel", "threads", "instructions_per_token", "critical_path_instructions_per_token",
            "bytes_per_token", "projected_tok_s", "ceiling_tok_s"}
    assert all(keys <= set(row) for row in rows)
    by = {(row["quant"], row["kernel"]): row for row in rows}
    base, simd, q8 = by[("f32", "scalar")], by[("f32", "altivec")], by[("q8_0", "altivec")]
    assert rows[0] is not None and rows[0]["kernel"] == "scalar"  # the baseline comes first
    assert float(simd["instructions_per_token"]) < float(base["instructions_per_token"])  # type: ignore[arg-type]
    assert float(q8["bytes_per_token"]) < float(base["bytes_per_token"]) * 0.7  # type: ignore[arg-type]
    # the 1 MiB f32 model streams through the 512 KiB L2: about its size per token
    assert 0.9e6 < float(base["bytes_per_token"]) < 1.4e6  # type: ignore[arg-type]
    profile = target("g4").bench
    assert profile is not None
    t = (profile.instruction_seconds * float(q8["critical_path_instructions_per_token"])  # type: ignore[arg-type]
         + profile.byte_seconds * float(q8["bytes_per_token"]))  # type: ignore[arg-type]
    assert abs(float(q8["projected_tok_s"]) - 1 / t) < 1e-6 * (1 / t)  # type: ignore[arg-type]


def test_bench_reports_the_critical_path_with_threads(cache: Path) -> None:
    rows = run_bench_json(cache, "--target", "xenon", "--quant", "q8_0", "--threads", "1,3")
    by = {(row["quant"], row["threads"]): row for row in rows}
    one, three = by[("q8_0", 1)], by[("q8_0", 3)]
    # one thread does the work (the default pool started at open and stopped by -T 1 leaves a trace)
    assert float(one["critical_path_instructions_per_token"]) > 0.99 * float(one["instructions_per_token"])  # type: ignore[arg-type]
    assert float(three["critical_path_instructions_per_token"]) < 0.8 * float(three["instructions_per_token"])  # type: ignore[arg-type]
