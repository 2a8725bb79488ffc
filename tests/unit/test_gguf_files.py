"""GGUF files as people have them: version 2 and 3, a data alignment other than 32, split files."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.format import codec
from toolkit.fuzz import tinygguf
from toolkit.models.gguf import read_gguf


def _converted(path: Path) -> bytes:
    return codec.encode(read_gguf(path, path.read_bytes()), "big")


@pytest.fixture(scope="module")
def v3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinygguf.write(tmp_path_factory.mktemp("gguf") / "v3.gguf")


def test_a_version_2_file_converts_as_its_version_3_twin(v3: Path, tmp_path: Path) -> None:
    """GGUF v2 differs from v3 only in the version word (v3 allowed big-endian files)."""
    data = bytearray(v3.read_bytes())
    assert data[4:8] == (3).to_bytes(4, "little")
    data[4:8] = (2).to_bytes(4, "little")
    v2 = tmp_path / "v2.gguf"
    v2.write_bytes(bytes(data))
    assert _converted(v2) == _converted(v3)


@pytest.mark.parametrize("alignment", [16, 64, 256])
def test_general_alignment_other_than_32_converts_the_same(v3: Path, tmp_path: Path, alignment: int) -> None:
    aligned = tinygguf.write(tmp_path / f"a{alignment}.gguf", alignment=alignment)
    assert aligned.read_bytes() != v3.read_bytes()
    assert _converted(aligned) == _converted(v3)


def test_a_part_of_a_split_model_is_refused_by_name(tmp_path: Path) -> None:
    part = tinygguf.write(tmp_path / "model-00001-of-00002.gguf", extra={"split.no": 0, "split.count": 2})
    with pytest.raises(InputError) as raised:
        read_gguf(part, part.read_bytes())
    assert "split into 2 GGUF files" in str(raised.value)
    assert "llama-gguf-split --merge" in str(raised.value.hint)


def test_a_split_count_of_one_is_a_whole_model(v3: Path, tmp_path: Path) -> None:
    whole = tinygguf.write(tmp_path / "whole.gguf", extra={"split.count": 1})
    assert _converted(whole) == _converted(v3)
