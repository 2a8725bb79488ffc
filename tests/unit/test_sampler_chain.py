"""The sampling chain's stages in the NumPy reference (engine/sampler.c is checked against it in
tests/integration/test_sampling.py): each does what the README's options table says, and each is a
no-op at its default, so the default chain is run.c's sampler draw for draw."""

from __future__ import annotations

import numpy as np

from toolkit import reference as ref
from toolkit.reference.sampler import penalize, sample_floor, top_k
from toolkit.sampling import Sampling

F32 = np.float32


def _logits(seed: int, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, n).astype(np.float32)


def test_the_default_chain_is_run_c_draw_for_draw() -> None:
    """Same tokens and the same generator state as run.c's sampler, with any recent tokens."""
    for seed in range(20):
        logits = _logits(seed)
        chain = ref.Sampler(0.8, 0.9, seed + 1, Sampling())
        plain = ref.Sampler(0.8, 0.9, seed + 1)
        recent = list(range(0, 64, 3))
        assert chain.sample(logits, recent)[0] == plain.sample(logits)[0]
        assert chain.rng.state == plain.rng.state


def test_the_repeat_penalty_divides_positive_and_multiplies_negative_logits_once() -> None:
    logits = np.array([2.0, -2.0, 1.0, 0.0], dtype=np.float32)
    out = penalize(logits, F32(2.0), [0, 1, 0, 0, 3])  # token 0 three times: penalized once
    assert out.tolist() == [1.0, -4.0, 1.0, 0.0]
    assert logits.tolist() == [2.0, -2.0, 1.0, 0.0]  # the input is left as it was
    assert penalize(logits, F32(1.0), [0, 1]).tolist() == logits.tolist()
    assert penalize(logits, F32(0.5), [0]).tolist()[0] == 4.0  # below 1: a bonus, as in llama.cpp


def test_the_repeat_window_counts_the_last_positions() -> None:
    fed = [5, 6, 7, 8, 9]
    assert list(ref.Sampler(1.0, 0.9, 1, Sampling(repeat_last_n=2)).recent(fed)) == [8, 9]
    assert list(ref.Sampler(1.0, 0.9, 1, Sampling(repeat_last_n=-1)).recent(fed)) == fed
    assert list(ref.Sampler(1.0, 0.9, 1, Sampling(repeat_last_n=0)).recent(fed)) == []
    assert list(ref.Sampler(1.0, 0.9, 1, Sampling(repeat_last_n=64)).recent(fed)) == fed


def test_greedy_with_a_penalty_moves_off_the_repeated_token() -> None:
    logits = np.array([3.0, 2.5, 0.0], dtype=np.float32)
    sampler = ref.Sampler(0.0, 0.9, 1, Sampling(repeat_penalty=1.5))
    assert sampler.sample(logits, [1])[0] == 0
    assert sampler.sample(logits, [0])[0] == 1  # 3.0 / 1.5 = 2.0 < 2.5


def test_top_k_keeps_the_k_largest_and_breaks_ties_by_id() -> None:
    logits = np.array([1.0, 3.0, 2.0, 3.0, 0.5], dtype=np.float32)
    out, gap = top_k(logits, 2)
    assert np.isneginf(out[[0, 2, 4]]).all() and out[1] == 3.0 and out[3] == 3.0 and gap == 1.0
    out, _ = top_k(np.array([2.0, 1.0, 2.0, 2.0], dtype=np.float32), 2)  # a tie at the cut
    assert out.tolist()[:3] == [2.0, -np.inf, 2.0] and np.isneginf(out[3])
    assert top_k(logits, 0)[0] is logits and top_k(logits, 5)[0] is logits


def test_top_k_one_is_greedy_but_still_draws() -> None:
    logits = _logits(3)
    sampler = ref.Sampler(1.0, 0.9, 9, Sampling(top_k=1))
    for _ in range(10):
        assert sampler.sample(logits)[0] == int(np.argmax(logits))
    assert sampler.rng.state != 9  # one draw per token, as the engine makes


def test_min_p_drops_tokens_below_its_share_of_the_top_one() -> None:
    probabilities = np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32)
    floor = F32(0.4) * probabilities[0]  # 0.2: tokens 2 and 3 go
    for coin in np.linspace(0.0, 0.999, 50, dtype=np.float32):
        token, _ = sample_floor(probabilities, floor, coin)
        assert token == (0 if coin * F32(0.8) < 0.5 else 1)
    # with top-p: the tokens both keep, the coin scaled by their sum
    token, _ = ref.sample_topp(probabilities, F32(0.99), F32(0.7), floor)
    assert token == 1  # 0.7 * 0.8 = 0.56 > 0.5


def test_min_p_and_top_p_keep_the_same_tokens_in_either_order() -> None:
    """The engine raises top-p's cutoff to min-p's instead of cutting twice: the same tokens."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        probabilities = ref.softmax(rng.normal(0, 2, 40).astype(np.float32))
        topp, min_p, coin = F32(rng.uniform(0.3, 0.99)), F32(rng.uniform(0.01, 0.6)), F32(rng.uniform(0, 1))
        floor = min_p * probabilities.max()
        order = np.argsort(-probabilities, kind="stable")
        cdf = np.add.accumulate(probabilities[order], dtype=np.float32)
        crossed = np.nonzero(cdf > topp)[0]
        last = int(crossed[0]) if crossed.size else order.size - 1
        kept = [int(t) for t in order[:last + 1] if probabilities[t] >= floor]  # top-p, then min-p
        kept_cdf = np.add.accumulate(probabilities[kept], dtype=np.float32)
        r = coin * kept_cdf[-1]
        hits = np.nonzero(r < kept_cdf)[0]
        expected = kept[int(hits[0])] if hits.size else kept[-1]
        assert ref.sample_topp(probabilities, topp, coin, floor)[0] == expected


def test_each_stage_changes_what_is_sampled() -> None:
    """A test of the engine would pass with a stage that does nothing, if its options never
    changed a token: each one does here."""
    fed = list(range(8))
    settings = [Sampling(top_k=2), Sampling(min_p=0.3), Sampling(repeat_penalty=3.0, repeat_last_n=-1)]
    for chain in settings:
        plain, staged = ref.Sampler(1.0, 0.0, 5), ref.Sampler(1.0, 0.0, 5, chain)
        tokens = [(plain.sample(_logits(s, 16), fed)[0], staged.sample(_logits(s, 16), fed)[0]) for s in range(40)]
        assert any(a != b for a, b in tokens), chain
