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
