"""The bench arithmetic: counts parsing, steady state, projection and the fit."""

from __future__ import annotations

import pytest

from toolkit import bench
from toolkit.errors import RunError, UsageError
from toolkit.targets import load_target


def test_parse_counts() -> None:
    text = ("vcpu 0 insns 1000 loaded 400 stored 10\nvcpu 2 insns 300 loaded 100 stored 0\n"
            "cache line 64 sets 1024 ways 8 accesses 99 misses 7\n")
    counts = bench.parse_counts(text)
    assert counts.insns == {0: 1000, 2: 300} and counts.loaded == 500 and counts.fetched == 7 * 64


def test_parse_counts_refuses_empty() -> None:
    with pytest.raises(RunError):
        bench.parse_counts("")


def test_steady_state_is_the_difference_per_position() -> None:
    short = bench.Counts({0: 100, 1: 50}, 1000, 6400)
    long = bench.Counts({0: 400, 1: 350}, 4000, 12800)
    insns, critical, fetched, loaded = bench.steady_state(short, long, 3)
    assert (insns, critical, fetched, loaded) == (200.0, 100.0, 6400 / 3, 1000.0)


def test_steady_state_refuses_runs_that_did_not_run_the_positions() -> None:
    """An engine that skipped the forced positions would show 0 instructions per token."""
    same = bench.Counts({0: 100}, 1000, 6400)
    with pytest.raises(RunError, match="no more instructions"):
        bench.steady_state(same, same, 3)


def test_projection_and_fit_reproduce_the_published_figures() -> None:
    profile = load_target("g4").bench
    assert profile is not None
    scalar = bench.Row("f32", "scalar", 1, 7e8, 7e8, 4.4e8, 9e8, 0, 0, 0.0)
    simd = bench.Row("f32", "altivec", 1, 2.8e8, 2.8e8, 4.4e8, 6e8, 0, 0, 0.0)
    a, b = bench.fit(profile, scalar, simd)
    fitted = type(profile)(a, b, profile.bus_bytes_per_second, profile.cache_bytes, profile.cache_ways,
                           profile.cache_line, "test", 0.77, 0.88)
    assert bench.project(fitted, 7e8, 4.4e8)[0] == pytest.approx(0.77)
    assert bench.project(fitted, 2.8e8, 4.4e8)[0] == pytest.approx(0.88)
    assert bench.project(fitted, 1e8, 1.33e9)[1] == pytest.approx(1.0)


def test_fit_needs_published_figures() -> None:
    profile = load_target("xenon").bench
    assert profile is not None
    row = bench.Row("f32", "scalar", 1, 1, 1, 1, 1, 0, 0, 0.0)
    with pytest.raises(UsageError):
        bench.fit(profile, row, row)


def test_variants_put_the_scalar_baseline_first() -> None:
    plan = bench.variants(load_target("xenon"), ["f32", "q4_0"], [1, 6])
    assert plan[0] == bench.Variant("f32", False, 1)
    assert bench.Variant("q4_0", True, 6) in plan and len(plan) == len(set(plan))


def test_synthetic_tokenizer_forces_every_position() -> None:
    model = bench.random_model(bench.load_shapes()["stories260K"])
    prompt = bench.forced_prompt(model, 12)
    from toolkit import reference

    assert len(reference.encode(model.tokenizer, prompt)) > 12
