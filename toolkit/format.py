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
    76      4     weight quantization of most matrices: a dtype code (0 f32, 2 q8_0, 3 q4_0, 5 q4_1)
    80      4     tokenizer kind: 0 llama2.c (sentencepiece scores), 1 GPT-2 byte-level BPE
    84      4     flags: bit 0 float activations (block-quantized matrices multiply float32
                  activations, GGUF models; else int8-quantized ones), bit 1 ChatML chat template
    88      40    reserved, zero
    128     64*n  tensor table, sorted by offset: name (32 bytes, NUL padded ASCII), dtype (u32),
                  ndim (u32), dims[3] (u32), reserved (u32), offset (u64)
    ...           tensor data, each at a multiple of ALIGNMENT, zero padding between

dtype 0 is f32; dtype 1 is raw bytes (the tokenizer blob, llama2.c tokenizer.bin layout in the
file's byte order; for BPE vocabularies the pieces are raw bytes and the "bpe" blob follows,
layout in toolkit/models/bpe.py; ChatML models have a "chat" blob: a flag byte and the default
system prompt); dtypes 2 (q8_0), 3 (q4_0) and 5 (q4_1) are block-quantized codes, whose scales
are the tensor NAME.scales of dtype 4 (fp16), and for q4_1 whose mins are NAME.mins (fp16, same
shape) (layout in toolkit/quant.py). Norms always stay f32; each matrix (MATRICES) is f32 or
block-quantized, as its table entry says.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import quant as qmod
from .errors import InputError, UsageError
from .models import Model, ModelConfig, Tensor
from .models import bpe as bpemod
from .models.llama2c import parse_tokenizer, tokenizer_bytes
from .quant import QuantTensor

MAGIC = b"PPCLLM\0\0"
BOM = 0x0A0B0C0D
FORMAT_VERSION = 5  # 5: the bpe blob's first word is reserved (no digit-splitting flag)
HEADER_SIZE = 128
ENTRY_SIZE = 64
ALIGNMENT = 64
NAME_BYTES = 32
DTYPE_F32 = 0
DTYPE_BYTES = 1
DTYPE_Q8_0 = 2
DTYPE_Q4_0 = 3
DTYPE_F16 = 4
DTYPE_Q4_1 = 5
QUANT_DTYPES = {"f32": DTYPE_F32, "q8_0": DTYPE_Q8_0, "q4_0": DTYPE_Q4_0}  # what --quant makes
BLOCK_DTYPES = {"q8_0": DTYPE_Q8_0, "q4_0": DTYPE_Q4_0, "q4_1": DTYPE_Q4_1}
QUANT_NAMES = {code: name for name, code in {**QUANT_DTYPES, **BLOCK_DTYPES}.items()}
TOKENIZER_LLAMA2C, TOKENIZER_BPE = 0, 1
FLAG_FLOAT_ACTIVATIONS, FLAG_CHATML = 1, 2
MINS_SUFFIX = ".mins"
BPE_TENSOR = "bpe"
CHAT_TENSOR = "chat"
MATRICES = ("tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls")
SCALES_SUFFIX = ".scales"
TOKENIZER_TENSOR = "tokenizer"
ENDIANS = {"big": ">", "little": "<"}
HEADER_FORMAT = "8sIIIIQI7IIffIII"
QUANT_NAMES_TO_CODE = {"f32": DTYPE_F32, **BLOCK_DTYPES}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    dims: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        if self.dtype in BLOCK_DTYPES.values():
            return qmod.code_nbytes(QUANT_NAMES[self.dtype], self.dims)
        return int(np.prod(self.dims)) * {DTYPE_F32: 4, DTYPE_F16: 2}.get(self.dtype, 1)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


Payload = tuple[str, int, tuple[int, ...], bytes]


def _payloads(model: Model, quant: str | None, bo: str) -> list[Payload]:
    """(name, dtype, dims, bytes) of every tensor in file order, matrices quantized as asked
    (None: as they are)."""
    out: list[Payload] = []
    for name, tensor in model.tensors.items():
        wanted = (tensor.kind if isinstance(tensor, QuantTensor) else "f32") if quant is None else quant
        if name in MATRICES and wanted != "f32":
            q = _as_quant(tensor, wanted)
            out.append((name, BLOCK_DTYPES[wanted], q.shape, qmod.encode_codes(q)))
            out.append((name + SCALES_SUFFIX, DTYPE_F16, qmod.scales_shape(q.shape), qmod.encode_scales(q, bo)))
            if q.mins is not None:
                out.append((name + MINS_SUFFIX, DTYPE_F16, qmod.scales_shape(q.shape),
                            qmod.encode_scales(q, bo, q.mins)))
        else:
            dense = qmod.dequantize(tensor) if isinstance(tensor, QuantTensor) else tensor
            out.append((name, DTYPE_F32, tuple(dense.shape), _f32_bytes(dense, bo)))
    return out


def _as_quant(tensor: Tensor, quant: str) -> QuantTensor:
    if isinstance(tensor, QuantTensor):
        return tensor if tensor.kind == quant else qmod.quantize(qmod.dequantize(tensor), quant)
    return qmod.quantize(tensor, quant)


def _f32_bytes(array: np.ndarray, bo: str) -> bytes:
    return np.ascontiguousarray(array, dtype=bo + "f4").tobytes()


def _blobs(model: Model, bo: str) -> list[Payload]:
    blobs = [(TOKENIZER_TENSOR, tokenizer_bytes(model.tokenizer, bo))]
    if model.bpe is not None:
        blobs.append((BPE_TENSOR, bpemod.blob(model.bpe, bo)))
    if model.chat:
        blobs.append((CHAT_TENSOR, bpemod.chat_blob(model.chat_system)))
    return [(name, DTYPE_BYTES, (len(blob),), blob) for name, blob in blobs]


def _flags(model: Model) -> int:
    return (FLAG_FLOAT_ACTIVATIONS if model.float_activations else 0) | (FLAG_CHATML if model.chat else 0)


def encode(model: Model, endian: str, quant: str | None = None) -> bytes:
    """The converted file's bytes for ``model`` in byte order ``endian`` ('big' or 'little'),
    its matrices quantized as ``quant`` ('f32', 'q8_0' or 'q4_0'; None: as they are)."""
    if quant is not None and quant not in QUANT_DTYPES:
        raise UsageError(f"--quant {quant}: must be one of {', '.join(QUANT_DTYPES)}")
    if quant is not None and model.float_activations and quant != model.quant:
        raise UsageError(f"--quant {quant}: a GGUF model keeps its own quantization ({model.quant})",
                         "leave out --quant")
    bo = ENDIANS[endian]
    cfg = model.config
    payloads = _payloads(model, quant, bo) + _blobs(model, bo)
    offset = _align(HEADER_SIZE + ENTRY_SIZE * len(payloads))
    entries = []
    for name, dtype, dims, payload in payloads:
        entries.append(TensorEntry(name, dtype, dims, offset))
        offset = _align(offset + len(payload))
    file_size = entries[-1].offset + len(payloads[-1][3])
    out = bytearray(file_size)
    main_quant = QUANT_NAMES_TO_CODE[model.quant if quant is None else quant]
    struct.pack_into(bo + HEADER_FORMAT, out, 0, MAGIC, BOM, FORMAT_VERSION, HEADER_SIZE, ALIGNMENT,
                     file_size, len(entries), cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                     cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len, int(cfg.shared_classifier),
                     cfg.rope_theta, cfg.norm_eps, main_quant,
                     TOKENIZER_BPE if model.bpe is not None else TOKENIZER_LLAMA2C, _flags(model))
    for i, (entry, (_, _, _, payload)) in enumerate(zip(entries, payloads)):
        assert entry.nbytes == len(payload), entry.name
        dims = tuple(entry.dims) + (0,) * (3 - len(entry.dims))
        struct.pack_into(bo + f"{NAME_BYTES}sII3IIQ", out, HEADER_SIZE + i * ENTRY_SIZE,
                         entry.name.encode("ascii"), entry.dtype, len(entry.dims), *dims, 0, entry.offset)
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


@dataclass(frozen=True)
class Header:
    """What the header and tensor table of a converted file say (checked against the file's
    size), without reading a tensor: what ``run-qemu`` needs to know about a model."""

    endian: str
    config: ModelConfig
    quant: str                 # the header's weight quantization
    bpe: bool                  # GPT-2 byte-level BPE tokenizer (else llama2.c's)
    chat: bool                 # ChatML chat template
    float_activations: bool
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
    tok_kind, flags = int(fields[18]), int(fields[19])
    if version != FORMAT_VERSION:
        raise InputError(f"{source}: format version {version}, this toolkit reads version {FORMAT_VERSION}",
                         "re-create the file with this version's `ppc-llm convert`")
    if header_size != HEADER_SIZE or stated_size != file_size or alignment == 0:
        raise InputError(f"{source}: header says {stated_size} bytes, file has {file_size}",
                         "the file is truncated or damaged: re-create it with `ppc-llm convert`")
    config = ModelConfig(dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6],
                         shared_classifier=shared, rope_theta=theta, norm_eps=eps)
    config.validate(source)
    if quant_code not in QUANT_NAMES:
        raise InputError(f"{source}: unknown weight quantization code {quant_code}",
                         "re-create the file with this version's `ppc-llm convert`")
    if tok_kind not in (TOKENIZER_LLAMA2C, TOKENIZER_BPE) or flags > 3:
        raise InputError(f"{source}: unknown tokenizer kind {tok_kind} or flags {flags}",
                         "re-create the file with this version's `ppc-llm convert`")
    float_activations = bool(flags & FLAG_FLOAT_ACTIVATIONS)
    if quant_code == DTYPE_Q4_1 and not float_activations:
        raise InputError(f"{source}: q4_1 weights without the float-activation flag (GGUF models only)",
                         "re-create the file with `ppc-llm convert`")
    entries = _read_table(data, bo, n_entries, file_size, source)
    chat = bool(flags & FLAG_CHATML)
    needed = [TOKENIZER_TENSOR] + ([BPE_TENSOR] if tok_kind == TOKENIZER_BPE else []) + ([CHAT_TENSOR] if chat else [])
    for name in needed:
        if name not in entries or entries[name].dtype != DTYPE_BYTES:
            raise InputError(f"{source}: no embedded {name} data", "re-create the file with `ppc-llm convert`")
    return Header(endian, config, QUANT_NAMES[quant_code], tok_kind == TOKENIZER_BPE, chat, float_activations,
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


def decode(data: bytes, source: str) -> Model:
    """Parse a converted file back into a Model, checking every size against the file."""
    header = read_header(data, len(data), source)
    bo = ENDIANS[header.endian]
    config, entries, float_activations = header.config, header.entries, header.float_activations
    quant_code = QUANT_NAMES_TO_CODE[header.quant]
    # a matrix is f32 or of the header's quantization; GGUF models (float activations) mix blocks
    allowed = {DTYPE_F32, quant_code} | (set(BLOCK_DTYPES.values()) if float_activations else set())
    tensors: dict[str, Tensor] = {}
    for name, shape in config.tensor_shapes().items():
        entry = entries.get(name)
        dtype = DTYPE_F32 if name not in MATRICES else \
            entry.dtype if entry is not None and entry.dtype in allowed else quant_code
        tensors[name] = _read_tensor(data, bo, entries, name, shape, dtype, source)
    tokenizer = parse_tokenizer(_blob(data, entries, TOKENIZER_TENSOR, source), source, bo)
    if tokenizer.vocab_size != config.vocab_size:
        raise InputError(f"{source}: embedded tokenizer has {tokenizer.vocab_size} tokens, model has {config.vocab_size}")
    bpe = None
    if header.bpe:
        bpe = bpemod.parse_blob(_blob(data, entries, BPE_TENSOR, source), bo, config.vocab_size, source)
    chat = header.chat
    system = bpemod.parse_chat_blob(_blob(data, entries, CHAT_TENSOR, source), source) if chat else None
    return Model(config, tensors, tokenizer, bpe=bpe, chat=chat, chat_system=system,
                 float_activations=float_activations)


def _blob(data: bytes, entries: dict[str, TensorEntry], name: str, source: str) -> bytes:
    entry = entries.get(name)
    if entry is None or entry.dtype != DTYPE_BYTES:
        raise InputError(f"{source}: no embedded {name} data", "re-create the file with `ppc-llm convert`")
    return data[entry.offset:entry.offset + entry.nbytes]


def _f32_at(data: bytes, bo: str, entry: TensorEntry) -> np.ndarray:
    raw = np.frombuffer(data, dtype=bo + "f4", count=int(np.prod(entry.dims)), offset=entry.offset)
    return raw.astype(np.float32).reshape(entry.dims)


def _read_tensor(data: bytes, bo: str, entries: dict[str, TensorEntry], name: str, shape: tuple[int, ...],
                 dtype: int, source: str) -> Tensor:
    entry = entries.get(name)
    if entry is None or entry.dtype != dtype or entry.dims != shape:
        raise InputError(f"{source}: tensor {name} is missing or has the wrong type or shape (want {shape})")
    if dtype == DTYPE_F32:
        return _f32_at(data, bo, entry)
    scales = entries.get(name + SCALES_SUFFIX)
    if scales is None or scales.dtype != DTYPE_F16 or scales.dims != qmod.scales_shape(shape):
        raise InputError(f"{source}: tensor {name}{SCALES_SUFFIX} is missing or has the wrong shape")
    raw = data[entry.offset:entry.offset + entry.nbytes]
    halves = np.frombuffer(data, dtype=bo + "f2", count=int(np.prod(scales.dims)), offset=scales.offset)
    mins = None
    if dtype == DTYPE_Q4_1:
        m = entries.get(name + MINS_SUFFIX)
        if m is None or m.dtype != DTYPE_F16 or m.dims != scales.dims:
            raise InputError(f"{source}: tensor {name}{MINS_SUFFIX} is missing or has the wrong shape")
        low = np.frombuffer(data, dtype=bo + "f2", count=int(np.prod(m.dims)), offset=m.offset)
        mins = qmod.decode_scales(low.reshape(m.dims), shape)
    return qmod.decode_codes(QUANT_NAMES[dtype], raw, shape,
                             qmod.decode_scales(halves.reshape(scales.dims), shape), mins)


def _read_table(data: bytes, bo: str, n_entries: int, file_size: int, source: str) -> dict[str, TensorEntry]:
    if HEADER_SIZE + n_entries * ENTRY_SIZE > min(len(data), file_size):
        raise InputError(f"{source}: tensor table of {n_entries} entries runs past the end of the file")
    entries: dict[str, TensorEntry] = {}
    end = HEADER_SIZE + n_entries * ENTRY_SIZE  # tensors follow the table, sorted, never overlapping
    for i in range(n_entries):
        raw_name, dtype, ndim, d0, d1, d2, _, offset = struct.unpack_from(
            bo + f"{NAME_BYTES}sII3IIQ", data, HEADER_SIZE + i * ENTRY_SIZE)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if not 1 <= ndim <= 3:
            raise InputError(f"{source}: tensor {name} has {ndim} dimensions")
        entry = TensorEntry(name, dtype, (d0, d1, d2)[:ndim], offset)
        if offset % ALIGNMENT or offset < end or offset + entry.nbytes > file_size or name in entries:
            raise InputError(f"{source}: tensor {name} lies outside the file, overlaps, is misaligned or repeated")
        entries[name] = entry
        end = offset + entry.nbytes
    return entries


def read_any(path: Path, tokenizer_path: Path | None) -> Model:
    """Read a converted file, a GGUF file or a llama2.c checkpoint (which then needs
    ``tokenizer_path``)."""
    from .models.llama2c import read_bytes

    return parse_any(read_bytes(path, "checkpoint"), path, tokenizer_path)


def parse_any(data: bytes, path: Path, tokenizer_path: Path | None) -> Model:
    """``read_any`` over the file's bytes, read once."""
    from .models import gguf
    from .models.llama2c import default_tokenizer_for, parse_checkpoint, parse_config, read_tokenizer

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
    from .models import gguf
    from .models.llama2c import checkpoint_size, parse_config

    if sniff(head) and len(head) >= 32:
        return int(struct.unpack_from(ENDIANS[file_endian(head, source)] + "Q", head, 24)[0])
    if gguf.sniff(head):
        raise InputError(f"{source}: a GGUF file is read from a regular file only, not a pipe or device",
                         "save it to a file first")
    return checkpoint_size(parse_config(head, source))
