"""The converted model file: the one place that knows its layout (mirrored by templates/loader).

Layout, every integer and float in the file's byte order (``endian``):

    offset  size  field
    0       8     magic "PPCLLM\\0\\0" (bytes, order-free)
    8       4     byte-order mark 0x0A0B0C0D: bytes 0A 0B 0C 0D = big-endian, 0D 0C 0B 0A = little
    12      4     format version (FORMAT_VERSION)
    16      4     header size (HEADER_SIZE)
    20      4     tensor alignment in bytes (ALIGNMENT)
    24      8     file size in bytes
    32      4     number of tensor table entries
    36      28    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (u32 each)
    64      4     shared classifier (0 or 1)
    68      4     rope theta (f32)
    72      4     rms norm epsilon (f32)
    76      52    reserved, zero
    128     64*n  tensor table, sorted by offset: name (32 bytes, NUL padded ASCII), dtype (u32),
                  ndim (u32), dims[3] (u32), reserved (u32), offset (u64)
    ...           tensor data, each at a multiple of ALIGNMENT, zero padding between

dtype 0 is f32; dtype 1 is raw bytes (the tokenizer blob, llama2.c tokenizer.bin layout in the
file's byte order).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .models import Model, ModelConfig
from .models.llama2c import parse_tokenizer, tokenizer_bytes

MAGIC = b"PPCLLM\0\0"
BOM = 0x0A0B0C0D
FORMAT_VERSION = 1
HEADER_SIZE = 128
ENTRY_SIZE = 64
ALIGNMENT = 64
NAME_BYTES = 32
DTYPE_F32 = 0
DTYPE_BYTES = 1
TOKENIZER_TENSOR = "tokenizer"
ENDIANS = {"big": ">", "little": "<"}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    dims: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.dims)) * (4 if self.dtype == DTYPE_F32 else 1)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _layout(model: Model, tok_blob: bytes) -> list[TensorEntry]:
    shapes: list[tuple[str, int, tuple[int, ...]]] = [
        (name, DTYPE_F32, tuple(t.shape)) for name, t in model.tensors.items()
    ]
    shapes.append((TOKENIZER_TENSOR, DTYPE_BYTES, (len(tok_blob),)))
    offset = _align(HEADER_SIZE + ENTRY_SIZE * len(shapes))
    entries = []
    for name, dtype, dims in shapes:
        entry = TensorEntry(name, dtype, dims, offset)
        entries.append(entry)
        offset = _align(offset + entry.nbytes)
    return entries


def encode(model: Model, endian: str) -> bytes:
    """The converted file's bytes for ``model`` in byte order ``endian`` ('big' or 'little')."""
    bo = ENDIANS[endian]
    cfg = model.config
    tok_blob = tokenizer_bytes(model.tokenizer, bo)
    entries = _layout(model, tok_blob)
    last = entries[-1]
    file_size = last.offset + last.nbytes
    out = bytearray(file_size)
    struct.pack_into(bo + "8sIIIIQI7IIff", out, 0, MAGIC, BOM, FORMAT_VERSION, HEADER_SIZE, ALIGNMENT,
                     file_size, len(entries), cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                     cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len, int(cfg.shared_classifier),
                     cfg.rope_theta, cfg.norm_eps)
    for i, entry in enumerate(entries):
        dims = tuple(entry.dims) + (0,) * (3 - len(entry.dims))
        struct.pack_into(bo + f"{NAME_BYTES}sII3IIQ", out, HEADER_SIZE + i * ENTRY_SIZE,
                         entry.name.encode("ascii"), entry.dtype, len(entry.dims), *dims, 0, entry.offset)
        if entry.dtype == DTYPE_BYTES:
            payload = tok_blob
        else:
            payload = np.ascontiguousarray(model.tensors[entry.name], dtype=bo + "f4").tobytes()
        out[entry.offset:entry.offset + entry.nbytes] = payload
    return bytes(out)


def sniff(data: bytes) -> bool:
    """True when ``data`` starts like a converted file."""
    return data[:len(MAGIC)] == MAGIC


def file_endian(data: bytes, source: str) -> str:
    mark = data[8:12]
    for endian, bo in ENDIANS.items():
        if mark == struct.pack(bo + "I", BOM):
            return endian
    raise InputError(f"{source}: byte-order mark {mark.hex()} is invalid", "re-create the file with `ppc-llm convert`")


def decode(data: bytes, source: str) -> Model:
    """Parse a converted file back into a Model, checking every size against the file."""
    if len(data) < HEADER_SIZE or not sniff(data):
        raise InputError(f"{source}: not a ppc-llm converted file", "create one with `ppc-llm convert`")
    bo = ENDIANS[file_endian(data, source)]
    fields = struct.unpack_from(bo + "8sIIIIQI7IIff", data, 0)
    version, header_size, alignment, file_size, n_entries = (int(v) for v in fields[2:7])
    dims = [int(v) for v in fields[7:14]]
    shared, theta, eps = bool(fields[14]), float(fields[15]), float(fields[16])
    if version != FORMAT_VERSION:
        raise InputError(f"{source}: format version {version}, this toolkit reads version {FORMAT_VERSION}",
                         "re-create the file with this version's `ppc-llm convert`")
    if header_size != HEADER_SIZE or file_size != len(data) or alignment == 0:
        raise InputError(f"{source}: header says {file_size} bytes, file has {len(data)}",
                         "the file is truncated or damaged: re-create it with `ppc-llm convert`")
    config = ModelConfig(dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6],
                         shared_classifier=shared, rope_theta=theta, norm_eps=eps)
    config.validate(source)
    entries = _read_table(data, bo, n_entries, source)
    tensors: dict[str, np.ndarray] = {}
    expected = config.tensor_shapes()
    for name, shape in expected.items():
        entry = entries.get(name)
        if entry is None or entry.dtype != DTYPE_F32 or entry.dims != shape:
            raise InputError(f"{source}: tensor {name} is missing or has the wrong shape (want {shape})")
        raw = np.frombuffer(data, dtype=bo + "f4", count=int(np.prod(shape)), offset=entry.offset)
        tensors[name] = raw.astype(np.float32).reshape(shape)
    tok = entries.get(TOKENIZER_TENSOR)
    if tok is None or tok.dtype != DTYPE_BYTES:
        raise InputError(f"{source}: no embedded tokenizer", "re-create the file with `ppc-llm convert --tokenizer`")
    tokenizer = parse_tokenizer(data[tok.offset:tok.offset + tok.nbytes], source, bo)
    if tokenizer.vocab_size != config.vocab_size:
        raise InputError(f"{source}: embedded tokenizer has {tokenizer.vocab_size} tokens, model has {config.vocab_size}")
    return Model(config, tensors, tokenizer)


def _read_table(data: bytes, bo: str, n_entries: int, source: str) -> dict[str, TensorEntry]:
    if HEADER_SIZE + n_entries * ENTRY_SIZE > len(data):
        raise InputError(f"{source}: tensor table of {n_entries} entries runs past the end of the file")
    entries: dict[str, TensorEntry] = {}
    for i in range(n_entries):
        raw_name, dtype, ndim, d0, d1, d2, _, offset = struct.unpack_from(
            bo + f"{NAME_BYTES}sII3IIQ", data, HEADER_SIZE + i * ENTRY_SIZE)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if not 1 <= ndim <= 3:
            raise InputError(f"{source}: tensor {name} has {ndim} dimensions")
        entry = TensorEntry(name, dtype, (d0, d1, d2)[:ndim], offset)
        if offset % ALIGNMENT or offset + entry.nbytes > len(data) or name in entries:
            raise InputError(f"{source}: tensor {name} lies outside the file, is misaligned or repeated")
        entries[name] = entry
    return entries


def read_any(path: Path, tokenizer_path: Path | None) -> Model:
    """Read a converted file or a llama2.c checkpoint (which then needs ``tokenizer_path``)."""
    from .models.llama2c import read_bytes, read_checkpoint, read_tokenizer

    data = read_bytes(path, "checkpoint")
    if sniff(data):
        return decode(data, str(path))
    if tokenizer_path is None:
        raise InputError(f"{path} is a llama2.c checkpoint, which needs its tokenizer",
                         "pass --tokenizer tok512.bin (or the tokenizer.bin it was trained with)")
    return read_checkpoint(path, read_tokenizer(tokenizer_path))
