"""run.c's float32 kernels (matmul, rmsnorm, softmax, SwiGLU, RoPE) in C's summation order.

Every value is a float32 and every operation is rounded to float32 in the C's order: a matmul row
is a *sequential* sum over its inputs (rows of products added one after another, never ``W @ x``
or ``np.sum`` over a contiguous axis, which reorder the sum), and so are the sums of rmsnorm,
softmax and attention. The block-quantized products are in ``blocks``.
"""

from __future__ import annotations

import numpy as np

from ..models import ModelConfig
from .libm import cosf, expf, powf, sinf

__all__ = ["matmul", "rmsnorm", "rope_coefficients", "rope_frequencies", "rotate", "sequential_sum",
           "softmax", "swiglu"]

F32 = np.float32
_ZERO = F32(0.0)
_ONE = F32(1.0)

def sequential_sum(terms: np.ndarray) -> np.ndarray:
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
    return sequential_sum(w_t * x[:, None])


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: np.float32) -> np.ndarray:
    ss = sequential_sum(x * x)
    ss = ss / F32(x.shape[0])
    ss = ss + eps
    ss = _ONE / np.sqrt(ss, dtype=np.float32)
    result: np.ndarray = weight * (ss * x)
    return result


def softmax(x: np.ndarray) -> np.ndarray:
    """run.c ``softmax`` over axis 0 (each trailing column independently)."""
    max_val = np.max(x, axis=0)
    e = expf(x - max_val)
    result: np.ndarray = e / sequential_sum(e)
    return result


def swiglu(hb: np.ndarray, hb2: np.ndarray) -> np.ndarray:
    """``val *= (1.0f / (1.0f + expf(-val))); val *= hb2[i];``"""
    result: np.ndarray = (hb * (_ONE / (_ONE + expf(-hb)))) * hb2
    return result


def rope_frequencies(config: ModelConfig) -> np.ndarray:
    """``1.0f / powf(theta, head_dim / (float)head_size)`` for each pair i = 0, 2, ..., q_dim - 2."""
    head_dim = (np.arange(0, config.q_dim, 2) % config.head_size).astype(np.float32)
    exponents = head_dim / F32(config.head_size)
    return _ONE / np.array([powf(config.rope_theta, e) for e in exponents], dtype=np.float32)


def rope_coefficients(frequencies: np.ndarray, pos: int,
                      factors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fcr, fci) = (cosf(pos * freq), sinf(pos * freq)) for each pair; with ``factors`` (one per
    pair), the angle pos * freq divided by its pair's."""
    val = F32(pos) * frequencies
    if factors is not None:
        val = val / factors
    return cosf(val), sinf(val)


def rotate(vec: np.ndarray, fcr: np.ndarray, fci: np.ndarray) -> np.ndarray:
    pairs = vec.reshape(-1, 2)
    v0, v1 = pairs[:, 0], pairs[:, 1]
    out = np.empty_like(pairs)
    out[:, 0] = v0 * fcr - v1 * fci
    out[:, 1] = v0 * fci + v1 * fcr
    return out.reshape(-1)

