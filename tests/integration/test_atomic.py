"""Atomic outputs: convert, build and release write beside the output and rename; a run ended by
SIGINT, SIGTERM or a full disk leaves the previous output byte for byte and no temporary file.
The signal arrives at a fixed point ($PPC_LLM_TEST_FAULT, toolkit/interrupt.py): with the new
output complete but not yet in place, the worst moment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import CATALOGUE
from toolkit import format as fmt

from .conftest import cli

CHECKPOINT = Path(__file__).resolve().parents[2] / "toolkit" / "data" / "models" / "stories260K.bin"
TOKENIZER = CHECKPOINT.with_name("tok512.bin")
PREVIOUS = fmt.MAGIC + b"previous"  # a file ppc-llm wrote (its magic): the only kind convert replaces


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones too), relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupted(args: list[str], fault: str, cache: Path | None = None) -> tuple[int, str]:
    result = cli(*args, env=dict(os.environ, PPC_LLM_TEST_FAULT=fault), cache_dir=cache)
    return result.returncode, result.stderr.decode(errors="replace")


@pytest.mark.parametrize("signal", ["INT", "TERM"])
def test_convert_interrupted_keeps_previous_output(signal: str, tmp_path: Path) -> None:
    with _case(f"atomic/convert/{signal}"):
        out = tmp_path / "out"
        out.mkdir()
        (out / "model.bin").write_bytes(PREVIOUS)
        before = tree(tmp_path)
        code, err = interrupted(["convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", str(out / "model.bin")],
                                f"write:{signal}")
        assert code == 130 and "interrupted" in err and "Traceback" not in err, err
        assert tree(tmp_path) == before


@pytest.mark.parametrize("signal", ["INT", "TERM"])
def test_build_interrupted_keeps_previous_build(signal: str, tmp_path: Path) -> None:
    with _case(f"atomic/build/{signal}"):
        out = tmp_path / "build"
        first = cli("build", "--target", "host", "-o", str(out))
        assert first.returncode == 0, first.stderr.decode()
        before = tree(tmp_path)
        code, err = interrupted(["build", "--target", "host", "-o", str(out)], f"publish:{signal}")
        assert code == 130 and "Traceback" not in err, err
        assert tree(tmp_path) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_release_interrupted_keeps_previous_release(tmp_path: Path, cache: Path) -> None:
    with _case("atomic/release/TERM"):
        dist = tmp_path / "dist"
        first = cli("release", "--targets", "g3", "-o", str(dist), cache_dir=cache)
        assert first.returncode == 0, first.stderr.decode()
        before = tree(tmp_path)
        code, err = interrupted(["release", "--targets", "g3", "-o", str(dist)], "publish:TERM", cache)
        assert code == 130 and "Traceback" not in err, err
        assert tree(tmp_path) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


def test_convert_disk_full_keeps_previous_output(tmp_path: Path) -> None:
    """ENOSPC at the write (simulated here; test_catalogue fills a real tmpfs)."""
    with _case("atomic/convert/ENOSPC"):
        (tmp_path / "model.bin").write_bytes(PREVIOUS)
        before = tree(tmp_path)
        code, err = interrupted(["convert", str(CHECKPOINT), "-z", str(TOKENIZER), "-o", str(tmp_path / "model.bin")],
                                "write:ENOSPC")
        assert code == 3 and "No space left on device" in err and "Traceback" not in err, err
        assert tree(tmp_path) == before


class _case:
    """Count the row in the catalogue (interruptions are bad input too: a user's Ctrl-C)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        CATALOGUE[self.label] = False

    def __exit__(self, kind: object, *rest: object) -> None:
        CATALOGUE[self.label] = kind is None
