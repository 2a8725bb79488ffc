"""GPT-2 byte-level BPE vocabularies: the tokenizer data a Model carries besides its pieces.

The vocabulary's pieces live in the Model's ``Tokenizer``, as raw bytes (GGUF stores GPT-2
pieces through the byte-to-unicode table, which ``piece_bytes`` undoes). ``BPE`` adds what
encoding needs. How a converted file stores it: ``toolkit.format.blobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError

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
