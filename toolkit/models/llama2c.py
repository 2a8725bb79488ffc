"""Readers for Karpathy's llama2.c files: the legacy (version 0) checkpoint and tokenizer.bin.

Both are little-endian as published. Every count is checked against the file size before it is
trusted.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs import read_input
from ..resources import llama2_tokenizer
from . import Model, ModelConfig, Tensor, Tokenizer

HEADER = struct.Struct("<7i")
_MAX_TOKEN_BYTES = 1 << 16
MAX_VOCAB = 1 << 24  # ModelConfig.validate's bound
LLAMA2_VOCAB = 32000  # stories15M / 42M / 110M: the bundled tokenizer.bin


def read_bytes(path: Path, what: str) -> bytes:
    """Read a whole model file once (a pipe or device too, bounded by the size its header
    allows), OS errors as one-line InputErrors."""
    from ..format import model_bound

    return read_input(path, what, lambda head: model_bound(head, str(path)))


def read_tokenizer_bytes(path: Path, vocab_size: int = MAX_VOCAB) -> bytes:
    """Read a tokenizer.bin once (a stream bounded by its token length and ``vocab_size``)."""
    return read_input(path, "tokenizer", lambda head: tokenizer_bound(head, str(path), vocab_size))


def tokenizer_bound(head: bytes, source: str, vocab_size: int = MAX_VOCAB) -> int:
    """The largest tokenizer.bin of ``vocab_size`` tokens whose first bytes are ``head``."""
    return 4 + vocab_size * (8 + _max_token_length(head, source, "<"))


def _max_token_length(data: bytes, source: str, byteorder: str) -> int:
    if len(data) < 4:
        raise InputError(f"{source}: tokenizer is {len(data)} bytes, too short", "expected a llama2.c tokenizer.bin")
    (max_len,) = struct.unpack_from(byteorder + "i", data, 0)
    if not 0 < max_len <= _MAX_TOKEN_BYTES:
        raise InputError(f"{source}: max token length {max_len} is out of range", "expected a llama2.c tokenizer.bin")
    return int(max_len)


def default_tokenizer_for(config: ModelConfig, source: str) -> Path:
    """The tokenizer a checkpoint given without one uses: llama2.c's bundled Llama 2 vocabulary
    for a 32000-token model (as llama2.c's `run` does), said on stderr; else an InputError."""
    if config.vocab_size != LLAMA2_VOCAB:
        raise InputError(f"{source} is a llama2.c checkpoint of {config.vocab_size} tokens, which needs its tokenizer",
                         "pass --tokenizer tok512.bin (or the tokenizer.bin it was trained with)")
    print(f"note: {source} has the Llama 2 vocabulary: using the bundled tokenizer.bin "
          "(llama2.c's, Llama 2 Community License; --tokenizer to give another)", file=sys.stderr, flush=True)
    return llama2_tokenizer()


def checkpoint_size(config: ModelConfig) -> int:
    """The exact size of a legacy llama2.c checkpoint of ``config``."""
    body, cls = _expected_floats(config)
    return HEADER.size + 4 * (body + cls)


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


def read_checkpoint(path: Path, tokenizer: Tokenizer) -> Model:
    return parse_checkpoint(read_bytes(path, "checkpoint"), str(path), tokenizer)


def parse_checkpoint(data: bytes, source: str, tokenizer: Tokenizer) -> Model:
    """A legacy llama2.c checkpoint's bytes (read once) with its tokenizer, as a Model."""
    config = parse_config(data, source)
    body, _ = _expected_floats(config)
    expected = checkpoint_size(config)
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


def read_tokenizer(path: Path, vocab_size: int = MAX_VOCAB) -> Tokenizer:
    data = read_tokenizer_bytes(path, vocab_size)
    return parse_tokenizer(data, str(path))


def parse_tokenizer(data: bytes, source: str, byteorder: str = "<") -> Tokenizer:
    """Parse llama2.c tokenizer bytes: max_token_length, then (score f32, len i32, bytes) per token."""
    max_len = _max_token_length(data, source, byteorder)
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
