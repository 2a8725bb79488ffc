"""The llama2.c readers: shapes of the real stories260K, and damaged files refused clearly."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.models.llama2c import parse_tokenizer, read_checkpoint, read_tokenizer, tokenizer_bytes


def test_stories260k_shapes(bundled_model_paths: tuple[Path, Path]) -> None:
    checkpoint, tokenizer = bundled_model_paths
    model = read_checkpoint(checkpoint, read_tokenizer(tokenizer))
    cfg = model.config
    assert (cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len) == (
        64, 172, 5, 8, 4, 512, 512)
    assert cfg.shared_classifier and cfg.kv_dim == 32 and cfg.head_size == 8
    assert model.tensors["wk"].shape == (5, 32, 64)
    assert model.tokenizer.vocab_size == 512 and model.tokenizer.pieces[3] == b"<0x00>"


def test_tokenizer_round_trip(bundled_model_paths: tuple[Path, Path]) -> None:
    data = bundled_model_paths[1].read_bytes()
    tok = parse_tokenizer(data, "t")
    assert tokenizer_bytes(tok, "<") == data
    assert parse_tokenizer(tokenizer_bytes(tok, ">"), "t", ">") == tok


@pytest.mark.parametrize("cut", [0, 3, 27, 28, 1000, -4])
def test_truncated_checkpoint(bundled_model_paths: tuple[Path, Path], tmp_path: Path, cut: int) -> None:
    checkpoint, tokenizer = bundled_model_paths
    data = checkpoint.read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(InputError):
        read_checkpoint(path, read_tokenizer(tokenizer))


@pytest.mark.parametrize("field,value", [(0, 0), (0, -64), (3, 0), (3, 7), (6, 1 << 30)])
def test_bad_header_fields(bundled_model_paths: tuple[Path, Path], tmp_path: Path, field: int, value: int) -> None:
    checkpoint, tokenizer = bundled_model_paths
    data = bytearray(checkpoint.read_bytes())
    struct.pack_into("<i", data, 4 * field, value)
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError):
        read_checkpoint(path, read_tokenizer(tokenizer))


def test_missing_and_directory(tmp_path: Path, bundled_model_paths: tuple[Path, Path]) -> None:
    tok = read_tokenizer(bundled_model_paths[1])
    with pytest.raises(InputError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.bin", tok)
    with pytest.raises(InputError, match="is a directory"):
        read_checkpoint(tmp_path, tok)


def test_tokenizer_vocab_mismatch(bundled_model_paths: tuple[Path, Path]) -> None:
    tok = read_tokenizer(bundled_model_paths[1])
    smaller = type(tok)(tok.pieces[:100], tok.scores[:100], tok.max_token_length)
    with pytest.raises(InputError, match="tokenizer has 100 tokens"):
        read_checkpoint(bundled_model_paths[0], smaller)


@pytest.mark.parametrize("blob", [b"", b"\x07\x00\x00\x00\x00\x00\x80\x3f\xff\xff\xff\x7f",
                                  b"\x00\x00\x00\x00", b"\x07\x00\x00\x00\x00\x00"])
def test_bad_tokenizer_bytes(blob: bytes) -> None:
    with pytest.raises(InputError):
        parse_tokenizer(blob, "t")
