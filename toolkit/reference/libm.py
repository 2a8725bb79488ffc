"""glibc's ``expf``, ``sinf``, ``cosf`` and ``powf`` (x86-64, 2.28 and later) on float32 values.

run.c calls expf, sinf, cosf and powf. glibc implements them in double precision with small
tables and polynomials, and their results are *not* always correctly rounded (sinf differs from
the correctly rounded value for about 1% of inputs, expf and powf for about 0.05%). To reproduce
the C program's float32 results bit for bit, the functions below follow glibc's algorithms step by
step in float64 (sysdeps/ieee754/flt-32: e_expf.c, s_sinf.c, s_cosf.c, s_sincosf.h, e_powf.c).
Where glibc's FMA build fuses a cancelling multiply-subtract (the range reductions), the fused
result is reproduced exactly with a split constant. Checked against glibc 2.36 on x86-64: expf
over a stride of all floats, sinf and cosf exhaustively on [0.7, 5000], powf(10000, e) on random
e in [0, 1): no differences.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np

__all__ = ["cosf", "expf", "powf", "sinf"]

F32 = np.float32
_ZERO = F32(0.0)
_ONE = F32(1.0)
MASK64 = (1 << 64) - 1

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
        entries.append((int(np.float64(value).view(np.uint64)) - (i << (52 - bits))) & MASK64)
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
    scale_bits = (int(_EXP2F_TAB[ki % _EXP2F_N]) + (ki << (52 - _EXP2F_BITS))) & MASK64
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
