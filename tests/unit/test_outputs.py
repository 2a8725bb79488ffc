"""toolkit.outputs and toolkit.inputs: what an output path may hold, inputs inside outputs, and
bounded reads of streams (no processes: FIFOs fed by a thread)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from toolkit.errors import InputError, UsageError
from toolkit.inputs import read_input
from toolkit.outputs import (OWNER_FILE, check_inputs_outside, check_output_dir, check_output_file,
                             write_owner_manifest)

MAGIC = b"PPCLLM\0\0"


def owned(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    write_owner_manifest(folder, "test")


def test_new_and_empty_folders_are_fine(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")


def test_our_folder_is_fine_and_lists_everything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    owned(out, {"a": b"1", "src/b.c": b"2", "src/deep/c.h": b"3"})
    check_output_dir(out)
    record = json.loads((out / OWNER_FILE).read_text())
    assert record["files"] == ["a", "src/b.c", "src/deep/c.h"] and record["tool"] == "ppc-llm"


@pytest.mark.parametrize("extra", ["user.txt", "src/user.txt", "newdir/"])
def test_anything_unlisted_is_refused(tmp_path: Path, extra: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    owned(out, {"a": b"1", "src/b.c": b"2"})
    if extra.endswith("/"):
        (out / extra).mkdir()
    else:
        (out / extra).write_text("mine")
    with pytest.raises(UsageError, match="did not write"):
        check_output_dir(out)


@pytest.mark.parametrize("manifest", [b"not json", b'{"tool": "other", "files": []}', b'{"tool": "ppc-llm"}', b"[]"])
def test_a_foreign_or_broken_manifest_is_not_ours(tmp_path: Path, manifest: bytes) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("x")
    (out / OWNER_FILE).write_bytes(manifest)
    with pytest.raises(UsageError, match="did not write"):
        check_output_dir(out)


def test_a_manifest_that_is_a_symlink_is_not_ours(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    owned(real, {"a": b"1"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("x")
    (out / OWNER_FILE).symlink_to(real / OWNER_FILE)
    with pytest.raises(UsageError, match="did not write"):
        check_output_dir(out)


def test_non_folders_are_refused_by_kind(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    for name, kind in (("file", "a file"), ("link", "a symbolic link"), ("fifo", "a FIFO")):
        with pytest.raises(UsageError, match=kind):
            check_output_dir(tmp_path / name)


def test_file_outputs(tmp_path: Path) -> None:
    check_output_file(tmp_path / "new.bin", MAGIC)
    (tmp_path / "ours.bin").write_bytes(MAGIC + b"rest")
    check_output_file(tmp_path / "ours.bin", MAGIC)
    (tmp_path / "theirs.bin").write_bytes(b"PPCLLM")  # shorter than the magic
    with pytest.raises(UsageError, match="not a file ppc-llm wrote"):
        check_output_file(tmp_path / "theirs.bin", MAGIC)
    (tmp_path / "link.bin").symlink_to(tmp_path / "ours.bin")
    with pytest.raises(UsageError, match="symbolic link"):
        check_output_file(tmp_path / "link.bin", MAGIC)


def test_a_path_through_a_file_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        check_output_file(tmp_path / "file" / "out.bin", MAGIC)


def test_inputs_inside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "deep").mkdir(parents=True)
    (out / "deep" / "model.bin").write_text("m")
    (tmp_path / "outside.bin").write_text("o")
    os.symlink(out / "deep" / "model.bin", tmp_path / "alias.bin")
    check_inputs_outside(out, [tmp_path / "outside.bin", None])
    check_inputs_outside(tmp_path / "absent", [tmp_path / "outside.bin"])
    for given in (out / "deep" / "model.bin", tmp_path / "alias.bin", out):
        with pytest.raises(UsageError, match="would replace the input"):
            check_inputs_outside(out, [given])


def feed(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        try:
            with path.open("wb") as handle:
                handle.write(data)
        except BrokenPipeError:
            pass
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_stream_within_its_bound_is_read_whole(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    data = bytes(range(256)) * 5000
    feed(fifo, data)
    seen: list[bytes] = []
    assert read_input(fifo, "input", lambda head: seen.append(head) or len(data)) == data
    assert seen == [data[:128]]


def test_stream_past_its_bound_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    feed(fifo, bytes(10_000))
    with pytest.raises(InputError, match="goes on past the 9,999 bytes"):
        read_input(fifo, "input", lambda head: 9_999)


def test_regular_file_ignores_the_bound_and_folders_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc" * 100)
    assert read_input(tmp_path / "f", "input", lambda head: 1) == b"abc" * 100
    with pytest.raises(InputError, match="directory"):
        read_input(tmp_path, "input", lambda head: 1)
    with pytest.raises(InputError, match="does not exist"):
        read_input(tmp_path / "none", "input", lambda head: 1)
