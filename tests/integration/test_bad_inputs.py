"""Bad inputs through the real programs: one clear line, a non-zero status, never a crash."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from toolkit import format as fmt
from toolkit.emulate import run_user
from toolkit.toolchain import Build

from .conftest import cli, target, write_variant


def zero_tail(data: bytearray) -> None:
    del data[len(data) // 2:]


def set_version(data: bytearray) -> None:
    struct.pack_into(">I", data, 12, fmt.FORMAT_VERSION + 1)


def break_magic(data: bytearray) -> None:
    data[0:4] = b"GGUF"


def table_outside(data: bytearray) -> None:
    struct.pack_into(">Q", data, fmt.HEADER_SIZE + 56, 1 << 40)


def huge_dim(data: bytearray) -> None:
    struct.pack_into(">I", data, 36, 0xFFFFFFFF)


def tokenizer_len(data: bytearray) -> None:
    (count,) = struct.unpack_from(">I", data, 32)
    base = fmt.HEADER_SIZE + (count - 1) * fmt.ENTRY_SIZE  # the tokenizer is the last entry
    (offset,) = struct.unpack_from(">Q", data, base + 56)
    struct.pack_into(">I", data, offset + 8, 0x7FFFFFFF)  # first token's length


CASES = [
    ("truncated", zero_tail, "truncated"),
    ("version", set_version, "format version"),
    ("magic", break_magic, "bad magic"),
    ("outside", table_outside, "outside the file"),
    ("hugedim", huge_dim, "config value out of range"),
    ("toklen", tokenizer_len, "token of invalid length"),
]


@pytest.mark.parametrize("label,edit,message", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("name", ["g4", "xenon"])
def test_engine_refuses_damaged_model(name: str, label: str, edit: object, message: str, tmp_path: Path,
                                      builds: dict[str, Build], models: dict[str, Path]) -> None:
    damaged = write_variant(tmp_path, models[name], f"{label}.bin", edit)
    result = run_user(target(name), builds[name].engine, [str(damaged), "-n", "4"], timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert result.stdout == b""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_wrong_byte_order_says_how_to_fix(builds: dict[str, Build], models: dict[str, Path]) -> None:
    result = run_user(target("g4"), builds["g4"].engine, [str(models["host"])], timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "little-endian but this machine is big-endian" in err and "ppc-llm convert --endian big" in err


@pytest.mark.parametrize("args", [["-t", "-1"], ["-p", "1.5"], ["-n", "-3"], ["-s", "x"], ["-q", "1"], ["-t"]])
def test_engine_refuses_bad_options(args: list[str], builds: dict[str, Build], models: dict[str, Path]) -> None:
    result = run_user(target("xenon"), builds["xenon"].engine, [str(models["xenon"]), *args], timeout=120)
    assert result.returncode == 2 and result.stdout == b""


def test_engine_missing_file(builds: dict[str, Build]) -> None:
    result = run_user(target("g4"), builds["g4"].engine, ["/nonexistent.bin"], timeout=120)
    assert result.returncode == 1 and b"cannot open model file" in result.stderr


def test_engine_handles_awkward_prompts(builds: dict[str, Build], models: dict[str, Path]) -> None:
    """Invalid UTF-8 and a prompt longer than the context are normal input, not crashes."""
    long_prompt = b"Once upon a time " * 60  # far more tokens than -n 40
    for prompt in (b"\xff\xfe bad \xc3", long_prompt, "caf\u00e9 \U0001f600".encode()):
        result = run_user(target("g4"), builds["g4"].engine, [str(models["g4"]), "-t", "0", "-n", "40", "-i", prompt],
                          timeout=300)
        assert result.returncode == 0, result.stderr.decode()


def test_cli_names_the_package_for_a_missing_emulator(tmp_path: Path, cache: Path, builds: dict[str, Build]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cc = target("g4").toolchain.cc
    os.symlink(os.path.realpath(__import__("shutil").which(cc)), bin_dir / cc)
    env = dict(os.environ, PATH=str(bin_dir))
    result = cli("run-qemu", "--target", "g4", "-n", "2", env=env, cache_dir=cache)
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "'qemu-ppc' is not installed" in err and "apt-get install qemu-user" in err
    assert result.stdout == b"" and "Traceback" not in err


def test_cli_names_the_package_for_a_missing_cross_compiler(tmp_path: Path, cache: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    result = cli("build", "--target", "xenon", "-o", str(tmp_path / "out"), env=env, cache_dir=cache)
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "gcc-powerpc64-linux-gnu" in err and not (tmp_path / "out").exists()


def test_cli_run_failure_is_reported(tmp_path: Path, cache: Path, models: dict[str, Path]) -> None:
    damaged = write_variant(tmp_path, models["g4"], "v.bin", set_version)
    result = cli("run-qemu", "--target", "g4", "--checkpoint", str(damaged), cache_dir=cache)
    assert result.returncode == 3  # the toolkit reads the file first and refuses it itself
    assert b"format version" in result.stderr
