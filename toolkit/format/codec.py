"""The whole converted file: ``encode`` a Model, ``decode`` one back (every size checked)."""

from __future__ import annotations

from .. import quant as qmod
from ..errors import UsageError
from ..models import Activations, Model, Tensor
from .blobs import blob_payloads, parse_bpe_blob, parse_chat_blob, parse_spm_blob, read_blob, read_tokenizer_blob
from .header import read_header, write_header
from .layout import (BLOCK_DTYPES, BPE_TENSOR, CHAT_TENSOR, DTYPE_F32, ENDIANS, KEPT_DTYPES, MATRICES,
                     QUANT_NAMES_TO_CODE, SPM_TENSOR)
from .tensors import place, read_layers, read_tensor, tensor_payloads, write_tensors


def encode(model: Model, endian: str, quant: str | None = None) -> bytes:
    """The converted file's bytes for ``model`` in byte order ``endian`` ('big' or 'little'),
    its matrices quantized as ``quant`` ('f32', 'q8_0' or 'q4_0'; None: as they are)."""
    qmod.requested(quant)
    if quant is not None and model.keeps_blocks and quant != model.quant:
        raise UsageError(f"--quant {quant}: a GGUF model keeps its own quantization ({model.quant})",
                         "leave out --quant")
    bo = ENDIANS[endian]
    payloads = tensor_payloads(model.tensors, quant, bo) + blob_payloads(model, bo)
    entries, file_size = place(payloads)
    out = bytearray(file_size)
    write_header(out, bo, model, model.quant if quant is None else quant, file_size, len(entries))
    write_tensors(out, bo, entries, payloads)
    return bytes(out)


def decode(data: bytes, source: str) -> Model:
    """Parse a converted file back into a Model, checking every size against the file."""
    header = read_header(data, len(data), source)
    bo = ENDIANS[header.endian]
    config, entries = header.config, header.entries
    quant_code = QUANT_NAMES_TO_CODE[header.quant]
    # a matrix is f32 or of the header's quantization; float32-activation blocks may mix kinds
    mixed = set(BLOCK_DTYPES.values()) | set(KEPT_DTYPES.values()) \
        if header.activations is Activations.FLOAT32 else set()
    allowed = {DTYPE_F32, quant_code} | mixed
    tensors: dict[str, Tensor] = {}
    for name, shape in config.tensor_shapes().items():
        entry = entries.get(name)
        if entry is None and len(shape) == 3 and name in MATRICES and f"{name}.0" in entries:
            tensors[name] = read_layers(data, bo, entries, name, shape, allowed, source)
            continue
        dtype = DTYPE_F32 if name not in MATRICES else \
            entry.dtype if entry is not None and entry.dtype in allowed else quant_code
        tensors[name] = read_tensor(data, bo, entries, name, shape, dtype, source)
    tokenizer = read_tokenizer_blob(data, bo, entries, config.vocab_size, source)
    bpe = parse_bpe_blob(read_blob(data, entries, BPE_TENSOR, source), bo, config.vocab_size, source) \
        if header.bpe else None
    spm = parse_spm_blob(read_blob(data, entries, SPM_TENSOR, source), bo, config.vocab_size, source) \
        if header.spm else None
    chat = parse_chat_blob(read_blob(data, entries, CHAT_TENSOR, source), bo, config.vocab_size, source) \
        if header.chat else None
    return Model(config, tensors, tokenizer, bpe=bpe, spm=spm, chat=chat,
                 activations=header.activations)
