"""Opening any model file by what its bytes are: a converted file, GGUF or a llama2.c checkpoint."""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import InputError
from ..models import Model
from .codec import decode
from .header import file_endian, sniff
from .layout import ENDIANS


def read_any(path: Path, tokenizer_path: Path | None) -> Model:
    """Read a converted file, a GGUF file or a llama2.c checkpoint (which then needs
    ``tokenizer_path``)."""
    from ..models.llama2c import read_bytes

    return parse_any(read_bytes(path, "checkpoint"), path, tokenizer_path)


def parse_any(data: bytes, path: Path, tokenizer_path: Path | None) -> Model:
    """``read_any`` over the file's bytes, read once."""
    from ..models import gguf
    from ..models.llama2c import default_tokenizer_for, parse_checkpoint, parse_config, read_tokenizer

    if sniff(data):
        return decode(data, str(path))
    if gguf.sniff(data) or path.suffix.lower() == ".gguf":  # a damaged .gguf: say so, not "llama2.c"
        return gguf.read_gguf(path, data)
    config = parse_config(data, str(path))
    tokenizer = read_tokenizer(tokenizer_path or default_tokenizer_for(config, str(path)), config.vocab_size)
    return parse_checkpoint(data, str(path), tokenizer)


def model_bound(head: bytes, source: str) -> int:
    """The largest model file that can start with ``head`` (``toolkit.inputs``): a converted file's
    header gives its size, a llama2.c header its exact size; GGUF is read from regular files only."""
    from ..models import gguf
    from ..models.llama2c import checkpoint_size, parse_config

    if sniff(head) and len(head) >= 32:
        return int(struct.unpack_from(ENDIANS[file_endian(head, source)] + "Q", head, 24)[0])
    if gguf.sniff(head):
        raise InputError(f"{source}: a GGUF file is read from a regular file only, not a pipe or device",
                         "save it to a file first")
    return checkpoint_size(parse_config(head, source))
