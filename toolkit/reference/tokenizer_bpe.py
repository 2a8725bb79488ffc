"""The engine's GPT-2 byte-level BPE tokenizer (GGUF vocabularies), written from its C, not from
the tokenizers library (the tests hold both to transformers' own GGUF tokenizer).

``encode``: control tokens are matched whole first (the longest at each byte), the text between
them is cut into pre-tokens by the vocabulary's pre-tokenizer (``models.bpe.PRE_GPT2`` ...,
llama.cpp's; with the engine's UTF-8 rules: a malformed byte is one code point of class "other"),
and each pre-token's bytes become byte tokens merged lowest rank first (the leftmost of equals);
under ``PRE_LLAMA3`` a pre-token that is a whole (non-control) token is that token. ``decode``: a
token prints its bytes as a C string, a control token nothing.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass

from ..models import Tokenizer
from ..format.blobs import CLASS_LETTER, CLASS_NUMBER, CLASS_PUNCT, CLASS_SPACE, class_ranges
from ..models.bpe import BPE, NO_TOKEN, PRE_DEFAULT, PRE_LLAMA3, PRE_QWEN2, PRE_SMOLLM
from .text import STOP_NAMES, as_bytes, c_string

__all__ = ["Vocab", "decode", "encode", "vocab"]

_OTHER = 0
_REPLACEMENT = 0xFFFD


@dataclass(frozen=True)
class Vocab:
    """A BPE vocabulary as the engine holds it."""

    pieces: tuple[bytes, ...]                    # C strings
    byte_tokens: tuple[int, ...]                 # 256 ids, NO_TOKEN: the byte is dropped
    special: frozenset[int]
    specials: tuple[tuple[bytes, int], ...]      # (piece, id) in the blob's order
    merges: dict[tuple[int, int], tuple[int, int]]  # (left, right) -> (rank, merged id)
    bos: int
    add_bos: bool
    stops: frozenset[int]
    pre: int
    whole: dict[bytes, int]                      # PRE_LLAMA3: piece -> id (the last of equals), non-control


@functools.lru_cache(maxsize=4)
def vocab(tokenizer: Tokenizer, bpe: BPE) -> Vocab:
    pieces = tuple(c_string(piece) for piece in tokenizer.pieces)
    specials = tuple((pieces[i], i) for i in bpe.special)
    merges: dict[tuple[int, int], tuple[int, int]] = {}
    for rank, (pair, merged) in enumerate(zip(bpe.merges, bpe.merged)):
        merges.setdefault(pair, (rank, merged))
    named = [_special_id(specials, name) for name in STOP_NAMES]
    stops = frozenset([bpe.eos_id, *(i for i in named if i >= 0)])
    special = frozenset(bpe.special)
    whole = {piece: i for i, piece in enumerate(pieces) if i not in special} if bpe.pre == PRE_LLAMA3 else {}
    return Vocab(pieces, bpe.byte_tokens, special, specials, merges, bpe.bos_id, bpe.add_bos, stops, bpe.pre,
                 whole)


def _special_id(specials: tuple[tuple[bytes, int], ...], name: bytes) -> int:
    """``ppcllm_special_id``: the first control token spelled ``name``, or -1."""
    return next((i for piece, i in specials if piece == name), -1)


@functools.lru_cache(maxsize=1)
def _class_table() -> tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]:
    ranges = class_ranges()
    return tuple(first for first, _, _ in ranges), ranges


def _class_of(cp: int) -> int:
    """``ppcllm_class_of``: letter, number, white space, punctuation or other (0)."""
    if cp == _REPLACEMENT:
        return _OTHER
    starts, ranges = _class_table()
    index = bisect.bisect_right(starts, cp) - 1
    if index >= 0 and cp <= ranges[index][1]:
        return ranges[index][2]
    return _OTHER


def _class(cp: int) -> int:
    """``ppcllm_class``: letter, number, white space or other (0: punctuation is other here)."""
    cls = _class_of(cp)
    return _OTHER if cls == CLASS_PUNCT else cls


def _utf8(s: bytes, at: int) -> tuple[int, int]:
    """``ppcllm_utf8``: (code point, length) at ``s[at:]``; a malformed byte alone as U+FFFD."""
    c = s[at]
    need = 1 if c < 0x80 else 2 if c & 0xE0 == 0xC0 else 3 if c & 0xF0 == 0xE0 else 4 if c & 0xF8 == 0xF0 else 0
    if need == 0 or need > len(s) - at:
        return _REPLACEMENT, 1
    cp = c if need == 1 else c & (0x1F, 0x0F, 0x07)[need - 2]
    for k in range(1, need):
        if s[at + k] & 0xC0 != 0x80:
            return _REPLACEMENT, 1
        cp = (cp << 6) | (s[at + k] & 0x3F)
    return cp, need


def _run_end(s: bytes, pos: int, cls: int) -> tuple[int, int]:
    """(end of the run of class ``cls`` from ``pos``, start of its last code point)."""
    last = pos
    while pos < len(s):
        cp, length = _utf8(s, pos)
        if _class(cp) != cls:
            break
        last, pos = pos, pos + length
    return pos, last


def _contraction(s: bytes) -> int:
    """Length of 's 't 'm 'd 're 've 'll at the start of ``s``, or 0."""
    if len(s) >= 2 and s[0] == ord("'") and s[1] in b"stmd":
        return 2
    if len(s) >= 3 and s[0] == ord("'") and s[1:3] in (b"re", b"ve", b"ll"):
        return 3
    return 0


def _pretoken_gpt2(s: bytes) -> int:
    """``ppcllm_pretoken_gpt2``: the length of the GPT-2 pre-token at the start of ``s`` (not empty)."""
    contraction = _contraction(s)
    if contraction:
        return contraction
    c, length = _utf8(s, 0)
    cls, pos = _class(c), 0
    if c == ord(" ") and length < len(s):
        following = _class(_utf8(s, length)[0])
        if following != CLASS_SPACE:
            cls, pos = following, length  # the optional leading space
    if cls != CLASS_SPACE:
        return _run_end(s, pos, cls)[0]
    end, last = _run_end(s, 0, CLASS_SPACE)
    if end == len(s):
        return end
    return length if last == 0 else last  # \s+(?!\S) leaves the last one to what follows


def _lower_ascii(cp: int) -> int:
    return cp | 0x20 if ord("A") <= cp <= ord("Z") else cp


def _contraction_any_case(s: bytes) -> int:
    """Length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at the start of ``s``, or 0."""
    if len(s) < 2 or s[0] != ord("'"):
        return 0
    c1, l1 = _utf8(s, 1)
    if chr(_lower_ascii(c1)) in "stmd":
        return 1 + l1
    if 1 + l1 < len(s):
        c2, l2 = _utf8(s, 1 + l1)
        if chr(_lower_ascii(c1)) + chr(_lower_ascii(c2)) in ("re", "ve", "ll"):
            return 1 + l1 + l2
    return 0


def _whitespace(s: bytes, length: int) -> int:
    """The llama3 regex's white-space alternatives at ``s`` (a white space, ``length`` bytes):
    \\s*[\\r\\n]+, then \\s+(?!\\S), then \\s+."""
    pos, count, last, after_newline = 0, 0, 0, 0
    while pos < len(s):
        cp, n = _utf8(s, pos)
        if _class(cp) != CLASS_SPACE:
            break
        last, pos, count = pos, pos + n, count + 1
        if cp in (0x0A, 0x0D):
            after_newline = pos
    if after_newline:
        return after_newline
    if count > 1 and pos < len(s):
        return last
    return pos if count else length


def _pretoken_llama3(s: bytes, digits: int) -> int:
    """``ppcllm_pretoken_llama3``: the length of the llama3 (``digits`` 3) or qwen2 (1) pre-token
    at the start of ``s``, as llama.cpp's unicode_regex_split_custom_llama3 cuts it."""
    contraction = _contraction_any_case(s)
    if contraction:
        return contraction
    c, length = _utf8(s, 0)
    cls = _class(c)
    following = _class(_utf8(s, length)[0]) if length < len(s) else -1
    if c not in (0x0A, 0x0D) and cls != CLASS_NUMBER and CLASS_LETTER in (cls, following):
        return _run_end(s, length, CLASS_LETTER)[0]  # [^\r\n\p{L}\p{N}]?\p{L}+
    if cls == CLASS_NUMBER:
        pos, count = 0, 0
        while pos < len(s) and count < digits:
            cp, n = _utf8(s, pos)
            if _class(cp) != CLASS_NUMBER:
                break
            pos, count = pos + n, count + 1
        return pos
    first = following if c == ord(" ") else cls
    if first not in (CLASS_SPACE, CLASS_LETTER, CLASS_NUMBER):  # ?[^\s\p{L}\p{N}]+[\r\n]*
        pos = _run_end(s, length, _OTHER)[0] if c == ord(" ") else _run_end(s, 0, _OTHER)[0]
        while pos < len(s) and s[pos] in b"\r\n":
            pos += 1
        return pos
    return _whitespace(s, length)


def _run_of(s: bytes, inside: Callable[[int], bool]) -> int:
    """The length of the run of code points at ``s`` that are all ``inside`` or all not."""
    first = inside(_utf8(s, 0)[0])
    pos = 0
    while pos < len(s):
        cp, n = _utf8(s, pos)
        if inside(cp) != first:
            break
        pos += n
    return pos


def _three_digits(s: bytes) -> int:
    """[0-9]{3} splits: 3 at a match, else the gap up to the next match (or all of ``s``)."""
    at = next((i for i in range(len(s) - 2) if s[i:i + 3].isdigit()), len(s))
    return 3 if at == 0 else at


def _pretoken(pre: int, s: bytes) -> int:
    """``ppcllm_pretoken``: the length of the pre-token at the start of ``s`` under ``pre``; a
    cascade of splits (PRE_SMOLLM, PRE_DEFAULT) cuts within the first piece of the one before."""
    if pre in (PRE_LLAMA3, PRE_QWEN2):
        return _pretoken_llama3(s, 3 if pre == PRE_LLAMA3 else 1)
    if pre == PRE_SMOLLM:
        c, length = _utf8(s, 0)
        if _class(c) == CLASS_NUMBER:
            return length
        return _pretoken_gpt2(s[:_run_of(s, lambda cp: _class(cp) == CLASS_NUMBER)])
    if pre == PRE_DEFAULT:
        s = s[:_run_of(s, lambda cp: _class_of(cp) == CLASS_PUNCT)]
        s = s[:_pretoken_gpt2(s)]
        s = s[:_run_of(s, lambda cp: _class(cp) == CLASS_NUMBER)]
        return _three_digits(s)
    return _pretoken_gpt2(s)


def _word(v: Vocab, piece: bytes) -> list[int]:
    """``ppcllm_bpe_word``: byte tokens, then the lowest-ranked adjacent pair merged until none."""
    if piece in v.whole:
        return [v.whole[piece]]
    tokens = [v.byte_tokens[b] for b in piece if v.byte_tokens[b] != NO_TOKEN]
    while True:
        best: tuple[int, int, int] | None = None  # (rank, index, merged)
        for index in range(len(tokens) - 1):
            found = v.merges.get((tokens[index], tokens[index + 1]))
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], index, found[1])
        if best is None:
            return tokens
        tokens[best[1]:best[1] + 2] = [best[2]]


def _segment(v: Vocab, text: bytes) -> list[int]:
    tokens: list[int] = []
    start = 0
    while start < len(text):
        length = _pretoken(v.pre, text[start:])
        tokens.extend(_word(v, text[start:start + length]))
        start += length
    return tokens


def _special_at(v: Vocab, text: bytes, at: int) -> tuple[int, int]:
    """``ppcllm_special_at``: (id, length) of the longest control token spelled at ``at``, or (-1, 0)."""
    best, best_len = -1, 0
    for piece, token in v.specials:
        if len(piece) > best_len and text.startswith(piece, at):
            best, best_len = token, len(piece)
    return best, best_len


def encode(tokenizer: Tokenizer, bpe: BPE, text: bytes | str) -> list[int]:
    """``ppcllm_encode_bpe``: token ids of ``text`` (a C string), BOS first when the vocabulary asks."""
    v = vocab(tokenizer, bpe)
    data = c_string(as_bytes(text))
    tokens = [v.bos] if v.add_bos else []
    start = index = 0
    while index < len(data):
        special, length = _special_at(v, data, index)
        if special < 0:
            index += 1
            continue
        tokens.extend(_segment(v, data[start:index]))
        tokens.append(special)
        index = start = index + length
    return tokens + _segment(v, data[start:])


def decode(tokenizer: Tokenizer, bpe: BPE, token: int) -> bytes:
    """``ppcllm_decode_bpe``: what the engine prints for ``token``."""
    v = vocab(tokenizer, bpe)
    return b"" if token in v.special else v.pieces[token]
