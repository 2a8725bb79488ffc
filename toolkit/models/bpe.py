"""GPT-2 byte-level BPE data as the engine reads it (the ``bpe`` blob of a converted file).

The vocabulary's pieces live in the ordinary tokenizer blob, as raw bytes (GGUF stores GPT-2
pieces through the byte-to-unicode table; ``convert`` undoes it). This blob adds what encoding
needs, every integer a u32 in the file's byte order:

    reserved (0), n_special, n_merges, n_ranges, bos id, eos id, add_bos (0/1), reserved
    byte_tokens[256]           token id of every single byte (NO_TOKEN: none, the byte is dropped)
    special[n_special]         ids of control tokens, matched whole in the text
    merges[n_merges]           (left id, right id, rank, merged id), sorted by (left, right)
    ranges[n_ranges]           (first, last, class) code point ranges: 1 letter (\\p{L}),
                               2 number (\\p{N}), 3 white space (\\s); sorted, disjoint
"""

from __future__ import annotations

import struct
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError

CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE = 1, 2, 3
# Unicode's White_Space property (what \s matches in the tokenizers library's regex)
WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
HEADER = 8
NO_TOKEN = 0xFFFFFFFF  # in byte_tokens: the vocabulary has no token for this byte (it is dropped)


@dataclass(frozen=True)
class BPE:
    byte_tokens: tuple[int, ...]          # 256 ids
    special: tuple[int, ...]              # control token ids
    merges: tuple[tuple[int, int], ...]   # in rank order
    merged: tuple[int, ...]               # result id of each merge
    bos_id: int
    eos_id: int
    add_bos: bool


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode table, inverted: printable stand-in character -> byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars)}


def piece_bytes(piece: str, source: str) -> bytes:
    """A byte-level piece (GPT-2 stand-in characters) back to its raw bytes."""
    table = byte_decoder()
    try:
        return bytes(table[ch] for ch in piece)
    except KeyError:
        raise InputError(f"{source}: token {piece!r} is not a GPT-2 byte-level piece",
                         "is the tokenizer model really gpt2?") from None


@lru_cache(maxsize=1)
def class_ranges() -> tuple[tuple[int, int, int], ...]:
    """(first, last, class) for letters, numbers and white space, from Python's Unicode tables."""
    spaces = {c for first, last in WHITE_SPACE for c in range(first, last + 1)}
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if cp in spaces:
            cls = CLASS_SPACE
        else:
            cat = unicodedata.category(chr(cp))
            cls = CLASS_LETTER if cat[0] == "L" else CLASS_NUMBER if cat[0] == "N" else 0
        if cls == 0:
            continue
        if ranges and ranges[-1][2] == cls and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, cls])
    return tuple((a, b, c) for a, b, c in ranges)


def blob(bpe: BPE, byteorder: str) -> bytes:
    """The ``bpe`` blob in ``byteorder`` ('<' or '>')."""
    ranges = class_ranges()
    order = sorted(range(len(bpe.merges)), key=lambda r: bpe.merges[r])
    words = [0, len(bpe.special), len(bpe.merges), len(ranges),
             bpe.bos_id, bpe.eos_id, int(bpe.add_bos), 0]
    words += list(bpe.byte_tokens) + list(bpe.special)
    for rank in order:
        words += [bpe.merges[rank][0], bpe.merges[rank][1], rank, bpe.merged[rank]]
    for first, last, cls in ranges:
        words += [first, last, cls]
    return struct.pack(f"{byteorder}{len(words)}I", *words)


def parse_blob(data: bytes, byteorder: str, vocab_size: int, source: str) -> BPE:
    """The inverse of ``blob`` (the ranges are the engine's business and are not kept)."""
    if len(data) < 4 * (HEADER + 256) or len(data) % 4:
        raise _bad(source, "is truncated")
    return parse_words(struct.unpack(f"{byteorder}{len(data) // 4}I", data), vocab_size, source)


def _bad(source: str, what: str) -> InputError:
    return InputError(f"{source}: BPE tokenizer data {what}", "re-create the file with `ppc-llm convert`")


def parse_words(words: Sequence[int], vocab_size: int, source: str) -> BPE:
    """``parse_blob`` on the blob's words. Linear in the blob: each merge and range is one slice
    of its own few words (slicing the tail first would copy it once per merge)."""
    flags, n_special, n_merges, n_ranges, bos, eos, add_bos = words[:7]
    if len(words) != HEADER + 256 + n_special + 4 * n_merges + 3 * n_ranges:
        raise _bad(source, "has the wrong size")
    ids = words[HEADER:HEADER + 256 + n_special]
    base = HEADER + 256 + n_special
    quads = [words[base + 4 * i:base + 4 * i + 4] for i in range(n_merges)]
    if any(i >= vocab_size for i in ids[256:]) or any(vocab_size <= i != NO_TOKEN for i in ids[:256]) or \
            any(max(q[0], q[1], q[3]) >= vocab_size for q in quads):
        raise _bad(source, "names a token outside the vocabulary")
    if bos >= vocab_size or eos >= vocab_size or add_bos > 1 or flags:
        raise _bad(source, "has a bos / eos id, the add_bos flag or the reserved word out of range")
    if any((a[0], a[1]) >= (b[0], b[1]) for a, b in zip(quads, quads[1:])):
        raise _bad(source, "has merges not sorted by (left, right) or repeated")
    base += 4 * n_merges
    ranges = [words[base + 3 * i:base + 3 * i + 3] for i in range(n_ranges)]
    if any(r[0] > r[1] for r in ranges) or any(a[1] >= b[0] for a, b in zip(ranges, ranges[1:])):
        raise _bad(source, "has character class ranges not sorted or overlapping")
    ranked = sorted(quads, key=lambda q: q[2])
    return BPE(tuple(ids[:256]), tuple(ids[256:]),
               tuple((q[0], q[1]) for q in ranked), tuple(q[3] for q in ranked), bos, eos, bool(add_bos))


def chat_blob(default_system: str | None) -> bytes:
    """The ``chat`` blob: a flag byte (1: the template has a default system prompt), the prompt."""
    if default_system is None:
        return b"\0"
    return b"\1" + default_system.encode("utf-8")


def parse_chat_blob(data: bytes, source: str) -> str | None:
    if not data or data[0] not in (0, 1):
        raise InputError(f"{source}: chat template data is malformed", "re-create the file with `ppc-llm convert`")
    try:
        return data[1:].decode("utf-8") if data[0] == 1 else None
    except UnicodeDecodeError:
        raise InputError(f"{source}: chat default system prompt is not UTF-8") from None
