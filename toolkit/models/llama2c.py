"""Readers for Karpathy's llama2.c files: the legacy (version 0) checkpoint and tokenizer.bin.

Both are little-endian as published. Every count is checked against the file size before it is
trusted.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import Model, ModelConfig, Tensor, Tokenizer

HEADER = struct.Struct("<7i")
_MAX_TOKEN_BYTES = 1 << 16


def read_bytes(path: Path, what: str) -> bytes:
    """Read a whole input file, turning OS errors into one-line InputErrors."""
    if path.is_dir():
        raise InputError(f"{what} {path} is a directory, not a file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def parse_config(data: bytes, source: str) -> ModelConfig:
    if len(data) < HEADER.size:
        raise InputError(f"{source}: file is {len(data)} bytes, too short for a llama2.c header",
                         "expected a llama2.c checkpoint (.bin) as written by export.py")
    if data[:4] == b"ak42":
        raise InputError(f"{source}: versioned llama2.c export (magic 'ak42') is not supported",
                         "export the model with llama2.c's legacy format (version 0)")
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = HEADER.unpack_from(data)
    config = ModelConfig(dim, hidden, layers, heads, kv_heads, abs(vocab), seq_len,
                         shared_classifier=vocab > 0)
    config.validate(source)
    return config


def _expected_floats(config: ModelConfig) -> tuple[int, int]:
    """(floats before the classifier, floats of the classifier if unshared)."""
    shapes = config.tensor_shapes()
    body = sum(int(np.prod(shape)) for name, shape in shapes.items() if name != "wcls")
    freq_cis = config.seq_len * config.head_size  # two legacy halves of seq_len * head_size / 2
    cls = 0 if config.shared_classifier else config.vocab_size * config.dim
    return body + freq_cis, cls


def read_checkpoint(path: Path, tokenizer: Tokenizer, data: bytes | None = None) -> Model:
    """The checkpoint at ``path`` (``data``: its bytes, when the caller has read them already)."""
    data = read_bytes(path, "checkpoint") if data is None else data
    source = str(path)
    config = parse_config(data, source)
    body, cls = _expected_floats(config)
    expected = HEADER.size + 4 * (body + cls)
    if len(data) != expected:
        raise InputError(f"{source}: file is {len(data)} bytes but its header describes {expected}",
                         "the file is truncated or not a llama2.c checkpoint")
    if tokenizer.vocab_size != config.vocab_size:
        raise InputError(f"tokenizer has {tokenizer.vocab_size} tokens but {source} expects {config.vocab_size}",
                         "pass the tokenizer this checkpoint was trained with")
    floats = np.frombuffer(data, dtype="<f4", offset=HEADER.size).astype(np.float32)
    tensors: dict[str, Tensor] = {}
    offset = 0
    for name, shape in config.tensor_shapes().items():
        if name == "wcls":
            offset = body
        count = int(np.prod(shape))
        tensors[name] = floats[offset:offset + count].reshape(shape)
        offset += count
    return Model(config, tensors, tokenizer)


def read_tokenizer(path: Path) -> Tokenizer:
    data = read_bytes(path, "tokenizer")
    return parse_tokenizer(data, str(path))


def parse_tokenizer(data: bytes, source: str, byteorder: str = "<") -> Tokenizer:
    """Parse llama2.c tokenizer bytes: max_token_length, then (score f32, len i32, bytes) per token."""
    if len(data) < 4:
        raise InputError(f"{source}: tokenizer is {len(data)} bytes, too short", "expected a llama2.c tokenizer.bin")
    (max_len,) = struct.unpack_from(byteorder + "i", data, 0)
    if not 0 < max_len <= _MAX_TOKEN_BYTES:
        raise InputError(f"{source}: max token length {max_len} is out of range", "expected a llama2.c tokenizer.bin")
    entry = struct.Struct(byteorder + "fi")
    pieces: list[bytes] = []
    scores: list[float] = []
    offset = 4
    while offset < len(data):
        if offset + entry.size > len(data):
            raise InputError(f"{source}: truncated inside token {len(pieces)} (at byte {offset})")
        score, length = entry.unpack_from(data, offset)
        offset += entry.size
        if not 0 <= length <= max_len or offset + length > len(data):
            raise InputError(f"{source}: token {len(pieces)} has invalid length {length} (at byte {offset - 4})")
        pieces.append(data[offset:offset + length])
        scores.append(score)
        offset += length
    if not pieces:
        raise InputError(f"{source}: tokenizer has no tokens")
    return Tokenizer(tuple(pieces), tuple(scores), max_len)


def tokenizer_bytes(tokenizer: Tokenizer, byteorder: str) -> bytes:
    """Serialise a tokenizer in llama2.c layout with the given struct byte order ('<' or '>')."""
    entry = struct.Struct(byteorder + "fi")
    parts = [struct.pack(byteorder + "i", tokenizer.max_token_length)]
    for piece, score in zip(tokenizer.pieces, tokenizer.scores):
        parts.append(entry.pack(score, len(piece)))
        parts.append(piece)
    return b"".join(parts)
