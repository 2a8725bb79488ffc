"""GGUF SentencePiece vocabularies (``tokenizer.ggml.model`` "llama": TinyLlama, Gemma): the
tokenizer data a Model carries besides its pieces and scores.

The pieces stay as GGUF stores them (spaces as U+2581, byte tokens spelled ``<0xXX>``), so the
engine looks the text up as llama.cpp does. How a converted file stores it:
``toolkit.format.blobs``; how it encodes: ``engine/tok_spm.c`` and ``toolkit/reference/tokenizer_spm.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bpe import NO_TOKEN

# GGUF's token types (tokenizer.ggml.token_type), as llama.cpp reads them
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPECIAL_TYPES = (CONTROL, USER_DEFINED, UNKNOWN)  # cut out of the text whole (parse_special)
# llama.cpp's defaults for a "llama" vocabulary whose metadata is silent
DEFAULT_BOS, DEFAULT_EOS = 1, 2
ESCAPED_SPACE = "\u2581"


@dataclass(frozen=True)
class SPM:
    types: tuple[int, ...]         # per token
    byte_tokens: tuple[int, ...]   # 256 ids: <0xXX>, else the byte as a piece, else NO_TOKEN
    bos_id: int
    eos_id: int
    add_bos: bool
    add_space_prefix: bool

    @property
    def special(self) -> tuple[int, ...]:
        """The tokens matched whole in a text: control, user-defined and unknown ones."""
        return tuple(i for i, t in enumerate(self.types) if t in SPECIAL_TYPES)


def byte_tokens(pieces: list[bytes]) -> tuple[int, ...]:
    """llama.cpp's byte_to_token: the token <0xXX>, else the one whose piece is the byte itself
    (the last of equal pieces, as its text-to-token map keeps), else NO_TOKEN."""
    index = {piece: i for i, piece in enumerate(pieces)}
    return tuple(index.get(f"<0x{b:02X}>".encode(), index.get(bytes([b]), NO_TOKEN)) for b in range(256))
