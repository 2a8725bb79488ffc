"""The engine's sampling chain (engine/sampler.c): the repeat penalty and top-k on the logits, then
run.c's sampler (``sample_argmax``, ``sample_mult``, ``sample_topp``) with min-p, and the xorshift*
generator. At their defaults the penalty, top-k and min-p do nothing: run.c's sampler exactly.

Each ``sample`` returns the token and a margin: how close the choice came to being another token
(top-1 minus top-2 logit when greedy; the coin's distance from its cdf boundaries, in probability
units, when sampling), which ``compare`` uses to tell a real mismatch from a near-tie.
"""

from __future__ import annotations

import math

import numpy as np

from collections.abc import Sequence

from ..errors import UsageError
from ..sampling import Sampling
from .kernels import softmax

__all__ = ["Rng", "Sampler", "penalize", "sample_argmax", "sample_floor", "sample_mult", "sample_topp",
           "sampler_for", "top_k"]

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


def sample_topp(probabilities: np.ndarray, topp: np.float32, coin: np.float32,
                min_prob: np.float32 = _ZERO) -> tuple[int, float]:
    """run.c ``sample_topp`` with min-p's ``min_prob`` raising its cutoff: (token, margin).

    The margin is the distance of ``r = coin * cumulative`` from the cdf boundaries of the
    chosen candidate; when the top-p cut itself (``cumulative > topp``) was closer than that
    and moving it by one candidate would change the token, the cut's distance instead.
    """
    n = probabilities.shape[0]
    cutoff = max((_ONE - topp) / F32(n - 1), min_prob)
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


def sample_floor(probabilities: np.ndarray, min_prob: np.float32, coin: np.float32) -> tuple[int, float]:
    """min-p without top-p (engine ``ppcllm_sample_floor``): run.c's multinomial draw in id order
    over the tokens whose probability is at least ``min_prob``, the coin scaled by their sum."""
    kept = np.nonzero(probabilities >= min_prob)[0]
    if kept.size == 0:
        return 0, 0.0
    cdf = np.add.accumulate(probabilities[kept], dtype=np.float32)
    r = coin * cdf[-1]
    hits = np.nonzero(r < cdf)[0]
    chosen = int(hits[0]) if hits.size else kept.size - 1
    return int(kept[chosen]), _boundary_distance(float(r), cdf, chosen)


def penalize(logits: np.ndarray, penalty: np.float32, recent: Sequence[int]) -> np.ndarray:
    """Stage 1: each distinct recent token's logit divided by the penalty when positive, else
    multiplied (llama.cpp's rule); a new array."""
    out = logits.copy()
    if penalty == _ONE:
        return out
    for token in dict.fromkeys(t for t in recent if 0 <= t < out.shape[0]):
        out[token] = out[token] / penalty if out[token] > _ZERO else out[token] * penalty
    return out


def top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Stage 2: all but the k largest logits (ties: the lower id first) set to -inf, and the gap
    between the k-th and the next logit (inf when nothing is cut)."""
    n = logits.shape[0]
    if k <= 0 or k >= n:
        return logits, math.inf
    order = np.argsort(-logits, kind="stable")
    out = logits.copy()
    out[order[k:]] = F32(-np.inf)
    return out, float(logits[order[k - 1]]) - float(logits[order[k]])


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
    """The engine's sampler: the chain's settings as float32, xorshift state from the seed."""

    def __init__(self, temperature: float, topp: float, seed: int, chain: Sampling | None = None) -> None:
        chain = chain if chain is not None else Sampling()
        self.temperature = F32(temperature)
        self.topp = F32(topp)
        self.rng = Rng(seed)
        self.top_k = chain.top_k
        self.min_p = F32(chain.min_p)
        self.repeat_penalty = F32(chain.repeat_penalty)
        self.repeat_last_n = chain.repeat_last_n

    def recent(self, fed: Sequence[int]) -> Sequence[int]:
        """The tokens the penalty looks at, of those fed so far (the last is the current position's)."""
        window = len(fed) if self.repeat_last_n < 0 else min(self.repeat_last_n, len(fed))
        return fed[len(fed) - window:]

    def sample(self, logits: np.ndarray, fed: Sequence[int] = ()) -> tuple[int, float]:
        """(next token, margin: how close the choice was to being another token); ``fed``: the
        token of every position so far, for the repeat penalty."""
        logits, k_gap = top_k(penalize(logits, self.repeat_penalty, self.recent(fed)), self.top_k)
        if self.temperature == _ZERO:
            token, margin = sample_argmax(logits)
            return token, min(margin, k_gap)
        probabilities = softmax(logits / self.temperature)
        coin = self.rng.f32()
        min_prob = self.min_p * probabilities[int(np.argmax(probabilities))] if self.min_p > _ZERO else _ZERO
        if self.topp <= 0 or self.topp >= 1:
            token, margin = (sample_floor(probabilities, min_prob, coin) if min_prob > _ZERO
                             else sample_mult(probabilities, coin))
        else:
            token, margin = sample_topp(probabilities, self.topp, coin, min_prob)
        return token, min(margin, k_gap, _floor_gap(probabilities, min_prob))


def _floor_gap(probabilities: np.ndarray, min_prob: np.float32) -> float:
    """How close any token's probability came to min-p's cut (inf when min-p is off)."""
    if min_prob <= _ZERO:
        return math.inf
    return float(np.min(np.abs(probabilities.astype(np.float64) - float(min_prob))))


def sampler_for(temperature: float, topp: float, seed: int, chain: Sampling | None = None) -> Sampler:
    """run.c main's option overrides, then the sampler."""
    temperature32, topp32 = F32(temperature), F32(topp)
    if temperature32 < 0:
        temperature32 = _ZERO
    if topp32 < 0 or topp32 > 1:
        topp32 = F32(0.9)
    if seed & MASK64 == 0 and temperature32 != 0:
        raise UsageError("seed 0 makes llama2.c seed from the clock, which cannot be verified",
                         "pass a non-zero seed")
    return Sampler(float(temperature32), float(topp32), seed, chain)
