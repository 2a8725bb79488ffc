"""Text as the C engine sees it: NUL-terminated byte strings."""

from __future__ import annotations

__all__ = ["STOP_NAMES", "as_bytes", "c_string"]

# control tokens that end a reply besides eos, when a GGUF vocabulary has them (engine/tokenizer.c's)
STOP_NAMES = (b"<|endoftext|>", b"<|im_end|>", b"<|eot_id|>", b"<end_of_turn>")


def c_string(data: bytes) -> bytes:
    """The bytes C sees through a ``char*``: everything up to the first NUL."""
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def as_bytes(text: bytes | str) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)
