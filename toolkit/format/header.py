"""The 128-byte header of a converted file (layout in ``layout``): written, read and checked."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..models import Activations, Model, ModelConfig
from .layout import (ALIGNMENT, BOM, BPE_TENSOR, CHAT_TENSOR, DTYPE_BYTES, DTYPE_Q4_1, ENDIANS, ENTRY_SIZE,
                     FLAG_CHATML, FLAG_FLOAT_ACTIVATIONS, FLAG_QK_NORM, FLAG_QKV_BIAS, FLAG_ROPE_FREQS,
                     FORMAT_VERSION, HEADER_FORMAT, HEADER_SIZE, MAGIC,
                     QUANT_NAMES, QUANT_NAMES_TO_CODE, RECREATE, SPM_TENSOR, TOKENIZER_BPE, TOKENIZER_LLAMA2C,
                     TOKENIZER_SPM, TOKENIZER_TENSOR)
from .tensors import TensorEntry, read_table

RECREATE_NEWER = "re-create the file with this version's `ppc-llm convert`"


def sniff(data: bytes) -> bool:
    """True when ``data`` starts like a converted file."""
    return data[:len(MAGIC)] == MAGIC


def file_endian(data: bytes, source: str) -> str:
    mark = data[8:12]
    for endian, bo in ENDIANS.items():
        if mark == struct.pack(bo + "I", BOM):
            return endian
    raise InputError(f"{source}: byte-order mark {mark.hex()} is invalid", RECREATE)


def _flags(model: Model) -> int:
    return (FLAG_FLOAT_ACTIVATIONS if model.activations is Activations.FLOAT32 else 0) | \
        (FLAG_CHATML if model.chat is not None else 0) | (FLAG_QKV_BIAS if model.config.qkv_bias else 0) | \
        (FLAG_ROPE_FREQS if model.config.rope_freqs else 0) | (FLAG_QK_NORM if model.config.qk_norm else 0)


def write_header(out: bytearray, bo: str, model: Model, quant: str, file_size: int, n_entries: int) -> None:
    """The header of ``model``'s file into ``out``; ``quant``: the quantization of most matrices."""
    cfg = model.config
    struct.pack_into(bo + HEADER_FORMAT, out, 0, MAGIC, BOM, FORMAT_VERSION, HEADER_SIZE, ALIGNMENT,
                     file_size, n_entries, cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                     cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len, int(cfg.shared_classifier),
                     cfg.rope_theta, cfg.norm_eps, QUANT_NAMES_TO_CODE[quant],
                     _tokenizer_kind(model), _flags(model), cfg.head_dim)


def _tokenizer_kind(model: Model) -> int:
    return TOKENIZER_BPE if model.bpe is not None else TOKENIZER_SPM if model.spm is not None else TOKENIZER_LLAMA2C


@dataclass(frozen=True)
class Header:
    """What the header and tensor table of a converted file say (checked against the file's
    size), without reading a tensor: what ``run-qemu`` needs to know about a model."""

    endian: str
    config: ModelConfig
    quant: str                 # the header's weight quantization
    bpe: bool                  # GPT-2 byte-level BPE tokenizer
    spm: bool                  # GGUF SentencePiece tokenizer (neither: llama2.c's)
    chat: bool                 # a chat template (the "chat" blob)
    activations: Activations   # what the block-quantized matrices multiply
    file_size: int
    entries: dict[str, TensorEntry]


def read_header(data: bytes, file_size: int, source: str) -> Header:
    """The checked header of a converted file of ``file_size`` bytes; ``data`` is the file or a
    prefix of it holding the header and the tensor table (``header_prefix_size``)."""
    if file_size < HEADER_SIZE or len(data) < HEADER_SIZE or not sniff(data):
        raise InputError(f"{source}: not a ppc-llm converted file", "create one with `ppc-llm convert`")
    endian = file_endian(data, source)
    bo = ENDIANS[endian]
    fields = struct.unpack_from(bo + HEADER_FORMAT, data, 0)
    version, header_size, alignment, stated_size, n_entries = (int(v) for v in fields[2:7])
    dims = [int(v) for v in fields[7:14]]
    shared, theta, eps, quant_code = bool(fields[14]), float(fields[15]), float(fields[16]), int(fields[17])
    tok_kind, flags, head_dim = int(fields[18]), int(fields[19]), int(fields[20])
    if version != FORMAT_VERSION:
        raise InputError(f"{source}: format version {version}, this toolkit reads version {FORMAT_VERSION}",
                         RECREATE_NEWER)
    damaged = "the file is truncated or damaged: re-create it with `ppc-llm convert`"
    if header_size != HEADER_SIZE or alignment == 0:
        raise InputError(f"{source}: header size {header_size} or alignment {alignment} is invalid "
                         f"(this format has {HEADER_SIZE} and a nonzero alignment)", damaged)
    if stated_size != file_size:
        raise InputError(f"{source}: header says {stated_size} bytes, file has {file_size}", damaged)
    config = ModelConfig(dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6],
                         shared_classifier=shared, rope_theta=theta, norm_eps=eps,
                         qkv_bias=bool(flags & FLAG_QKV_BIAS), rope_freqs=bool(flags & FLAG_ROPE_FREQS),
                         head_dim=head_dim, qk_norm=bool(flags & FLAG_QK_NORM))
    config.validate(source)
    if quant_code not in QUANT_NAMES:
        raise InputError(f"{source}: unknown weight quantization code {quant_code}", RECREATE_NEWER)
    if tok_kind not in (TOKENIZER_LLAMA2C, TOKENIZER_BPE, TOKENIZER_SPM) or flags > 31:
        raise InputError(f"{source}: unknown tokenizer kind {tok_kind} or flags {flags}", RECREATE_NEWER)
    activations = Activations.FLOAT32 if flags & FLAG_FLOAT_ACTIVATIONS else Activations.INT8
    if quant_code == DTYPE_Q4_1 and activations is not Activations.FLOAT32:
        raise InputError(f"{source}: q4_1 weights without the float-activation flag (GGUF models only)", RECREATE)
    entries = read_table(data, bo, n_entries, file_size, source)
    chat = bool(flags & FLAG_CHATML)
    kind_blob = {TOKENIZER_BPE: [BPE_TENSOR], TOKENIZER_SPM: [SPM_TENSOR]}.get(tok_kind, [])
    needed = [TOKENIZER_TENSOR] + kind_blob + ([CHAT_TENSOR] if chat else [])
    for name in needed:
        if name not in entries or entries[name].dtype != DTYPE_BYTES:
            raise InputError(f"{source}: no embedded {name} data", RECREATE)
    return Header(endian, config, QUANT_NAMES[quant_code], tok_kind == TOKENIZER_BPE, tok_kind == TOKENIZER_SPM, chat,
                  activations,
                  file_size, entries)


def header_prefix_size(data: bytes) -> int:
    """How many bytes of a converted file ``read_header`` needs, from its first HEADER_SIZE."""
    if len(data) < HEADER_SIZE or not sniff(data):
        return HEADER_SIZE
    try:
        bo = ENDIANS[file_endian(data, "")]
    except InputError:
        return HEADER_SIZE
    n_entries = int(struct.unpack_from(bo + "I", data, 32)[0])
    return HEADER_SIZE + ENTRY_SIZE * n_entries


def read_header_file(path: Path) -> Header:
    """``read_header`` of the file at ``path``, reading only its header and tensor table."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(HEADER_SIZE)
            want = header_prefix_size(data)
            if want <= size:
                data += handle.read(want - len(data))
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from None
    return read_header(data, size, str(path))
