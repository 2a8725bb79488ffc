"""llama2.c's tokenizer (run.c ``encode``, ``decode`` and ``safe_printf``), C-string quirks included.

A vocabulary is looked up as run.c looks it up: pieces are C strings, sorted by ``strcmp`` and
found by glibc's ``bsearch`` (so of duplicate pieces, the one bsearch lands on wins).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..models import Tokenizer
from .text import as_bytes, c_string

__all__ = ["BOS", "decode_piece", "encode"]

BOS = 1
"""Token id llama2.c prepends to every prompt; sampling it ends the generation."""

_NO_MERGE_SCORE = float(np.float32(-1e10))  # run.c: float best_score = -1e10;
_C_SPACE = frozenset(b" \t\n\v\f\r")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _bsearch(key: bytes, ordered: list[bytes]) -> int:
    """Index glibc's ``bsearch`` returns for ``key`` in ``ordered`` (strcmp order), or -1."""
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high) // 2
        if key < ordered[middle]:
            high = middle
        elif key > ordered[middle]:
            low = middle + 1
        else:
            return middle
    return -1


@dataclass(frozen=True)
class _Vocab:
    """A tokenizer as ``run.c`` sees it: C-string pieces and a ``str_lookup`` table."""

    pieces: tuple[bytes, ...]
    scores: tuple[float, ...]
    ids: dict[bytes, int]

    def lookup(self, text: bytes) -> int:
        """run.c ``str_lookup``: the id bsearch finds for ``text``, -1 when absent."""
        return self.ids.get(text, -1)


@functools.lru_cache(maxsize=8)
def _vocab(tokenizer: Tokenizer) -> _Vocab:
    pieces = tuple(c_string(piece) for piece in tokenizer.pieces)
    order = sorted(range(len(pieces)), key=lambda i: pieces[i])  # stable: ties in id order
    ordered = [pieces[i] for i in order]
    ids = {piece: order[_bsearch(piece, ordered)] for piece in set(pieces)}
    return _Vocab(pieces, tuple(tokenizer.scores), ids)


def _codepoint_tokens(vocab: _Vocab, text: bytes) -> list[int]:
    """run.c encode's UTF-8 loop: look up each codepoint, else fall back to byte tokens."""
    tokens: list[int] = []
    buffer = bytearray()
    for index, byte in enumerate(text):
        if byte & 0xC0 != 0x80:
            buffer.clear()
        buffer.append(byte)
        following = text[index + 1] if index + 1 < len(text) else 0
        if following & 0xC0 == 0x80 and len(buffer) < 4:
            continue
        found = vocab.lookup(bytes(buffer))
        tokens.extend([found] if found != -1 else [b + 3 for b in buffer])
        buffer.clear()
    return tokens


def _best_merge(vocab: _Vocab, tokens: list[int]) -> tuple[int, int]:
    """(index, merged id) of the highest-scoring adjacent pair in the vocab, or (-1, -1)."""
    best_score, best_id, best_index = _NO_MERGE_SCORE, -1, -1
    for index in range(len(tokens) - 1):
        merged = vocab.lookup(vocab.pieces[tokens[index]] + vocab.pieces[tokens[index + 1]])
        if merged != -1 and vocab.scores[merged] > best_score:
            best_score, best_id, best_index = vocab.scores[merged], merged, index
    return best_index, best_id


def encode(tokenizer: Tokenizer, text: bytes | str, bos: bool = True) -> list[int]:
    """run.c ``encode`` (without EOS): token ids for ``text`` (a C string: cut at a NUL)."""
    vocab = _vocab(tokenizer)
    data = c_string(as_bytes(text))
    tokens = [BOS] if bos else []
    if data and vocab.lookup(b" ") != -1:
        tokens.append(vocab.lookup(b" "))
    tokens.extend(_codepoint_tokens(vocab, data))
    bad = [token for token in tokens if token >= len(vocab.pieces)]
    if bad:
        raise UsageError(f"the prompt needs byte token {bad[0]} but the vocabulary has "
                         f"{len(vocab.pieces)} tokens")
    while True:
        index, merged = _best_merge(vocab, tokens)
        if index == -1:
            return tokens
        tokens[index:index + 2] = [merged]


def _scan_hex_byte(piece: bytes) -> int | None:
    """``sscanf(piece, "<0x%02hhX>", &byte)``: the byte when the conversion succeeds."""
    if not piece.startswith(b"<0x"):
        return None
    rest = piece[3:]
    index = 0
    while index < len(rest) and rest[index] in _C_SPACE:
        index += 1
    width, negative = 2, False
    if index < len(rest) and rest[index] in b"+-":
        negative = rest[index] == ord("-")
        index, width = index + 1, width - 1
    digits = bytearray()
    while width and index < len(rest) and rest[index] in _HEX_DIGITS:
        digits.append(rest[index])
        index, width = index + 1, width - 1
    if not digits:
        return None
    value = int(digits, 16)
    return (-value if negative else value) & 0xFF


def _safe_printf(piece: bytes) -> bytes:
    """What run.c ``safe_printf`` writes for the C string ``piece``."""
    if len(piece) == 1 and not (0x20 <= piece[0] <= 0x7E or piece[0] in _C_SPACE):
        return b""
    return piece


def decode_piece(tokenizer: Tokenizer, prev: int, token: int) -> bytes:
    """The bytes run.c prints for ``token`` following ``prev`` (``decode`` + ``safe_printf``)."""
    piece = _vocab(tokenizer).pieces[token]
    if prev == BOS and piece.startswith(b" "):
        piece = piece[1:]
    byte = _scan_hex_byte(piece)
    if byte is not None:
        piece = bytes([byte]) if byte else b""  # byte_pieces: the byte, then NUL
    return _safe_printf(piece)

