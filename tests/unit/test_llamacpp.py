"""toolkit/llamacpp without running anything: what is taken from the sdist, what a missing tool
says, and how the ids and steps of llamaref's output are read (test_llamacpp.py builds and runs it)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from toolkit import llamacpp
from toolkit.errors import InputError, ToolMissingError


def _tar(path: Path, names: list[str]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))


def test_only_the_vendored_llama_cpp_is_extracted(tmp_path: Path) -> None:
    tarball = tmp_path / "sdist.tar.gz"
    _tar(tarball, [f"{llamacpp.VENDOR}/CMakeLists.txt", f"{llamacpp.VENDOR}/src/llama.cpp",
                   "llama_cpp_python-0.3.36/setup.py", f"{llamacpp.VENDOR}-other/x"])
    src = llamacpp._extract(tarball, tmp_path / "out")
    found = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert src == tmp_path / "out" / llamacpp.VENDOR
    assert found == [f"{llamacpp.VENDOR}/CMakeLists.txt", f"{llamacpp.VENDOR}/src/llama.cpp"]


def test_a_missing_build_tool_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(ToolMissingError) as caught:
        llamacpp._need("cmake", "cmake")
    assert caught.value.exit_code == 4 and "apt-get install cmake" in str(caught.value.hint)


def test_the_build_key_follows_the_program_and_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    key = llamacpp._key()
    monkeypatch.setattr(llamacpp, "CMAKE_FLAGS", (*llamacpp.CMAKE_FLAGS, "-DGGML_AVX=OFF"))
    assert llamacpp._key() != key and len(key) == 16


def _answer(stdout: bytes, code: int = 0) -> object:
    return lambda argv, **kw: subprocess.CompletedProcess(argv, code, stdout, b"boom")


def test_llamaref_output_is_read_as_ids_and_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ref = llamacpp.LlamaRef(tmp_path / "llamaref")
    monkeypatch.setattr(subprocess, "run", _answer(b"1 2 3\n\n42\n"))
    assert ref.tokenize(tmp_path / "m.gguf", ["abc", "", "x"]) == [[1, 2, 3], [], [42]]
    monkeypatch.setattr(subprocess, "run", _answer(b"28 4.1 0 0\n2 0.01 1 0.5\n"))
    assert ref.generate(tmp_path / "m.gguf", [1], 2) == [llamacpp.Step(28, 4.1, False), llamacpp.Step(2, 0.01, True, 0.5)]
    monkeypatch.setattr(subprocess, "run", _answer(b"", 1))
    with pytest.raises(InputError, match="boom"):
        ref.quantize(tmp_path / "a", tmp_path / "b", "Q8_0")
