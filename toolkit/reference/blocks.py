"""The engine's block-quantized matrix-vector products, as the reference's forward pass uses them.

A matrix in 32-value blocks (``toolkit.quant.QuantTensor``) multiplies its input one of two ways,
as the converted file's header says:

* int8 activations (llama2.c models converted with ``--quant``): ``toolkit.quant.matvec``;
* GGUF blocks kept bit for bit (q5_0 .. iq4_xs, ``toolkit.quant.BlockTensor``): ``BlockMatrix``,
  the engine's ``ppcllm_matvec_kq_scalar`` (its definition in toolkit/quant.py);
* float32 activations (``Activations.FLOAT32``: blocks kept as a GGUF file stored them, q8_0,
  q4_0, q4_1), which the kernel takes as 16-bit integers: ``matvec_wide``, the engine's
  ``ppcllm_prepare_fvec`` + ``ppcllm_matvec_blk_scalar``. The input is cut into groups of
  32 with one float32 scale each (``s = amax / 32767``, ``q = roundf(x / s)``); lane ``l`` of group
  ``g`` sums the exact integer products of the values 4l..4l+3 and 16+4l..16+4l+3, and each lane
  accumulates ``acc[l] = fmaf((float)isum, d[g] * s[g], acc[l])`` (q4_1 adds
  ``fmaf((float)qsum, m[g] * s[g], acc[l])``, qsum the lane's sum of ``q``); the row's result is
  ``(acc[0] + acc[1]) + (acc[2] + acc[3])``. The AltiVec kernel matches the scalar one bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..quant import GROUP, LANES, BlockTensor, QuantTensor, decode_blocks, matvec, padded_groups

__all__ = ["BlockMatrix", "WideMatrix", "matvec", "matvec_wide", "quantize_wide"]

F32 = np.float32
_WIDE_MAX = 32767.0
_EXACT = 2.0 ** 24  # float32 holds every integer below this


def _roundf(v: np.ndarray) -> np.ndarray:
    """C's roundf (half away from zero) of float32 values, exactly (NaN stays NaN)."""
    wide = v.astype(np.float64)
    return np.copysign(np.floor(np.abs(wide) + 0.5), wide)


def quantize_wide(x: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``ppcllm_prepare_fvec``: (int64 values q, (groups * 32,); float32 scales s, (groups,)).

    NaN inputs are skipped by the maximum (``v > amax`` is false) and, like infinite ones, give 0.
    """
    padded = np.zeros(groups * GROUP, dtype=np.float32)
    padded[:x.shape[0]] = x
    blocks = padded.reshape(groups, GROUP)
    magnitude = np.abs(blocks)
    amax = np.max(np.where(np.isnan(magnitude), F32(0.0), magnitude), axis=1)
    s = (amax / F32(_WIDE_MAX)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(s != 0, F32(1.0) / s, F32(0.0)).astype(np.float32)
        r = _roundf((blocks * inv[:, None]).astype(np.float32))
        q = np.where(np.abs(r) <= _WIDE_MAX, r, 0.0).astype(np.int64)
    return q.reshape(-1), s


def _lanes(values: np.ndarray, groups: int) -> np.ndarray:
    """(rows, groups * 32) -> float32 (groups, 4, rows, 8), contiguous: lane l of group g holds
    the elements 4l..4l+3 and 16+4l..16+4l+3 of the group."""
    rows = values.shape[0]
    split = values.reshape(rows, groups, 2, LANES, 4).transpose(1, 3, 0, 2, 4)
    return split.reshape(groups, LANES, rows, 8).astype(np.float32)


class WideMatrix:
    """A 2-D QuantTensor W as the engine's block kernel multiplies it with float32 inputs.

    The codes are laid out lane by lane once, as float32 (4 bytes per weight, for speed: each
    product is then a batched matrix-vector product, exact in float32 as long as a lane's sum stays
    below 2^24; codes too large for that, q8_0's, take the input's two bytes apart)."""

    def __init__(self, q: QuantTensor) -> None:
        self.rows, self.groups = q.scales.shape
        self.lanes = _lanes(q.values, self.groups)  # (groups, 4, rows, 8)
        self.scales, self.mins = q.scales, q.mins
        self.split = 8 * int(np.max(np.abs(q.values.astype(np.int32)), initial=0)) * _WIDE_MAX >= _EXACT

    def _lane_sums(self, qx: np.ndarray) -> np.ndarray:
        """(groups, rows, 4) float64: each lane's exact integer sum of code x activation."""
        if self.split:
            hi = np.floor_divide(qx, 256)
            halves = _lanes(np.stack([qx - 256 * hi, hi]).astype(np.float32), self.groups)  # (groups, 4, 2, 8)
            isum = np.matmul(self.lanes, halves[:, :, 1, :, None]).astype(np.float64) * 256.0 + \
                np.matmul(self.lanes, halves[:, :, 0, :, None])
        else:
            isum = np.matmul(self.lanes, _lanes(qx[None, :].astype(np.float32), self.groups)[:, :, 0, :, None])
        result: np.ndarray = isum[..., 0].transpose(0, 2, 1).astype(np.float64)
        return result

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """out = W @ x, as ``ppcllm_matvec_blk_scalar`` computes it: per lane and group,
        ``acc = fmaf((float)isum, d * s, acc)`` (then q4_1's ``fmaf((float)qsum, m * s, acc)``)."""
        qx, sx = quantize_wide(x, self.groups)
        isum = self._lane_sums(qx).astype(np.float32).astype(np.float64)  # (float)isum
        ds = (self.scales * sx[None, :]).astype(np.float32).T.astype(np.float64)  # (groups, rows)
        products = isum * ds[:, :, None]  # exact: float x float fits a double
        terms = [products]
        if self.mins is not None:
            qsum = qx.reshape(self.groups, 2, LANES, 4).sum(axis=(1, 3)).astype(np.float32)  # (groups, 4)
            ms = (self.mins * sx[None, :]).astype(np.float32).T.astype(np.float64)
            terms.append(qsum.astype(np.float64)[:, None, :] * ms[:, :, None])
        acc = np.zeros((self.rows, LANES), dtype=np.float32)
        for g in range(self.groups):
            for term in terms:
                acc = (term[g] + acc).astype(np.float32)  # fmaf: one rounding of product + acc
        result: np.ndarray = (acc[:, 0] + acc[:, 1]) + (acc[:, 2] + acc[:, 3])
        return result.astype(np.float32)


def matvec_wide(q: QuantTensor, x: np.ndarray) -> np.ndarray:
    """out = W @ x for a 2-D QuantTensor W and float32 x, as the engine's block kernel computes it."""
    return WideMatrix(q)(x)


class BlockMatrix:
    """A BlockTensor as ``ppcllm_matvec_kq_scalar`` multiplies it with float32 inputs: per
    sub-block the exact isum = sum(u * q) and qsum = sum(q), one float32 accumulator per row over
    the sub-blocks in order, ``acc = fmaf((float)(isum - off * qsum), A * s, acc)`` (then, with a
    minimum, ``acc = fmaf((float)qsum, B * s, acc)``).

    The codes are kept as float32 (sub-block, row, value): every partial sum of u * lo (< 2^24)
    and of u * hi (< 2^21) is an exact float32 integer, so a batched matrix product is exact."""

    def __init__(self, t: BlockTensor) -> None:
        fmt = t.format
        self.off, self.sub = fmt.off, fmt.sub
        self.rows, self.cols = t.shape[0], t.shape[1]
        u, self.a, self.b = decode_blocks(t)
        self.nsb = self.cols // fmt.sub
        self.u = np.ascontiguousarray(u.reshape(self.rows, self.nsb, self.sub).transpose(1, 0, 2), dtype=np.float32)
        self.groups = padded_groups(self.cols)
        self.group_of = (np.arange(self.nsb) * self.sub) // GROUP

    def __call__(self, x: np.ndarray) -> np.ndarray:
        qx, sx = quantize_wide(x, self.groups)
        q = qx[:self.cols].reshape(self.nsb, self.sub)
        hi = np.floor_divide(q, 256)
        lo = q - 256 * hi
        isum = np.matmul(self.u, hi.astype(np.float32)[:, :, None])[..., 0].astype(np.float64) * 256.0 + \
            np.matmul(self.u, lo.astype(np.float32)[:, :, None])[..., 0].astype(np.float64)  # (nsb, rows)
        qsum = q.sum(axis=1)  # (nsb,) int64
        ival = (isum - float(self.off) * qsum[:, None].astype(np.float64)).astype(np.float32).astype(np.float64)
        s = sx[self.group_of]  # (nsb,)
        a_s = (self.a * s[None, :]).astype(np.float32).T.astype(np.float64)  # (nsb, rows)
        terms = ival * a_s
        if self.b is not None:
            b_s = (self.b * s[None, :]).astype(np.float32).T.astype(np.float64)
            qterm = qsum.astype(np.float32).astype(np.float64)[:, None] * b_s
        acc = np.zeros(self.rows, dtype=np.float32)
        for sb in range(self.nsb):
            acc = (terms[sb] + acc).astype(np.float32)  # fmaf: one rounding of product + acc
            if self.b is not None:
                acc = (qterm[sb] + acc).astype(np.float32)
        return acc
