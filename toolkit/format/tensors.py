"""The tensor table and the tensors' data of a converted file (layout in ``layout``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .. import quant as qmod
from ..errors import InputError
from ..models import Tensor
from ..quant import BLOCK_FORMATS, BlockTensor, LayerStack, QuantTensor
from .layout import (ALIGNMENT, BLOCK_DTYPES, DTYPE_F16, DTYPE_F32, DTYPE_Q4_1, ENTRY_FORMAT, ENTRY_SIZE,
                     HEADER_SIZE, KEPT_DTYPES, KEPT_NAMES, MATRICES, MAX_TENSORS, MINS_SUFFIX, QUANT_NAMES,
                     RECREATE, SCALES_SUFFIX)


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
        if self.dtype in KEPT_NAMES:
            fmt = BLOCK_FORMATS[KEPT_NAMES[self.dtype]]
            if len(self.dims) != 2 or self.dims[1] % fmt.block:
                return -1  # never a valid size: read_table refuses the entry
            return qmod.block_layout_nbytes(fmt, self.dims[0], self.dims[1])
        return int(np.prod(self.dims)) * {DTYPE_F32: 4, DTYPE_F16: 2}.get(self.dtype, 1)


Payload = tuple[str, int, tuple[int, ...], bytes]  # (name, dtype, dims, bytes) of one table entry


def align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def tensor_payloads(tensors: dict[str, Tensor], quant: str | None, bo: str) -> list[Payload]:
    """The payloads of every tensor in file order, matrices quantized as asked (None: as they are)."""
    out: list[Payload] = []
    for name, tensor in tensors.items():
        if isinstance(tensor, LayerStack):  # per layer: NAME.0, NAME.1, ...
            for index, layer in enumerate(tensor.layers):
                out.extend(_one_payload(f"{name}.{index}", layer, None, bo))
        else:
            out.extend(_one_payload(name, tensor, quant if name in MATRICES else "f32", bo))
    return out


def _one_payload(name: str, tensor: Tensor, quant: str | None, bo: str) -> list[Payload]:
    if isinstance(tensor, BlockTensor):
        return [(name, KEPT_DTYPES[tensor.kind], tensor.shape, qmod.encode_blocks(tensor, bo))]
    if isinstance(tensor, LayerStack):
        raise ValueError(f"{name}: a stack inside a stack")
    wanted = (tensor.kind if isinstance(tensor, QuantTensor) else "f32") if quant is None else quant
    if wanted == "f32":
        dense = qmod.dequantize(tensor) if isinstance(tensor, QuantTensor) else tensor
        return [(name, DTYPE_F32, tuple(dense.shape), _f32_bytes(dense, bo))]
    q = _as_quant(tensor, wanted)
    out = [(name, BLOCK_DTYPES[wanted], q.shape, qmod.encode_codes(q)),
           (name + SCALES_SUFFIX, DTYPE_F16, qmod.scales_shape(q.shape), qmod.encode_scales(q, bo))]
    if q.mins is not None:
        out.append((name + MINS_SUFFIX, DTYPE_F16, qmod.scales_shape(q.shape), qmod.encode_scales(q, bo, q.mins)))
    return out


def _as_quant(tensor: np.ndarray | QuantTensor, quant: str) -> QuantTensor:
    if isinstance(tensor, QuantTensor):
        return tensor if tensor.kind == quant else qmod.quantize(qmod.dequantize(tensor), quant)
    return qmod.quantize(tensor, quant)


def _f32_bytes(array: np.ndarray, bo: str) -> bytes:
    return np.ascontiguousarray(array, dtype=bo + "f4").tobytes()


def place(payloads: list[Payload]) -> tuple[list[TensorEntry], int]:
    """The table entries of ``payloads`` laid out after the header and table, and the file size."""
    if len(payloads) > MAX_TENSORS:
        raise InputError(f"the model needs {len(payloads)} tensor table entries, more than the format's {MAX_TENSORS}",
                         "a model with fewer layers, or one quantization type for all layers' matrices")
    offset = align(HEADER_SIZE + ENTRY_SIZE * len(payloads))
    entries = []
    for name, dtype, dims, payload in payloads:
        entries.append(TensorEntry(name, dtype, dims, offset))
        offset = align(offset + len(payload))
    return entries, entries[-1].offset + len(payloads[-1][3])


def write_tensors(out: bytearray, bo: str, entries: list[TensorEntry], payloads: list[Payload]) -> None:
    """The tensor table and every tensor's data into ``out`` (the whole file, zero-filled)."""
    for i, (entry, (_, _, _, payload)) in enumerate(zip(entries, payloads)):
        assert entry.nbytes == len(payload), entry.name
        dims = tuple(entry.dims) + (0,) * (3 - len(entry.dims))
        struct.pack_into(bo + ENTRY_FORMAT, out, HEADER_SIZE + i * ENTRY_SIZE,
                         entry.name.encode("ascii"), entry.dtype, len(entry.dims), *dims, 0, entry.offset)
        out[entry.offset:entry.offset + entry.nbytes] = payload


def read_table(data: bytes, bo: str, n_entries: int, file_size: int, source: str) -> dict[str, TensorEntry]:
    if n_entries > MAX_TENSORS:  # the engine's bound too (load.c); none at all: no tokenizer, below
        raise InputError(f"{source}: the tensor table's {n_entries} entries are more than the format's "
                         f"{MAX_TENSORS}", RECREATE)
    if HEADER_SIZE + n_entries * ENTRY_SIZE > min(len(data), file_size):
        raise InputError(f"{source}: tensor table of {n_entries} entries runs past the end of the file")
    entries: dict[str, TensorEntry] = {}
    end = HEADER_SIZE + n_entries * ENTRY_SIZE  # tensors follow the table, sorted, never overlapping
    for i in range(n_entries):
        raw_name, dtype, ndim, d0, d1, d2, _, offset = struct.unpack_from(
            bo + ENTRY_FORMAT, data, HEADER_SIZE + i * ENTRY_SIZE)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if not 1 <= ndim <= 3:
            raise InputError(f"{source}: tensor {name} has {ndim} dimensions")
        entry = TensorEntry(name, dtype, (d0, d1, d2)[:ndim], offset)
        if entry.nbytes < 0:
            raise InputError(f"{source}: tensor {name} of dtype {dtype} has a shape its blocks cannot have "
                             f"{entry.dims}")
        if offset % ALIGNMENT or offset < end or offset + entry.nbytes > file_size or name in entries:
            raise InputError(f"{source}: tensor {name} lies outside the file, overlaps, is misaligned or repeated")
        entries[name] = entry
        end = offset + entry.nbytes
    return entries


def _f32_at(data: bytes, bo: str, entry: TensorEntry) -> np.ndarray:
    raw = np.frombuffer(data, dtype=bo + "f4", count=int(np.prod(entry.dims)), offset=entry.offset)
    return raw.astype(np.float32).reshape(entry.dims)


def read_tensor(data: bytes, bo: str, entries: dict[str, TensorEntry], name: str, shape: tuple[int, ...],
                dtype: int, source: str) -> Tensor:
    entry = entries.get(name)
    if entry is None or entry.dtype != dtype or entry.dims != shape:
        raise InputError(f"{source}: tensor {name} is missing or has the wrong type or shape (want {shape})")
    if dtype == DTYPE_F32:
        return _f32_at(data, bo, entry)
    raw = data[entry.offset:entry.offset + entry.nbytes]
    if dtype in KEPT_NAMES:
        return qmod.decode_blocks_layout(KEPT_NAMES[dtype], raw, shape, bo)
    scales = entries.get(name + SCALES_SUFFIX)
    if scales is None or scales.dtype != DTYPE_F16 or scales.dims != qmod.scales_shape(shape):
        raise InputError(f"{source}: tensor {name}{SCALES_SUFFIX} is missing or has the wrong shape")
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


def read_layers(data: bytes, bo: str, entries: dict[str, TensorEntry], name: str, shape: tuple[int, ...],
                allowed: set[int], source: str) -> LayerStack:
    """A stack stored per layer (NAME.0, NAME.1, ...), each layer of any ``allowed`` dtype."""
    layers = []
    for index in range(shape[0]):
        entry = entries.get(f"{name}.{index}")
        if entry is None or entry.dtype not in allowed:
            raise InputError(f"{source}: tensor {name}.{index} is missing or of a type this file may not hold")
        layer = read_tensor(data, bo, entries, f"{name}.{index}", shape[1:], entry.dtype, source)
        assert not isinstance(layer, LayerStack)
        layers.append(layer)
    return LayerStack(tuple(layers))
