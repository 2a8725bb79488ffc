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

# Pre-tokenizers (how a text is cut before BPE), as llama.cpp's llama-vocab.cpp names and defines them:
#   PRE_GPT2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
#   PRE_SMOLLM   each \p{N} alone first, then PRE_GPT2 on the rest
#   PRE_LLAMA3   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
#                \s*[\r\n]+|\s+(?!\S)|\s+ ; a pre-token that is a whole vocabulary token is not merged
#   PRE_QWEN2    PRE_LLAMA3's regex with \p{N} (one digit at a time), merges always applied
#   PRE_DEFAULT  [\p{P}$+<=>^~|]+ first, then PRE_GPT2, then \p{N}+, then [0-9]{3} (llama.cpp's
#                choice for a file without tokenizer.ggml.pre)
PRE_GPT2, PRE_SMOLLM, PRE_LLAMA3, PRE_QWEN2, PRE_DEFAULT = 0, 1, 2, 3, 4
PRE_NAMES: dict[str, int] = {
    "gpt-2": PRE_GPT2, "phi-2": PRE_GPT2, "mpt": PRE_GPT2, "olmo": PRE_GPT2,
    "smollm": PRE_SMOLLM, "starcoder": PRE_SMOLLM, "refact": PRE_SMOLLM,
    "llama3": PRE_LLAMA3, "llama-v3": PRE_LLAMA3, "llama-bpe": PRE_LLAMA3, "falcon3": PRE_LLAMA3,
    "qwen2": PRE_QWEN2, "deepseek-r1-qwen": PRE_QWEN2, "stablelm2": PRE_QWEN2,
    "default": PRE_DEFAULT,
}


@dataclass(frozen=True)
class BPE:
    byte_tokens: tuple[int, ...]          # 256 ids
    special: tuple[int, ...]              # control token ids
    merges: tuple[tuple[int, int], ...]   # in rank order
    merged: tuple[int, ...]               # result id of each merge
    bos_id: int
    eos_id: int
    add_bos: bool
    pre: int                              # PRE_GPT2 ...


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
