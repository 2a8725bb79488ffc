"""llama2.c compatibility: the published golden outputs, byte for byte, on every target."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.emulate import UserMode
from toolkit.toolchain import Build
from tests.helpers import GoldenCase, golden_params, require_case

from .conftest import TARGETS, cli, target


@pytest.mark.parametrize("case", golden_params())
@pytest.mark.parametrize("name", TARGETS)
def test_engine_matches_golden(name: str, case: GoldenCase | None, builds: dict[str, Build],
                               models: dict[str, Path]) -> None:
    case = require_case(case)
    result = UserMode(target(name)).run(builds[name].engine, case.args(models[name]), timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
    assert b"achieved tok/s" in result.stderr


@pytest.mark.parametrize("name", ["g4", "xenon"])
def test_run_qemu_from_llama2c_checkpoint(name: str, golden: list[GoldenCase], cache: Path,
                                          bundled_model_paths: tuple[Path, Path]) -> None:
    """The CLI path a user types, with an original little-endian checkpoint and its tokenizer."""
    case = golden[-1]
    checkpoint, tokenizer = bundled_model_paths
    result = cli("run-qemu", "--target", name, "--checkpoint", str(checkpoint), "--tokenizer", str(tokenizer),
                 *case.engine_args(), cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected  # stdout carries the program's text only
    assert b"achieved tok/s" in result.stderr


def test_run_qemu_default_model_with_verify(golden: list[GoldenCase], cache: Path) -> None:
    """No model given: the bundled stories260K; --verify runs the NumPy reference too."""
    case = golden[0]
    result = cli("run-qemu", "--target", "g4", *case.engine_args(), "--verify", cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
    assert b"verified" in result.stderr


def test_run_qemu_converted_file_needs_no_tokenizer(golden: list[GoldenCase], cache: Path, tmp_path: Path,
                                                    bundled_model_paths: tuple[Path, Path]) -> None:
    checkpoint, tokenizer = bundled_model_paths
    converted = tmp_path / "stories260K.be.bin"
    made = cli("convert", str(checkpoint), "--tokenizer", str(tokenizer), "--endian", "big", "-o", str(converted))
    assert made.returncode == 0, made.stderr.decode()
    case = golden[-1]
    result = cli("run-qemu", "--target", "xenon", "--checkpoint", str(converted), *case.engine_args(), "--verify",
                 cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected


def test_run_qemu_host_converts_to_little_endian(golden: list[GoldenCase], cache: Path) -> None:
    case = golden[0]
    result = cli("run-qemu", "--target", "host", *case.engine_args(), cache_dir=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
