"""Block quantization (groups of 32, as GGUF's Q8_0 and Q4_0) and an exact NumPy mirror of the
engine's quantized matrix-vector product.

Weights: each row of a matrix is cut into groups of 32 values with one fp16 scale each, as GGUF
stores them (the engine widens them to float32 exactly, in the kernels: the G4 has no fp16
hardware, and 2-byte scales keep the weight stream 10 % smaller than 4-byte ones would). A row's
groups are padded with zero groups to a multiple of four, and its scales to a multiple of eight,
so both start 16-byte aligned for ``vec_ld``; a last partial group is padded with zeros. In the
converted file a quantized matrix is two tensors: NAME (the codes) and NAME.scales (fp16,
(..., rows, scale groups)). Codes are stored offset so that AltiVec's signed x unsigned
``vec_msum`` can use them directly:

    q8_0: one byte per value, value + 128 (0..255 for -128..127)
    q4_0: 16 bytes per group; byte k holds value k + 8 in its low nibble and value k + 16 + 8 in
          its high nibble (GGUF's Q4_0 nibble order)

Activations are quantized at run time per group (``quantize_activation``), and a row's dot product
is defined lane by lane, as AltiVec computes it: lane l of group g sums the eight products of the
values 4l..4l+3 and 16+4l..16+4l+3 (exact integers), and each lane accumulates
``acc[l] = fmaf((float)isum[l], w_scale[g] * x_scale[g], acc[l])`` over the groups; the row's result
is ``(acc[0] + acc[1]) + (acc[2] + acc[3])``. The scalar C kernel is written the same way, so the
AltiVec kernel matches it bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UsageError

GROUP = 32
LANES = 4
KINDS = ("q8_0", "q4_0")  # what quantize() makes (int8 activations); blocks kept as stored may also be "q4_1"
F32 = np.float32


@dataclass(frozen=True)
class QuantTensor:
    """A block-quantized matrix (or stack of matrices)."""

    kind: str            # "q8_0", "q4_0" or "q4_1" (kept blocks only: Model.keeps_blocks)
    shape: tuple[int, ...]  # the logical shape, (..., rows, cols)
    values: np.ndarray   # int8 codes (..., rows, groups * 32): q8 -128..127, q4_0 -8..7, q4_1 0..15
    scales: np.ndarray   # float32 (..., rows, groups), groups a multiple of 4; fp16 values
    mins: np.ndarray | None = None  # q4_1 only: float32 (..., rows, groups), fp16 values

    @property
    def groups(self) -> int:
        return int(self.scales.shape[-1])

    def code_bytes_per_group(self) -> int:
        return GROUP if self.kind == "q8_0" else GROUP // 2

    def nbytes(self) -> int:
        """Bytes of codes, scales and mins together (what a forward pass streams)."""
        rows = int(np.prod(self.shape[:-1]))
        per_row_scales = 2 * scale_groups(self.shape[-1]) * (2 if self.mins is not None else 1)
        return rows * (self.groups * self.code_bytes_per_group() + per_row_scales)

    def rows_of(self, index: int) -> "QuantTensor":
        """The matrix ``index`` of a stack (the first axis)."""
        mins = None if self.mins is None else self.mins[index]
        return QuantTensor(self.kind, self.shape[1:], self.values[index], self.scales[index], mins)


def padded_groups(cols: int) -> int:
    """Code groups per row: a multiple of four."""
    groups = -(-cols // GROUP)
    return -(-groups // LANES) * LANES


def scale_groups(cols: int) -> int:
    """fp16 scales stored per row: a multiple of eight (16 bytes)."""
    groups = -(-cols // GROUP)
    return -(-groups // 8) * 8


def _roundf(v: np.ndarray) -> np.ndarray:
    """C's roundf (half away from zero) of float32 values, exactly."""
    wide = v.astype(np.float64)
    return np.copysign(np.floor(np.abs(wide) + 0.5), wide)


def _grouped(w: np.ndarray) -> np.ndarray:
    """(..., cols) float32 -> (..., groups, 32), zero padded to whole, 4-aligned groups."""
    cols = w.shape[-1]
    width = padded_groups(cols) * GROUP
    padded = np.zeros(w.shape[:-1] + (width,), dtype=np.float32)
    padded[..., :cols] = w
    return padded.reshape(w.shape[:-1] + (width // GROUP, GROUP))


def quantize(w: np.ndarray, kind: str) -> QuantTensor:
    """Quantize float32 ``w`` (..., rows, cols) the way GGUF's reference quantizers do."""
    blocks = _grouped(np.asarray(w, dtype=np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "q8_0":
            amax = np.max(np.abs(blocks), axis=-1)
            d = (amax / F32(127.0)).astype(np.float32)
            inv = np.where(d != 0, F32(1.0) / d, F32(0.0)).astype(np.float32)
            codes = _roundf((blocks * inv[..., None]).astype(np.float32))
        elif kind == "q4_0":
            index = np.argmax(np.abs(blocks), axis=-1)
            signed_max = np.take_along_axis(blocks, index[..., None], axis=-1)[..., 0]
            d = (signed_max / F32(-8.0)).astype(np.float32)
            inv = np.where(d != 0, F32(1.0) / d, F32(0.0)).astype(np.float32)
            scaled = (blocks * inv[..., None]).astype(np.float32)
            codes = np.minimum(15, np.trunc((scaled + F32(8.5)).astype(np.float32))) - 8
        else:
            raise ValueError(f"unknown quantization {kind}")
    values = codes.astype(np.int8).reshape(blocks.shape[:-2] + (-1,))
    # codes come from the float32 scale, the stored scale is its fp16 rounding (as GGUF does)
    return QuantTensor(kind, tuple(w.shape), values, d.astype(np.float16).astype(np.float32))


def dequantize(q: QuantTensor) -> np.ndarray:
    """Float32 values (..., rows, cols): scale times code, as the engine's embedding lookup."""
    codes = q.values.reshape(q.scales.shape + (GROUP,)).astype(np.float32)
    full = (codes * q.scales[..., None]).astype(np.float32)
    if q.mins is not None:
        full = (full + q.mins[..., None]).astype(np.float32)
    full = full.reshape(q.values.shape)
    return np.ascontiguousarray(full[..., :q.shape[-1]])


def encode_codes(q: QuantTensor) -> bytes:
    """The codes as stored in the converted file (offset, nibble-packed for q4_0)."""
    if q.kind == "q8_0":
        return (q.values.astype(np.int16) + 128).astype(np.uint8).tobytes()
    offset = 8 if q.kind == "q4_0" else 0
    nibbles = (q.values.astype(np.int16) + offset).astype(np.uint8).reshape(-1, 2, GROUP // 2)
    return (nibbles[:, 0] | (nibbles[:, 1] << 4)).astype(np.uint8).tobytes()


def encode_scales(q: QuantTensor, byteorder: str, values: np.ndarray | None = None) -> bytes:
    """The scales (or ``values``: the q4_1 mins) as stored: fp16 in ``byteorder`` ('<' or '>'),
    padded to scale_groups."""
    stored = np.zeros(q.scales.shape[:-1] + (scale_groups(q.shape[-1]),), dtype=byteorder + "f2")
    stored[..., :q.groups] = q.scales if values is None else values
    return stored.tobytes()


def decode_scales(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Stored fp16 scales (..., rows, scale groups) -> float32 (..., rows, code groups)."""
    return np.ascontiguousarray(raw[..., :padded_groups(shape[-1])], dtype=np.float32)


def decode_codes(kind: str, raw: bytes, shape: tuple[int, ...], scales: np.ndarray,
                 mins: np.ndarray | None = None) -> QuantTensor:
    """The inverse of ``encode_codes``: raw file bytes back to a QuantTensor."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if kind == "q8_0":
        values = (data.astype(np.int16) - 128).astype(np.int8)
    else:
        packed = data.reshape(-1, GROUP // 2)
        offset = 8 if kind == "q4_0" else 0
        values = (np.stack([packed & 0x0F, packed >> 4], axis=1).astype(np.int16) - offset).astype(np.int8)
    values = values.reshape(scales.shape[:-1] + (scales.shape[-1] * GROUP,))
    return QuantTensor(kind, shape, values, scales.astype(np.float32),
                       None if mins is None else mins.astype(np.float32))


def code_nbytes(kind: str, shape: tuple[int, ...]) -> int:
    rows = int(np.prod(shape[:-1]))
    per_group = GROUP if kind == "q8_0" else GROUP // 2
    return rows * padded_groups(shape[-1]) * per_group


def scales_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The stored scales' shape."""
    return tuple(shape[:-1]) + (scale_groups(shape[-1]),)


def quantize_activation(x: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The engine's run-time int8 quantization of an activation vector (``groups`` groups)."""
    padded = np.zeros(groups * GROUP, dtype=np.float32)
    padded[:x.shape[0]] = x
    blocks = padded.reshape(groups, GROUP)
    amax = np.max(np.abs(blocks), axis=1)
    d = (amax / F32(127.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, F32(1.0) / d, F32(0.0)).astype(np.float32)
    codes = _roundf((blocks * inv[:, None]).astype(np.float32)).astype(np.int32)
    return codes.reshape(-1), d


def _fmaf(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fmaf in float32 through float64 (the product is exact there; the sum is rounded twice,
    which differs from a true fmaf only in astronomically rare halfway cases)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def matvec(q: QuantTensor, x: np.ndarray) -> np.ndarray:
    """out = W @ x for a 2-D QuantTensor W, as the engine's scalar kernel computes it."""
    rows, groups = q.scales.shape
    qx, sx = quantize_activation(x, groups)
    products = q.values.astype(np.int32) * qx[None, :]
    lanes = products.reshape(rows, groups, 2, LANES, 4).sum(axis=(2, 4))  # (rows, groups, 4)
    scale = (q.scales * sx[None, :]).astype(np.float32)                  # (rows, groups)
    acc = np.zeros((rows, LANES), dtype=np.float32)
    for g in range(groups):
        acc = _fmaf(lanes[:, g, :].astype(np.float32), scale[:, g, None], acc)
    result: np.ndarray = (acc[:, 0] + acc[:, 1]) + (acc[:, 2] + acc[:, 3])
    return result.astype(np.float32)


# --------------------------------------------------------------------------- what --quant may ask


def requested(text: str | None) -> str | None:
    """``--quant``'s value, checked (the one place a requested quantization is resolved): None
    keeps the file's own, else one of the converted file's quantizations (format.QUANT_DTYPES)."""
    from .format import QUANT_DTYPES

    if text is not None and text not in QUANT_DTYPES:
        raise UsageError(f"--quant {text}: must be one of {', '.join(QUANT_DTYPES)}")
    return text


def requested_list(text: str) -> list[str]:
    """A comma list of quantizations (``bench --quant``), each one ``requested`` accepts."""
    from .format import QUANT_DTYPES

    quants = [q.strip() for q in text.split(",") if q.strip()]
    if not quants or any(q not in QUANT_DTYPES for q in quants):
        raise UsageError(f"--quant {text}: each must be one of {', '.join(QUANT_DTYPES)}")
    return quants


# --------------------------------------------------------------------------- GGUF blocks kept bit for bit
#
# Q5_0, Q5_1, Q2_K .. Q6_K, IQ4_NL and IQ4_XS (``BLOCK_FORMATS``) are kept exactly as GGUF stores
# them: every block field's bytes, nothing re-quantized or widened. In the converted file one
# matrix (rows, cols) of such a type is one tensor (its dtype: ``BlockFormat.dtype``), laid out
# in row groups of ROW_GROUP rows (the last group may be shorter): inside a row group of r rows,
# each block field (``BlockFormat.fields``, in that order: vector-sized code fields first) is one
# array over (row, block), r * blocks * field bytes long, padded with zeros to a multiple of 16
# bytes, so every array starts 16-byte aligned (every 16-or-more-byte code field of every block
# is ``vec_ld``-aligned). Two-byte fields (fp16 d / dmin / m, IQ4_XS's u16 scales_h) are stored
# in the file's byte order; byte fields as GGUF has them (Q5_0 / Q5_1's qh are GGUF's four bytes:
# the fifth bit of value j is bit j % 8 of byte j // 8). Padding is at most 15 bytes per field
# per row group (``layout_overhead``).
#
# The numeric definition (the engine's scalar kernel, its AltiVec twin and ``BlockMatrix``):
# every value of a block is A_sb * (u - off) (+ B_sb for the types with a minimum) for its
# sub-block sb of SUB values (16 or 32, always inside one group of 32 activations): u an
# unsigned code byte (``decode_blocks``), A_sb = d * scale_sb and B_sb = -(dmin * min_sb) (Q5_1:
# its m) as float32. Activations are the 16-bit ``ppcllm_fvec`` (per group g of 32: scale s_g,
# codes q). Per sub-block isum = sum(u * q) and qsum = sum(q) are exact integers, and a row's
# result is one float32 accumulator over its sub-blocks in order:
#     acc = fmaf((float)(isum - off * qsum), A_sb * s_g, acc)
#     acc = fmaf((float)qsum, B_sb * s_g, acc)       (types with a minimum only)
# Dequantization (the embedding lookup) is A_sb * (float)(u - off) (+ B_sb), which is
# gguf.quants.dequantize's value bit for bit.

ROW_GROUP = 4
FIELD_ALIGN = 16
IQ4NL_VALUES = (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)


@dataclass(frozen=True)
class BlockFormat:
    """One kept GGUF block type: its fields as (name, byte offset in GGUF's block, bytes, item
    bytes: 2 for fp16 / u16 fields, stored in the file's byte order), in the converted file's
    order."""

    name: str
    dtype: int
    block: int        # values per block
    block_bytes: int  # GGUF's bytes per block
    sub: int          # values per sub-block
    off: int          # u's offset
    has_min: bool
    fields: tuple[tuple[str, int, int, int], ...]


BLOCK_FORMATS = {f.name: f for f in (
    BlockFormat("q5_0", 6, 32, 22, 32, 16, False, (("qs", 6, 16, 1), ("qh", 2, 4, 1), ("d", 0, 2, 2))),
    BlockFormat("q5_1", 7, 32, 24, 32, 0, True,
                (("qs", 8, 16, 1), ("qh", 4, 4, 1), ("d", 0, 2, 2), ("m", 2, 2, 2))),
    BlockFormat("q2_K", 8, 256, 84, 16, 0, True,
                (("qs", 16, 64, 1), ("scales", 0, 16, 1), ("d", 80, 2, 2), ("dmin", 82, 2, 2))),
    BlockFormat("q3_K", 9, 256, 110, 16, 4, False,
                (("qs", 32, 64, 1), ("hmask", 0, 32, 1), ("scales", 96, 12, 1), ("d", 108, 2, 2))),
    BlockFormat("q4_K", 10, 256, 144, 32, 0, True,
                (("qs", 16, 128, 1), ("scales", 4, 12, 1), ("d", 0, 2, 2), ("dmin", 2, 2, 2))),
    BlockFormat("q5_K", 11, 256, 176, 32, 0, True,
                (("qs", 48, 128, 1), ("qh", 16, 32, 1), ("scales", 4, 12, 1), ("d", 0, 2, 2), ("dmin", 2, 2, 2))),
    BlockFormat("q6_K", 12, 256, 210, 16, 32, False,
                (("ql", 0, 128, 1), ("qh", 128, 64, 1), ("scales", 192, 16, 1), ("d", 208, 2, 2))),
    BlockFormat("iq4_nl", 13, 32, 18, 32, 128, False, (("qs", 2, 16, 1), ("d", 0, 2, 2))),
    BlockFormat("iq4_xs", 14, 256, 136, 32, 128, False,
                (("qs", 8, 128, 1), ("scales_l", 4, 4, 1), ("d", 0, 2, 2), ("scales_h", 2, 2, 2))),
)}
BLOCK_FORMAT_OF_DTYPE = {f.dtype: f for f in BLOCK_FORMATS.values()}


@dataclass(frozen=True)
class BlockTensor:
    """A matrix (rows, cols) of GGUF blocks kept as stored (a ``BLOCK_FORMATS`` kind)."""

    kind: str
    shape: tuple[int, ...]  # (rows, cols)
    blocks: np.ndarray      # uint8 (rows, cols // block, block_bytes): GGUF's bytes (little-endian fields)

    @property
    def format(self) -> BlockFormat:
        return BLOCK_FORMATS[self.kind]

    def nbytes(self) -> int:
        return int(self.blocks.size)


@dataclass(frozen=True)
class LayerStack:
    """A stack of per-layer matrices whose types differ by layer (GGUF mixes such as Q4_K_M), or
    that hold kept GGUF blocks: each layer its own tensor (float32, QuantTensor or BlockTensor)."""

    layers: tuple["np.ndarray | QuantTensor | BlockTensor", ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.layers),) + tuple(self.layers[0].shape)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(tensor_kind(t) for t in self.layers)

    def rows_of(self, index: int) -> "np.ndarray | QuantTensor | BlockTensor":
        return self.layers[index]

    def nbytes(self) -> int:
        return sum(t.nbytes if isinstance(t, np.ndarray) else t.nbytes() for t in self.layers)


def tensor_kind(t: "np.ndarray | QuantTensor | BlockTensor") -> str:
    return "f32" if isinstance(t, np.ndarray) else t.kind


def _pad16(n: int) -> int:
    return -(-n // FIELD_ALIGN) * FIELD_ALIGN


def block_layout_nbytes(fmt: BlockFormat, rows: int, cols: int) -> int:
    """Bytes of one (rows, cols) matrix in the converted file's row-group layout."""
    nb = cols // fmt.block
    full, last = divmod(rows, ROW_GROUP)
    size = full * sum(_pad16(ROW_GROUP * nb * f[2]) for f in fmt.fields)
    return size + (sum(_pad16(last * nb * f[2]) for f in fmt.fields) if last else 0)


def layout_overhead(fmt: BlockFormat, rows: int, cols: int) -> float:
    """The row-group layout's padding as a fraction of GGUF's own bytes."""
    own = rows * (cols // fmt.block) * fmt.block_bytes
    return block_layout_nbytes(fmt, rows, cols) / own - 1.0


def _group_bytes(fmt: BlockFormat, group: np.ndarray, bo: str) -> list[bytes]:
    """One row group's fields (group: (r, nb, block_bytes) GGUF bytes), each padded."""
    out = []
    for _, start, size, item in fmt.fields:
        field = np.ascontiguousarray(group[:, :, start:start + size])
        if item == 2 and bo == ">":
            field = field.reshape(-1, 2)[:, ::-1]
        raw = field.tobytes()
        out.append(raw + bytes(_pad16(len(raw)) - len(raw)))
    return out


def encode_blocks(t: BlockTensor, bo: str) -> bytes:
    """The converted file's bytes of a BlockTensor in byte order ``bo`` ('<' or '>')."""
    rows = t.shape[0]
    parts: list[bytes] = []
    for r0 in range(0, rows, ROW_GROUP):
        parts.extend(_group_bytes(t.format, t.blocks[r0:r0 + ROW_GROUP], bo))
    return b"".join(parts)


def decode_blocks_layout(kind: str, raw: bytes, shape: tuple[int, ...], bo: str) -> BlockTensor:
    """The inverse of ``encode_blocks``."""
    fmt = BLOCK_FORMATS[kind]
    rows, nb = shape[0], shape[1] // fmt.block
    data = np.frombuffer(raw, dtype=np.uint8)
    blocks = np.zeros((rows, nb, fmt.block_bytes), dtype=np.uint8)
    pos = 0
    for r0 in range(0, rows, ROW_GROUP):
        r = min(ROW_GROUP, rows - r0)
        for _, start, size, item in fmt.fields:
            n = r * nb * size
            field = data[pos:pos + n].reshape(r, nb, size)
            if item == 2 and bo == ">":
                field = field.reshape(r, nb, -1, 2)[..., ::-1].reshape(r, nb, size)
            blocks[r0:r0 + r, :, start:start + size] = field
            pos += _pad16(n)
    return BlockTensor(kind, tuple(shape), blocks)


def _f16(b: np.ndarray) -> np.ndarray:
    """(..., 2) little-endian fp16 bytes -> float32 (...)."""
    return np.ascontiguousarray(b).view("<f2")[..., 0].astype(np.float32)


def _bits(b: np.ndarray) -> np.ndarray:
    """(..., n) bytes -> (..., 8, n) bit i of each byte (GGUF's K-type high-bit planes)."""
    return (b[..., None, :] >> np.arange(8, dtype=np.uint8)[:, None]) & 1


def _k4_scales(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K / Q5_K's 12 scale bytes -> (scales, mins), 8 of 6 bits each."""
    d, m, md = s[..., 0:4], s[..., 4:8], s[..., 8:12]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _q3_scales(s: np.ndarray) -> np.ndarray:
    lo = (s[..., None, 0:8] >> np.array([0, 4], dtype=np.uint8)[:, None]).reshape(s.shape[:-1] + (16,))
    hi = (s[..., None, 8:12] >> np.array([0, 2, 4, 6], dtype=np.uint8)[:, None]).reshape(s.shape[:-1] + (16,))
    return (((lo & 0x0F) | ((hi & 3) << 4)).astype(np.int16) - 32).astype(np.float32)


def _nibbles(qs: np.ndarray, chunk: int) -> np.ndarray:
    """(..., n) bytes -> (..., 2n): per chunk of ``chunk`` bytes its low nibbles, then its high."""
    split = qs.reshape(qs.shape[:-1] + (-1, 1, chunk)) >> np.array([0, 4], dtype=np.uint8)[:, None]
    return (split & 0x0F).reshape(qs.shape[:-1] + (-1,))


def _decode_32(fmt: BlockFormat, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    get = {f[0]: b[..., f[1]:f[1] + f[2]] for f in fmt.fields}
    u = _nibbles(get["qs"], 16)
    d = _f16(get["d"])[..., None]
    if fmt.name == "iq4_nl":
        return (np.array(IQ4NL_VALUES, dtype=np.int16)[u] + 128).astype(np.uint8), d, None
    high = np.unpackbits(np.ascontiguousarray(get["qh"]), axis=-1, bitorder="little")
    u = u | (high << 4)
    return u.astype(np.uint8), d, (_f16(get["m"])[..., None] if fmt.has_min else None)


def _decode_k(fmt: BlockFormat, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    get = {f[0]: b[..., f[1]:f[1] + f[2]] for f in fmt.fields}
    d = _f16(get["d"])[..., None]
    lead = b.shape[:-1]
    if fmt.name in ("q2_K", "q3_K"):
        qs = get["qs"].reshape(lead + (2, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8)[:, None]
        u = (qs & 3).reshape(lead + (256,))
        if fmt.name == "q2_K":
            sc = get["scales"]
            return u, d * (sc & 0x0F).astype(np.float32), -(_f16(get["dmin"])[..., None] * (sc >> 4).astype(np.float32))
        return u | (_bits(get["hmask"]).reshape(lead + (256,)) << 2), d * _q3_scales(get["scales"]), None
    if fmt.name in ("q4_K", "q5_K"):
        u = _nibbles(get["qs"], 32)
        if fmt.name == "q5_K":
            u = u | (_bits(get["qh"]).reshape(lead + (256,)) << 4)
        sc, mn = _k4_scales(get["scales"])
        return u, d * sc, -(_f16(get["dmin"])[..., None] * mn)
    if fmt.name == "q6_K":
        ql = _nibbles(get["ql"], 64).reshape(lead + (2, 4, 32))
        qh = (get["qh"].reshape(lead + (2, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8)[:, None]) & 3
        return (ql | (qh << 4)).reshape(lead + (256,)), d * get["scales"].view(np.int8).astype(np.float32), None
    # iq4_xs
    sl = (get["scales_l"][..., None] >> np.array([0, 4], dtype=np.uint8)).reshape(lead + (8,)) & 0x0F
    sh = np.ascontiguousarray(get["scales_h"]).view("<u2")[..., 0:1] >> (2 * np.arange(8, dtype=np.uint16))
    sc = ((sl | ((sh & 3).astype(np.uint8) << 4)).astype(np.int16) - 32).astype(np.float32)
    u = np.array(IQ4NL_VALUES, dtype=np.int16)[_nibbles(get["qs"], 16)] + 128
    return u.astype(np.uint8), d * sc, None


def decode_blocks(t: BlockTensor) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(u: uint8 (rows, cols), A: float32 (rows, sub-blocks), B: float32 (rows, sub-blocks) or
    None): the codes and per-sub-block factors of the numeric definition above."""
    fmt = t.format
    rows = t.shape[0]
    u, a, b = (_decode_32 if fmt.block == 32 else _decode_k)(fmt, t.blocks)
    return (u.astype(np.uint8).reshape(rows, -1), a.astype(np.float32).reshape(rows, -1),
            None if b is None else b.astype(np.float32).reshape(rows, -1))


def dequantize_blocks(t: BlockTensor) -> np.ndarray:
    """Float32 (rows, cols): A * (u - off) (+ B), the engine's dequantize-row function."""
    fmt = t.format
    u, a, b = decode_blocks(t)
    v = (u.astype(np.int16) - fmt.off).astype(np.float32).reshape(a.shape + (fmt.sub,))
    y = (a[..., None] * v).astype(np.float32)
    if b is not None:
        y = (y + b[..., None]).astype(np.float32)
    return y.reshape(t.shape)
