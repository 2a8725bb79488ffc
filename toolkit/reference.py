"""A NumPy reference of Karpathy's llama2.c ``run.c``, used to verify generated programs.

Everything here mirrors ``run.c`` operation by operation so that, in float32, the reference's
logits are bit-identical to those of the C program (built with ``-ffp-contract=off``) as often
as possible:

* every value is a float32 and every operation is rounded to float32 in the C's order: a
  matmul row is a *sequential* sum over its inputs (rows of products added one after another,
  never ``W @ x`` or ``np.sum`` over a contiguous axis, which reorder the sum), and so are the
  sums of rmsnorm, softmax and attention;
* ``expf``, ``sinf``, ``cosf`` and ``powf`` follow glibc's algorithms in float64, so they
  return glibc's float32 results (which are not always the correctly rounded ones);
* tokenizer and sampler follow ``encode``, ``decode``, ``safe_printf``, ``sample``,
  ``sample_topp`` and the xorshift generator of ``run.c``, including their C-string quirks.

``generate`` returns what the C program prints plus, per step, how close the step came to
choosing another token (``StepRecord.margin``). ``compare`` uses that margin to tell a real
mismatch from a divergence at a near-tie, where a last-bit difference in a target's libm may
legitimately change the choice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, getcontext

import numpy as np

from . import quant
from .errors import UsageError
from .models import Model, ModelConfig, Tensor, Tokenizer
from .quant import QuantTensor

__all__ = [
    "BOS",
    "Comparison",
    "Generation",
    "Rng",
    "Sampler",
    "StepRecord",
    "Transformer",
    "compare",
    "decode_piece",
    "encode",
    "generate",
]

BOS = 1
"""Token id llama2.c prepends to every prompt; sampling it ends the generation."""

F32 = np.float32
_ZERO = F32(0.0)
_ONE = F32(1.0)
_MASK64 = (1 << 64) - 1
_XORSHIFT_MULTIPLIER = 0x2545F4914F6CDD1D
_NO_MERGE_SCORE = float(F32(-1e10))  # run.c: float best_score = -1e10;
_C_SPACE = frozenset(b" \t\n\v\f\r")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_CONTEXT_BYTES = 20


# --------------------------------------------------------------------------- glibc float functions
#
# run.c calls expf, sinf, cosf and powf. glibc (2.28 and later, x86-64) implements them in double
# precision with small tables and polynomials, and their results are *not* always correctly
# rounded (sinf differs from the correctly rounded value for about 1% of inputs, expf and powf
# for about 0.05%). To reproduce the C program's float32 results bit for bit, the functions below
# follow glibc's algorithms step by step in float64 (sysdeps/ieee754/flt-32: e_expf.c,
# s_sinf.c, s_cosf.c, s_sincosf.h, e_powf.c). Where glibc's FMA build fuses a cancelling
# multiply-subtract (the range reductions), the fused result is reproduced exactly with a
# split constant. Checked against glibc 2.36 on x86-64: expf over a stride of all floats, sinf
# and cosf exhaustively on [0.7, 5000], powf(10000, e) on random e in [0, 1): no differences.


def _hex(literal: str) -> float:
    return float.fromhex(literal)


def _split(value: float) -> tuple[float, float]:
    """Veltkamp split: value == hi + lo with hi holding the top 26 significant bits."""
    scaled = 134217729.0 * value  # 2**27 + 1
    hi = scaled - (scaled - value)
    return hi, value - hi


def _exp2f_table(bits: int) -> tuple[int, ...]:
    """glibc __exp2f_data.tab: bits of 2^(i/N), correctly rounded, minus i << (52 - bits)."""
    getcontext().prec = 60
    entries = []
    for i in range(1 << bits):
        value = float(Decimal(2) ** (Decimal(i) / (1 << bits)))
        entries.append((int(np.float64(value).view(np.uint64)) - (i << (52 - bits))) & _MASK64)
    return tuple(entries)


def _four_over_pi(bits: int) -> int:
    """floor(4/pi * 2**bits), from Machin's formula in fixed point."""
    guard = bits + 64
    one = 1 << guard

    def arctan_inverse(n: int) -> int:
        total, term, k, sign = 0, one // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k, sign = k + 2, -sign
        return total

    pi = 4 * (4 * arctan_inverse(5) - arctan_inverse(239))
    return (4 << (guard + bits)) // pi


_EXP2F_BITS = 5
_EXP2F_N = 1 << _EXP2F_BITS
_EXP2F_TAB = np.array(_exp2f_table(_EXP2F_BITS), dtype=np.uint64)
_EXP2F_POLY = (_hex("0x1.c6af84b912394p-5"), _hex("0x1.ebfce50fac4f3p-3"), _hex("0x1.62e42ff0c52d6p-1"))
_EXPF_POLY = tuple(c / _EXP2F_N ** (3 - i) for i, c in enumerate(_EXP2F_POLY))
_EXPF_INV_LN2_N = _hex("0x1.71547652b82fep+0") * _EXP2F_N
_EXPF_SHIFT = _hex("0x1.8p+52")
_EXPF_OVERFLOW = F32(_hex("0x1.62e42ep6"))
_EXPF_UNDERFLOW = F32(_hex("-0x1.9fe368p6"))

_INV_PIO4 = np.array([_four_over_pi(8 * i + 7) & 0xFFFFFFFF for i in range(24)], dtype=np.uint64)
_PI63 = _hex("0x1.921FB54442D18p-62")  # 2 pi * 2^-64
_HPI_INV = _hex("0x1.45F306DC9C883p+23")  # 2 / pi * 2^24
_HPI_HI, _HPI_LO = _split(_hex("0x1.921FB54442D18p0"))  # pi / 2
_COS_POLY = tuple(map(_hex, ("0x1p0", "-0x1.ffffffd0c621cp-2", "0x1.55553e1068f19p-5",
                             "-0x1.6c087e89a359dp-10", "0x1.99343027bf8c3p-16")))
_SIN_POLY = tuple(map(_hex, ("-0x1.555545995a603p-3", "0x1.1107605230bc4p-7", "-0x1.994eb3774cf24p-13")))
_QUADRANT_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
_TOP12_PIO4, _TOP12_TINY, _TOP12_120, _TOP12_INF = 0x3F4, 0x398, 0x42F, 0x7F8

_POWF_TAB = tuple((_hex(invc), _hex(logc)) for invc, logc in (
    ("0x1.661ec79f8f3bep+0", "-0x1.efec65b963019p-2"), ("0x1.571ed4aaf883dp+0", "-0x1.b0b6832d4fca4p-2"),
    ("0x1.49539f0f010bp+0", "-0x1.7418b0a1fb77bp-2"), ("0x1.3c995b0b80385p+0", "-0x1.39de91a6dcf7bp-2"),
    ("0x1.30d190c8864a5p+0", "-0x1.01d9bf3f2b631p-2"), ("0x1.25e227b0b8eap+0", "-0x1.97c1d1b3b7afp-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.2f9e393af3c9fp-3"), ("0x1.12358f08ae5bap+0", "-0x1.960cbbf788d5cp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.a6f9db6475fcep-5"), ("0x1p+0", "0x0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.338ca9f24f53dp-4"), ("0x1.ca4b31f026aap-1", "0x1.476a9543891bap-3"),
    ("0x1.b2036576afce6p-1", "0x1.e840b4ac4e4d2p-3"), ("0x1.9c2d163a1aa2dp-1", "0x1.40645f0c6651cp-2"),
    ("0x1.886e6037841edp-1", "0x1.88e9c2c1b9ff8p-2"), ("0x1.767dcf5534862p-1", "0x1.ce0a44eb17bccp-2")))
_POWF_POLY = tuple(map(_hex, ("0x1.27616c9496e0bp-2", "-0x1.71969a075c67ap-2", "0x1.ec70a6ca7baddp-2",
                              "-0x1.7154748bef6c8p-1", "0x1.71547652ab82bp0")))


def expf(x: np.ndarray) -> np.ndarray:
    """glibc ``expf`` on a float32 array."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        z = _EXPF_INV_LN2_N * x.astype(np.float64)
        kd = z + _EXPF_SHIFT
        ki = kd.view(np.uint64)
        r = z - (kd - _EXPF_SHIFT)
        scale = (_EXP2F_TAB[ki % np.uint64(_EXP2F_N)] + (ki << np.uint64(52 - _EXP2F_BITS))).view(np.float64)
        c0, c1, c2 = _EXPF_POLY
        y = (c0 * r + c1) * (r * r) + (c2 * r + 1.0)
        out = (y * scale).astype(np.float32)
    out = np.where(x > _EXPF_OVERFLOW, F32(np.inf), out)
    out = np.where(x < _EXPF_UNDERFLOW, _ZERO, out)
    return np.where(np.isnan(x), x, out)


def _reduce_fast(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x - n pi/2 (fused, as glibc's FMA build computes it) and quadrant n, for |x| < 120."""
    n = ((x * _HPI_INV).astype(np.int32) + np.int32(0x800000)) >> np.int32(24)
    nd = n.astype(np.float64)
    return (x - nd * _HPI_HI) - nd * _HPI_LO, n.astype(np.int64)


def _reduce_large(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glibc reduce_large: exact fixed-point reduction with 4/pi bits, for |x| >= 120."""
    xi = bits.astype(np.uint64)
    index = ((xi >> np.uint64(26)) & np.uint64(15)).astype(np.intp)
    m = ((xi & np.uint64(0xFFFFFF)) | np.uint64(0x800000)) << ((xi >> np.uint64(23)) & np.uint64(7))
    res0 = (m * _INV_PIO4[index]) & np.uint64(0xFFFFFFFF)
    res1 = m * _INV_PIO4[index + 4]
    res2 = m * _INV_PIO4[index + 8]
    res0 = ((res2 >> np.uint64(32)) | (res0 << np.uint64(32))) + res1
    n = (res0 + np.uint64(1 << 61)) >> np.uint64(62)
    res0 = res0 - (n << np.uint64(62))
    return res0.view(np.int64).astype(np.float64) * _PI63, n.astype(np.int64)


def _sincos_poly(x: np.ndarray, x2: np.ndarray, negate_cos: np.ndarray, use_cos: np.ndarray) -> np.ndarray:
    """glibc sinf_poly for every element: the sine or (possibly negated) cosine polynomial."""
    s1, s2, s3 = _SIN_POLY
    x3 = x * x2
    sine = (x + x3 * s1) + (x3 * x2) * (s2 + x2 * s3)
    c0, c1, c2, c3, c4 = (np.where(negate_cos, -c, c) for c in _COS_POLY)
    x4 = x2 * x2
    cosine = (c0 + x2 * c1 + x4 * c2) + (x4 * x2) * (c3 + x2 * c4)
    result: np.ndarray = np.where(use_cos, cosine, sine)
    return result


def _sincosf(y: np.ndarray, cosine: bool) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    bits = y.view(np.uint32)
    top = (bits >> np.uint32(20)) & np.uint32(0x7FF)
    x = y.astype(np.float64)
    n = np.zeros(y.shape, dtype=np.int64)
    quadrant = np.zeros(y.shape, dtype=np.int64)
    fast = (top >= _TOP12_PIO4) & (top < _TOP12_120)
    large = (top >= _TOP12_120) & (top < _TOP12_INF)
    if fast.any():
        x[fast], n[fast] = _reduce_fast(x[fast])
        quadrant[fast] = n[fast]
    if large.any():
        x[large], n[large] = _reduce_large(bits[large])
        quadrant[large] = n[large] + (bits[large] >> np.uint32(31)).astype(np.int64)
    sign = np.where(top < _TOP12_PIO4, 1.0, _QUADRANT_SIGN[quadrant & 3])
    use_cos = ((n ^ int(cosine)) & 1) != 0
    with np.errstate(invalid="ignore"):  # inf and NaN inputs: replaced below
        out = _sincos_poly(x * sign, x * x, (quadrant & 2) != 0, use_cos).astype(np.float32)
    out = np.where(top < _TOP12_TINY, _ONE if cosine else y, out)
    return np.where(top >= _TOP12_INF, F32(np.nan), out)


def sinf(x: np.ndarray) -> np.ndarray:
    """glibc ``sinf`` on a float32 array."""
    return _sincosf(x, cosine=False)


def cosf(x: np.ndarray) -> np.ndarray:
    """glibc ``cosf`` on a float32 array."""
    return _sincosf(x, cosine=True)


def _powf_log2(ix: int) -> float:
    """glibc powf's log2_inline for the bits of a positive normal float."""
    tmp = (ix - 0x3F330000) & 0xFFFFFFFF
    top = tmp & 0xFF800000
    k = (top - (1 << 32) if top & 0x80000000 else top) >> 23
    invc, logc = _POWF_TAB[(tmp >> 19) % 16]
    z = float(np.uint32((ix - top) & 0xFFFFFFFF).view(np.float32))
    invc_hi, invc_lo = _split(invc)
    r = (z * invc_hi - 1.0) + z * invc_lo  # fma(z, invc, -1): both products are exact
    a0, a1, a2, a3, a4 = _POWF_POLY
    r2 = r * r
    q = (a2 * r + a3) * r2 + (a4 * r + (logc + k))
    return (a0 * r + a1) * (r2 * r2) + q


def _powf_exp2(xd: float) -> float:
    """glibc powf's exp2_inline (positive result)."""
    shift = _EXPF_SHIFT / _EXP2F_N
    kd = xd + shift
    ki = int(np.float64(kd).view(np.uint64))
    r = xd - (kd - shift)
    scale_bits = (int(_EXP2F_TAB[ki % _EXP2F_N]) + (ki << (52 - _EXP2F_BITS))) & _MASK64
    c0, c1, c2 = _EXP2F_POLY
    y = (c0 * r + c1) * (r * r) + (c2 * r + 1.0)
    return y * float(np.uint64(scale_bits).view(np.float64))


def powf(x: float, y: float) -> np.float32:
    """glibc ``powf`` for a positive normal finite ``x`` and a finite ``y`` of modest size."""
    x32, y32 = F32(x), F32(y)
    if y32 == 0 or x32 == 1:
        return _ONE
    if not (np.isfinite(x32) and x32 >= F32(np.finfo(np.float32).tiny) and np.isfinite(y32)):
        raise ValueError(f"powf({x!r}, {y!r}) is outside what the reference implements")
    ylogx = float(y32) * _powf_log2(int(x32.view(np.uint32)))
    if abs(ylogx) >= 126.0:
        raise ValueError(f"powf({x!r}, {y!r}) over- or underflows")
    return F32(_powf_exp2(ylogx))


# --------------------------------------------------------------------------- float32 kernels


def _sequential_sum(terms: np.ndarray) -> np.ndarray:
    """``float acc = 0.0f; for (j...) acc += terms[j];`` over axis 0, for each trailing index.

    ``np.add.reduce`` over axis 0 of a C-contiguous array adds whole rows one after another, so
    every trailing index gets a sequential float32 sum. Reducing a single row (1-D input, or one
    trailing element) would be pairwise instead, so those go through ``np.add.accumulate``.
    """
    terms = np.ascontiguousarray(terms, dtype=np.float32)
    if terms.ndim >= 2 and terms[0].size >= 2:
        total = np.add.reduce(terms, axis=0)
    else:
        total = np.add.accumulate(terms, axis=0)[-1]
    result: np.ndarray = total + _ZERO  # C starts from +0.0f: only an all-(-0) sum's sign changes
    return result


def matmul(w_t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """run.c ``matmul`` W @ x, with ``W`` given transposed (``w_t = W.T``, shape (n, d))."""
    return _sequential_sum(w_t * x[:, None])


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: np.float32) -> np.ndarray:
    ss = _sequential_sum(x * x)
    ss = ss / F32(x.shape[0])
    ss = ss + eps
    ss = _ONE / np.sqrt(ss, dtype=np.float32)
    result: np.ndarray = weight * (ss * x)
    return result


def softmax(x: np.ndarray) -> np.ndarray:
    """run.c ``softmax`` over axis 0 (each trailing column independently)."""
    max_val = np.max(x, axis=0)
    e = expf(x - max_val)
    result: np.ndarray = e / _sequential_sum(e)
    return result


def swiglu(hb: np.ndarray, hb2: np.ndarray) -> np.ndarray:
    """``val *= (1.0f / (1.0f + expf(-val))); val *= hb2[i];``"""
    result: np.ndarray = (hb * (_ONE / (_ONE + expf(-hb)))) * hb2
    return result


def rope_frequencies(config: ModelConfig) -> np.ndarray:
    """``1.0f / powf(theta, head_dim / (float)head_size)`` for each pair i = 0, 2, ..., dim - 2."""
    head_dim = (np.arange(0, config.dim, 2) % config.head_size).astype(np.float32)
    exponents = head_dim / F32(config.head_size)
    return _ONE / np.array([powf(config.rope_theta, e) for e in exponents], dtype=np.float32)


def rope_coefficients(frequencies: np.ndarray, pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(fcr, fci) = (cosf(pos * freq), sinf(pos * freq)) for each pair."""
    val = F32(pos) * frequencies
    return cosf(val), sinf(val)


def _rotate(vec: np.ndarray, fcr: np.ndarray, fci: np.ndarray) -> np.ndarray:
    pairs = vec.reshape(-1, 2)
    v0, v1 = pairs[:, 0], pairs[:, 1]
    out = np.empty_like(pairs)
    out[:, 0] = v0 * fcr - v1 * fci
    out[:, 1] = v0 * fci + v1 * fcr
    return out.reshape(-1)


# --------------------------------------------------------------------------- transformer


Linear = Callable[[np.ndarray], np.ndarray]
"""x -> W @ x, for a dense or a block-quantized W."""


@dataclass(frozen=True)
class _Layer:
    """One layer's weights: norms, and matrices as Linear maps."""

    rms_att: np.ndarray
    wq: Linear
    wk: Linear
    wv: Linear
    wo: Linear
    rms_ffn: np.ndarray
    w1: Linear
    w2: Linear
    w3: Linear


def _linear(matrix: Tensor) -> Linear:
    """A dense matrix as run.c's matmul (transposed once so a column is contiguous), a quantized
    one as the engine's quantized kernel (toolkit.quant.matvec)."""
    if isinstance(matrix, QuantTensor):
        return functools.partial(quant.matvec, matrix)
    return functools.partial(matmul, np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T))


def _layer_matrix(tensor: Tensor, index: int) -> Tensor:
    return tensor.rows_of(index) if isinstance(tensor, QuantTensor) else tensor[index]


def _dense(tensor: Tensor) -> np.ndarray:
    """Float32 values (an embedding table is looked up dequantized, as the engine does)."""
    return quant.dequantize(tensor) if isinstance(tensor, QuantTensor) else np.asarray(tensor, dtype=np.float32)


def _vector(vector: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vector, dtype=np.float32)


class Transformer:
    """run.c's ``Transformer``: the weights plus the key/value cache of one generation."""

    def __init__(self, model: Model) -> None:
        c = model.config
        t = model.tensors
        self.config = c
        self.eps = F32(c.norm_eps)
        self.embeddings = _vector(_dense(t["tok_embeddings"]))
        norms = {name: _dense(t[name]) for name in ("rms_att", "rms_ffn", "rms_final")}
        self.layers = [self._layer(t, norms, i) for i in range(c.n_layers)]
        self.rms_final = _vector(norms["rms_final"])
        self.classifier = _linear(model.classifier())
        self.key_cache = np.zeros((c.n_layers, c.seq_len, c.kv_dim), dtype=np.float32)
        self.value_cache = np.zeros_like(self.key_cache)
        self.head_to_kv = np.arange(c.n_heads) // (c.n_heads // c.n_kv_heads)
        self.sqrt_head_size = np.sqrt(F32(c.head_size), dtype=np.float32)
        self.frequencies = rope_frequencies(c)

    @staticmethod
    def _layer(t: dict[str, Tensor], norms: dict[str, np.ndarray], i: int) -> _Layer:
        def lin(name: str) -> Linear:
            return _linear(_layer_matrix(t[name], i))

        return _Layer(_vector(norms["rms_att"][i]), lin("wq"), lin("wk"), lin("wv"), lin("wo"),
                      _vector(norms["rms_ffn"][i]), lin("w1"), lin("w2"), lin("w3"))

    def forward(self, token: int, pos: int) -> np.ndarray:
        """Logits (float32, vocab_size) for ``token`` at ``pos``; fills the cache at ``pos``."""
        c = self.config
        x = self.embeddings[token].copy()
        fcr, fci = rope_coefficients(self.frequencies, pos)
        half_kv = c.kv_dim // 2
        for index, layer in enumerate(self.layers):
            xb = rmsnorm(x, layer.rms_att, self.eps)
            q = _rotate(layer.wq(xb), fcr, fci)
            self.key_cache[index, pos] = _rotate(layer.wk(xb), fcr[:half_kv], fci[:half_kv])
            self.value_cache[index, pos] = layer.wv(xb)
            x = x + layer.wo(self._attention(index, q, pos))
            xb = rmsnorm(x, layer.rms_ffn, self.eps)
            hb = swiglu(layer.w1(xb), layer.w3(xb))
            x = x + layer.w2(hb)
        x = rmsnorm(x, self.rms_final, self.eps)
        return self.classifier(x)

    def _attention(self, layer: int, q: np.ndarray, pos: int) -> np.ndarray:
        """Multi-head attention of ``q`` over positions 0..pos; returns xb (dim,)."""
        c = self.config
        steps = pos + 1
        shape = (steps, c.n_kv_heads, c.head_size)
        keys = self.key_cache[layer, :steps].reshape(shape)[:, self.head_to_kv]  # (T, H, hs)
        values = self.value_cache[layer, :steps].reshape(shape)[:, self.head_to_kv]
        q_t = q.reshape(c.n_heads, c.head_size).T  # (hs, H)
        products = np.multiply(keys.transpose(2, 0, 1), q_t[:, None, :], order="C")  # (hs, T, H)
        att = softmax(_sequential_sum(products) / self.sqrt_head_size)  # (T, H)
        xb = _sequential_sum(att[:, :, None] * values)  # (H, hs)
        return xb.reshape(c.dim)


# --------------------------------------------------------------------------- tokenizer


def _c_string(data: bytes) -> bytes:
    """The bytes C sees through a ``char*``: everything up to the first NUL."""
    end = data.find(b"\0")
    return data if end < 0 else data[:end]


def _bsearch(key: bytes, ordered: list[bytes]) -> int:
    """Index glibc's ``bsearch`` returns for ``key`` in ``ordered`` (strcmp order), or -1."""
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high) // 2
        if key < ordered[middle]:
            high = middle
        elif key > ordered[middle]:
            low = middle + 1
        else:
            return middle
    return -1


@dataclass(frozen=True)
class _Vocab:
    """A tokenizer as ``run.c`` sees it: C-string pieces and a ``str_lookup`` table."""

    pieces: tuple[bytes, ...]
    scores: tuple[float, ...]
    ids: dict[bytes, int]

    def lookup(self, text: bytes) -> int:
        """run.c ``str_lookup``: the id bsearch finds for ``text``, -1 when absent."""
        return self.ids.get(text, -1)


@functools.lru_cache(maxsize=8)
def _vocab(tokenizer: Tokenizer) -> _Vocab:
    pieces = tuple(_c_string(piece) for piece in tokenizer.pieces)
    order = sorted(range(len(pieces)), key=lambda i: pieces[i])  # stable: ties in id order
    ordered = [pieces[i] for i in order]
    ids = {piece: order[_bsearch(piece, ordered)] for piece in set(pieces)}
    return _Vocab(pieces, tuple(tokenizer.scores), ids)


def _as_bytes(text: bytes | str) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def _codepoint_tokens(vocab: _Vocab, text: bytes) -> list[int]:
    """run.c encode's UTF-8 loop: look up each codepoint, else fall back to byte tokens."""
    tokens: list[int] = []
    buffer = bytearray()
    for index, byte in enumerate(text):
        if byte & 0xC0 != 0x80:
            buffer.clear()
        buffer.append(byte)
        following = text[index + 1] if index + 1 < len(text) else 0
        if following & 0xC0 == 0x80 and len(buffer) < 4:
            continue
        found = vocab.lookup(bytes(buffer))
        tokens.extend([found] if found != -1 else [b + 3 for b in buffer])
        buffer.clear()
    return tokens


def _best_merge(vocab: _Vocab, tokens: list[int]) -> tuple[int, int]:
    """(index, merged id) of the highest-scoring adjacent pair in the vocab, or (-1, -1)."""
    best_score, best_id, best_index = _NO_MERGE_SCORE, -1, -1
    for index in range(len(tokens) - 1):
        merged = vocab.lookup(vocab.pieces[tokens[index]] + vocab.pieces[tokens[index + 1]])
        if merged != -1 and vocab.scores[merged] > best_score:
            best_score, best_id, best_index = vocab.scores[merged], merged, index
    return best_index, best_id


def encode(tokenizer: Tokenizer, text: bytes | str, bos: bool = True) -> list[int]:
    """run.c ``encode`` (without EOS): token ids for ``text`` (a C string: cut at a NUL)."""
    vocab = _vocab(tokenizer)
    data = _c_string(_as_bytes(text))
    tokens = [BOS] if bos else []
    if data and vocab.lookup(b" ") != -1:
        tokens.append(vocab.lookup(b" "))
    tokens.extend(_codepoint_tokens(vocab, data))
    bad = [token for token in tokens if token >= len(vocab.pieces)]
    if bad:
        raise UsageError(f"the prompt needs byte token {bad[0]} but the vocabulary has "
                         f"{len(vocab.pieces)} tokens")
    while True:
        index, merged = _best_merge(vocab, tokens)
        if index == -1:
            return tokens
        tokens[index:index + 2] = [merged]


def _scan_hex_byte(piece: bytes) -> int | None:
    """``sscanf(piece, "<0x%02hhX>", &byte)``: the byte when the conversion succeeds."""
    if not piece.startswith(b"<0x"):
        return None
    rest = piece[3:]
    index = 0
    while index < len(rest) and rest[index] in _C_SPACE:
        index += 1
    width, negative = 2, False
    if index < len(rest) and rest[index] in b"+-":
        negative = rest[index] == ord("-")
        index, width = index + 1, width - 1
    digits = bytearray()
    while width and index < len(rest) and rest[index] in _HEX_DIGITS:
        digits.append(rest[index])
        index, width = index + 1, width - 1
    if not digits:
        return None
    value = int(digits, 16)
    return (-value if negative else value) & 0xFF


def _safe_printf(piece: bytes) -> bytes:
    """What run.c ``safe_printf`` writes for the C string ``piece``."""
    if len(piece) == 1 and not (0x20 <= piece[0] <= 0x7E or piece[0] in _C_SPACE):
        return b""
    return piece


def decode_piece(tokenizer: Tokenizer, prev: int, token: int) -> bytes:
    """The bytes run.c prints for ``token`` following ``prev`` (``decode`` + ``safe_printf``)."""
    piece = _vocab(tokenizer).pieces[token]
    if prev == BOS and piece.startswith(b" "):
        piece = piece[1:]
    byte = _scan_hex_byte(piece)
    if byte is not None:
        piece = bytes([byte]) if byte else b""  # byte_pieces: the byte, then NUL
    return _safe_printf(piece)


# --------------------------------------------------------------------------- sampler


class Rng:
    """run.c's xorshift* generator (``random_u32`` / ``random_f32``) on a uint64 state."""

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK64

    def u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & _MASK64
        s ^= s >> 27
        self.state = s
        return ((s * _XORSHIFT_MULTIPLIER) & _MASK64) >> 32

    def f32(self) -> np.float32:
        return F32((self.u32() >> 8) / 16777216.0)


def _boundary_distance(point: float, cdf: np.ndarray, index: int) -> float:
    """Distance of ``point`` from the cdf interval [cdf[index-1], cdf[index]] it fell in."""
    lower = float(cdf[index - 1]) if index > 0 else 0.0
    return min(abs(point - lower), abs(float(cdf[index]) - point))


def sample_argmax(logits: np.ndarray) -> tuple[int, float]:
    """(first index of the maximum, top-1 minus top-2 logit)."""
    best = int(np.argmax(logits))
    if logits.shape[0] < 2:
        return best, math.inf
    rest = np.delete(logits, best)
    return best, float(logits[best]) - float(np.max(rest))


def sample_mult(probabilities: np.ndarray, coin: np.float32) -> tuple[int, float]:
    """(first i with coin < cdf[i], else n-1; distance of coin from its cdf boundaries)."""
    cdf = np.add.accumulate(probabilities, dtype=np.float32)
    hits = np.nonzero(coin < cdf)[0]
    index = int(hits[0]) if hits.size else probabilities.shape[0] - 1
    return index, _boundary_distance(float(coin), cdf, index)


def _topp_pick(cdf: np.ndarray, last: int, coin: np.float32) -> tuple[int, float]:
    """Position in the sorted candidates run.c picks with ``last_idx = last``, and the margin."""
    r = coin * cdf[last]
    hits = np.nonzero(r < cdf[:last + 1])[0]
    chosen = int(hits[0]) if hits.size else last
    return chosen, _boundary_distance(float(r), cdf, chosen)


def sample_topp(probabilities: np.ndarray, topp: np.float32, coin: np.float32) -> tuple[int, float]:
    """run.c ``sample_topp``: (token, margin).

    The margin is the distance of ``r = coin * cumulative`` from the cdf boundaries of the
    chosen candidate; when the top-p cut itself (``cumulative > topp``) was closer than that
    and moving it by one candidate would change the token, the cut's distance instead.
    """
    n = probabilities.shape[0]
    cutoff = (_ONE - topp) / F32(n - 1)
    kept = np.nonzero(probabilities >= cutoff)[0]
    if kept.size == 0:
        raise UsageError(f"top-p {float(topp)} keeps no token (llama2.c's behaviour is undefined here)")
    order = kept[np.argsort(-probabilities[kept], kind="stable")]
    cdf = np.add.accumulate(probabilities[order], dtype=np.float32)
    crossed = np.nonzero(cdf > topp)[0]
    last = int(crossed[0]) if crossed.size else order.size - 1
    chosen, margin = _topp_pick(cdf, last, coin)
    for other, distance in _neighbouring_cuts(cdf, last, topp, crossed.size > 0):
        if distance < margin and _topp_pick(cdf, other, coin)[0] != chosen:
            margin = distance
    return int(order[chosen]), margin


def _neighbouring_cuts(cdf: np.ndarray, last: int, topp: np.float32,
                       crossed: bool) -> list[tuple[int, float]]:
    """The cuts a slightly different cdf could make, each with how far this one is from it."""
    cuts: list[tuple[int, float]] = []
    if last > 0:
        cuts.append((last - 1, float(topp) - float(cdf[last - 1])))
    if crossed and last + 1 < cdf.shape[0]:
        cuts.append((last + 1, float(cdf[last]) - float(topp)))
    return cuts


class Sampler:
    """run.c ``Sampler``: temperature and top-p as float32, xorshift state from the seed."""

    def __init__(self, temperature: float, topp: float, seed: int) -> None:
        self.temperature = F32(temperature)
        self.topp = F32(topp)
        self.rng = Rng(seed)

    def sample(self, logits: np.ndarray) -> tuple[int, float]:
        """(next token, margin: how close the choice was to being another token)."""
        if self.temperature == _ZERO:
            return sample_argmax(logits)
        probabilities = softmax(logits / self.temperature)
        coin = self.rng.f32()
        if self.topp <= 0 or self.topp >= 1:
            return sample_mult(probabilities, coin)
        return sample_topp(probabilities, self.topp, coin)


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class StepRecord:
    """One iteration of run.c's generate loop.

    ``token`` is the ``next`` token chosen at ``pos``; ``sampled`` is False while the prompt
    forces it. ``margin`` says how close the step came to choosing differently: top-1 minus
    top-2 logit for greedy steps, the distance of the (scaled) coin from the nearest cdf
    boundary in probability units for sampled steps, infinity for forced steps.
    ``printed`` is what the step wrote to stdout (empty when it sampled BOS and stopped).
    """

    pos: int
    token: int
    sampled: bool
    margin: float
    printed: bytes


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # the first prompt token (BOS), then each step's token
    steps: list[StepRecord]
    text: bytes  # exactly what stdout carries, trailing newline included


def _resolve_steps(steps: int, seq_len: int) -> int:
    if steps < 0:
        raise UsageError(f"steps must be >= 0, got {steps}")
    return seq_len if steps == 0 or steps > seq_len else steps


def _sampler_for(temperature: float, topp: float, seed: int) -> Sampler:
    """run.c main's option overrides, then the sampler."""
    temperature32, topp32 = F32(temperature), F32(topp)
    if temperature32 < 0:
        temperature32 = _ZERO
    if topp32 < 0 or topp32 > 1:
        topp32 = F32(0.9)
    if seed & _MASK64 == 0 and temperature32 != 0:
        raise UsageError("seed 0 makes llama2.c seed from the clock, which cannot be verified",
                         "pass a non-zero seed")
    return Sampler(float(temperature32), float(topp32), seed)


def generate(model: Model, prompt: bytes | str, temperature: float, topp: float, seed: int,
             steps: int) -> Generation:
    """Run run.c's ``generate`` on ``model`` and record what it prints."""
    steps = _resolve_steps(steps, model.config.seq_len)
    sampler = _sampler_for(temperature, topp, seed)
    prompt_tokens = encode(model.tokenizer, prompt)
    transformer = Transformer(model)
    token = prompt_tokens[0]
    tokens, records = [token], []
    for pos in range(steps):
        logits = transformer.forward(token, pos)
        if pos < len(prompt_tokens) - 1:
            following, sampled, margin = prompt_tokens[pos + 1], False, math.inf
        else:
            (following, margin), sampled = sampler.sample(logits), True
        tokens.append(following)
        if following == BOS:
            records.append(StepRecord(pos, following, sampled, margin, b""))
            break
        printed = decode_piece(model.tokenizer, token, following)
        records.append(StepRecord(pos, following, sampled, margin, printed))
        token = following
    text = b"".join(record.printed for record in records) + b"\n"
    return Generation(tokens, records, text)


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    ok: bool
    message: str  # one line


def _common_prefix(a: bytes, b: bytes) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def _spans(steps: list[StepRecord]) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each step's printed piece in the output."""
    spans, offset = [], 0
    for step in steps:
        spans.append((offset, offset + len(step.printed)))
        offset += len(step.printed)
    return spans


def _suspects(spans: list[tuple[int, int]], divergence: int) -> list[int]:
    """Steps whose token may be the first one the program chose differently.

    That token prints from its step's start on, so it is the step whose piece contains the
    first differing byte, or one whose piece ends right there (the program's token extended it,
    or printed where the reference printed nothing, or went on where the reference stopped).
    """
    return [k for k, (start, end) in enumerate(spans) if start <= divergence <= end]


def _mismatch_message(reference: Generation, actual: bytes, step: int, start: int) -> str:
    record = reference.steps[step]
    shown = actual[start:start + max(_CONTEXT_BYTES, len(record.printed))]
    before = reference.text[max(0, start - _CONTEXT_BYTES):start]
    return (f"first mismatch at step {step} (position {record.pos}): reference token {record.token} "
            f"printed {record.printed[:_CONTEXT_BYTES]!r} but the program printed {shown!r} "
            f"(after {before!r})")


def _end_message(reference: Generation, actual: bytes, divergence: int) -> str:
    last = len(reference.steps) - 1
    where = f"the last step ({last}, position {reference.steps[last].pos})" if last >= 0 else "no step"
    return (f"first mismatch after {where}: "
            f"the reference ends with {reference.text[divergence:]!r} but the program printed "
            f"{actual[divergence:divergence + _CONTEXT_BYTES]!r} "
            f"(after {reference.text[max(0, divergence - _CONTEXT_BYTES):divergence]!r})")


def compare(reference: Generation, actual_stdout: bytes, tie_margin: float = 1e-4) -> Comparison:
    """Check a program's stdout against the reference; a divergence at a near-tie passes.

    The divergence is attributed to the steps whose printed pieces meet the first differing
    byte; when the closest of them was a near-tie (margin below ``tie_margin``) the outputs are
    accepted as agreeing up to there, since a last-bit difference may flip such a choice.
    """
    if actual_stdout == reference.text:
        return Comparison(True, f"verified: {len(reference.steps)} tokens identical to the NumPy "
                                f"reference ({len(reference.text)} bytes)")
    divergence = _common_prefix(reference.text, actual_stdout)
    spans = _spans(reference.steps)
    suspects = _suspects(spans, divergence)
    if suspects:
        tied = min(suspects, key=lambda k: reference.steps[k].margin)
        margin = reference.steps[tied].margin
        if margin < tie_margin:
            return Comparison(True, f"outputs agree up to step {tied} (byte {divergence}) and "
                                    f"diverge there at a near-tie (margin {margin:.3g} < "
                                    f"{tie_margin:g}); comparison stopped there")
    containing = [k for k in suspects if spans[k][0] <= divergence < spans[k][1]]
    if not containing:
        return Comparison(False, _end_message(reference, actual_stdout, divergence))
    step = containing[0]
    return Comparison(False, _mismatch_message(reference, actual_stdout, step, spans[step][0]))
