"""The engine's GGUF SentencePiece tokenizer (engine/tok_spm.c), written from llama.cpp's SPM
tokenizer (llama-vocab.cpp): the tests hold both to llama.cpp itself.

``encode``: control, user-defined and unknown tokens are cut out first (the longest piece first,
each at its leftmost places in what is left); each fragment between them gets a space prefix when
the vocabulary asks for one and the fragment starts the text or follows such a token, its spaces
become U+2581, its UTF-8 characters (by lead byte) are merged pairwise, the pair that makes the
token of the highest score first (the leftmost of equals); a symbol that is no token becomes its
bytes' byte tokens. ``decode``: what llama.cpp prints for a token.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass

from ..errors import UsageError
from ..models import Tokenizer
from ..models.bpe import NO_TOKEN
from ..models.spm import BYTE, NORMAL, SPM, USER_DEFINED
from .text import STOP_NAMES, as_bytes, c_string

__all__ = ["Vocab", "decode", "encode", "vocab"]

_SPACE, _ESCAPED = b" ", "\u2581".encode()
_HEX = "0123456789abcdefABCDEF"
_UTF8_LEN = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4)


@dataclass(frozen=True)
class Vocab:
    """A SentencePiece vocabulary as the engine holds it."""

    pieces: tuple[bytes, ...]                # C strings
    scores: tuple[float, ...]
    index: dict[bytes, int]                  # piece -> the last id of equals
    specials: tuple[tuple[bytes, int], ...]  # longest first, then by id
    spm: SPM
    stops: frozenset[int]


@functools.lru_cache(maxsize=4)
def vocab(tokenizer: Tokenizer, spm: SPM) -> Vocab:
    pieces = tuple(c_string(piece) for piece in tokenizer.pieces)
    index = {piece: i for i, piece in enumerate(pieces)}
    special = [i for i in spm.special if pieces[i]]
    specials = tuple((pieces[i], i) for i in sorted(special, key=lambda i: (-len(pieces[i]), i)))
    named = [next((i for piece, i in specials if piece == name), -1) for name in STOP_NAMES]
    stops = frozenset([spm.eos_id, *(i for i in named if i >= 0)])
    return Vocab(pieces, tokenizer.scores, index, specials, spm, stops)


def _partition(v: Vocab, text: bytes) -> list[int | bytes]:
    """The text as special tokens (ids) and the fragments between them (bytes)."""
    owner: list[int | None] = [None] * len(text)  # id at a special token's first byte, -1 inside one
    for piece, token in v.specials:
        i, size = 0, len(piece)
        while i + size <= len(text):
            if text.startswith(piece, i) and all(o is None for o in owner[i:i + size]):
                owner[i:i + size] = [token] + [-1] * (size - 1)
                i += size
            else:
                i += 1
    parts: list[int | bytes] = []
    i = 0
    while i < len(text):
        o = owner[i]
        if o is not None:
            parts.append(o)
            i += len(v.pieces[o])
            continue
        j = i
        while j < len(text) and owner[j] is None:
            j += 1
        parts.append(text[i:j])
        i = j
    return parts


def _merge(v: Vocab, text: bytes) -> list[bytes]:
    """The fragment's characters merged, highest score first (the leftmost of equals)."""
    spans: list[list[int]] = []  # [start, length]
    at = 0
    while at < len(text):
        size = min(_UTF8_LEN[text[at] >> 4], len(text) - at)
        spans.append([at, size])
        at += size
    nxt = [i + 1 if i + 1 < len(spans) else -1 for i in range(len(spans))]
    prv = [i - 1 for i in range(len(spans))]
    ver = [0] * len(spans)
    heap: list[tuple[float, int, int, int, int]] = []

    def push(left: int) -> None:
        right = nxt[left]
        token = v.index.get(text[spans[left][0]:spans[left][0] + spans[left][1] + spans[right][1]])
        if token is not None:
            heapq.heappush(heap, (-v.scores[token], left, token, ver[left], ver[right]))

    for i in range(len(spans) - 1):
        push(i)
    while heap:
        _, left, _token, left_ver, right_ver = heapq.heappop(heap)
        right = nxt[left]
        if ver[left] != left_ver or right < 0 or ver[right] != right_ver:
            continue
        spans[left][1] += spans[right][1]
        ver[left] += 1
        ver[right] += 1
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prv[nxt[right]] = left
        if prv[left] >= 0:
            push(prv[left])
        if nxt[left] >= 0:
            push(left)
    out, i = [], 0 if spans else -1
    while i >= 0:
        out.append(text[spans[i][0]:spans[i][0] + spans[i][1]])
        i = nxt[i]
    return out


def _fragment(v: Vocab, text: bytes, prefix: bool) -> list[int]:
    ids: list[int] = []
    for symbol in _merge(v, ((_SPACE if prefix else b"") + text).replace(_SPACE, _ESCAPED)):
        token = v.index.get(symbol)
        if token is not None:
            ids.append(token)
            continue
        for b in symbol:
            if v.spm.byte_tokens[b] == NO_TOKEN:
                raise UsageError(f"byte 0x{b:02x} has no token in this vocabulary")
            ids.append(v.spm.byte_tokens[b])
    return ids


def encode(tokenizer: Tokenizer, spm: SPM, text: bytes | str) -> list[int]:
    """The engine's ``ppcllm_spm_encode`` (the text up to its first NUL, as a C string)."""
    v = vocab(tokenizer, spm)
    ids = [spm.bos_id] if spm.add_bos else []
    after_special = True
    for part in _partition(v, c_string(as_bytes(text))):
        if isinstance(part, int):
            ids.append(part)
            after_special = True
        else:
            ids += _fragment(v, part, spm.add_space_prefix and after_special)
            after_special = False
    return ids


def decode(tokenizer: Tokenizer, spm: SPM, token: int) -> bytes:
    """What the engine prints for ``token``."""
    piece, kind = c_string(tokenizer.pieces[token]), spm.types[token]
    if kind == NORMAL:
        return piece.replace(_ESCAPED, _SPACE)
    if kind == USER_DEFINED:
        return piece
    digits = piece[3:5]
    if kind == BYTE and len(piece) == 6 and all(chr(d) in _HEX for d in digits):
        return bytes([int(digits, 16)])
    return b""
