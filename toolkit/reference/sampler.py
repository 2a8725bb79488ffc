"""run.c's sampler: ``sample_argmax``, ``sample_mult``, ``sample_topp`` and the xorshift* generator.

Each ``sample`` returns the token and a margin: how close the choice came to being another token
(top-1 minus top-2 logit when greedy; the coin's distance from its cdf boundaries, in probability
units, when sampling), which ``compare`` uses to tell a real mismatch from a near-tie.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UsageError
from .kernels import softmax

__all__ = ["Rng", "Sampler", "sample_argmax", "sample_mult", "sample_topp", "sampler_for"]

F32 = np.float32
_ZERO = F32(0.0)
_ONE = F32(1.0)
_XORSHIFT_MULTIPLIER = 0x2545F4914F6CDD1D
MASK64 = (1 << 64) - 1


class Rng:
    """run.c's xorshift* generator (``random_u32`` / ``random_f32``) on a uint64 state."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & MASK64
        s ^= s >> 27
        self.state = s
        return ((s * _XORSHIFT_MULTIPLIER) & MASK64) >> 32

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



def sampler_for(temperature: float, topp: float, seed: int) -> Sampler:
    """run.c main's option overrides, then the sampler."""
    temperature32, topp32 = F32(temperature), F32(topp)
    if temperature32 < 0:
        temperature32 = _ZERO
    if topp32 < 0 or topp32 > 1:
        topp32 = F32(0.9)
    if seed & MASK64 == 0 and temperature32 != 0:
        raise UsageError("seed 0 makes llama2.c seed from the clock, which cannot be verified",
                         "pass a non-zero seed")
    return Sampler(float(temperature32), float(topp32), seed)

