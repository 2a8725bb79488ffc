"""The sampling chain (README "Options"): the engine's C (engine/sampler.c) against the NumPy
reference with each stage on, byte for byte, on stories260K (host and g4) and SmolLM2 (host; g4 in
the long tier's `smollm2-run` block); every case also differs from the default chain's output, so
a stage the engine ignored would fail. The default chain's golden cases are tests/integration/test_golden.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit import reference
from toolkit.emulate import run_user
from toolkit.models import Model
from toolkit.pipeline import GenerateOptions, build, convert, load_model, open_input
from toolkit.sampling import Sampling
from toolkit.toolchain import Build
from tests.helpers import smollm_gguf

from .conftest import cli, target

PROMPT = b"Once upon a time"

# Each stage alone, then together; -n 120 positions unless n_predict is given.
CHAINS: dict[str, tuple[Sampling, int | None]] = {
    "top-k": (Sampling(temperature=1.0, seed=7, top_k=5), None),
    "min-p": (Sampling(seed=7, min_p=0.1), None),
    "min-p without top-p": (Sampling(topp=0.0, seed=11, min_p=0.05), None),
    "repeat penalty": (Sampling(seed=7, repeat_penalty=1.3), None),
    "repeat bonus, whole context": (Sampling(seed=5, repeat_penalty=0.7, repeat_last_n=-1), None),
    "greedy, penalty over 8": (Sampling(temperature=0.0, top_k=2, repeat_penalty=1.5, repeat_last_n=8), None),
    "all, n-predict": (Sampling(temperature=0.8, topp=0.95, seed=42, top_k=3, min_p=0.2, repeat_penalty=1.2), 40),
}


def _options(sampling: Sampling, n_predict: int | None, steps: int = 120) -> GenerateOptions:
    return GenerateOptions(sampling, None if n_predict is not None else steps, n_predict, PROMPT)


def _engine(build: Build, name: str, model: Path, options: GenerateOptions) -> bytes:
    ran = run_user(target(name), build.engine, options.engine_args(model).argv(), timeout=600)
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")[-2000:]
    return ran.stdout


def _reference(model: Model, options: GenerateOptions) -> bytes:
    return reference.generate_with(model, PROMPT, options.sampling, options.steps or 0,
                                   n_predict=options.n_predict).text


@pytest.fixture(scope="module")
def stories(models: dict[str, Path]) -> Model:
    return load_model(models["host"], None)


@pytest.mark.parametrize("name", ["host", "g4"])
def test_each_stage_matches_the_reference_on_stories260k(name: str, builds: dict[str, Build],
                                                         models: dict[str, Path], stories: Model) -> None:
    for case, (sampling, n_predict) in CHAINS.items():
        options = _options(sampling, n_predict)
        printed = _engine(builds[name], name, models[name], options)
        assert printed == _reference(stories, options), (name, case)
        if name == "host":  # the same C on every target: once is enough to show the stage acts
            plain = Sampling(sampling.temperature, sampling.topp, sampling.seed)
            assert printed != _engine(builds[name], name, models[name], _options(plain, n_predict)), case


def test_the_toolkit_passes_every_stage(cache: Path) -> None:
    """run-qemu's llama.cpp spellings reach the engine (--verify recomputes the same chain): the
    prompt's 4 tokens after BOS and the 30 new ones."""
    result = cli("run-qemu", "--target", "g4", "--temp", "0.9", "--top-k", "8", "--min-p", "0.05", "--top-p",
                 "0.95", "--repeat-penalty", "1.25", "--repeat-last-n", "16", "--n-predict", "30", "-s", "3",
                 "--prompt", PROMPT.decode(), "--verify", cache_dir=cache, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert b"verified: 34 tokens identical to the NumPy reference" in result.stderr


def test_smollm2_chain_matches_the_reference_on_the_host(cache: Path) -> None:
    """The real vocabulary (49,152 tokens: top-k's sort, min-p's cut and the penalty over a BPE
    prompt) with every stage on; greedy SmolLM2 loops, the penalty must change that."""
    profile = target("host")
    gguf = smollm_gguf()
    converted = convert(open_input(gguf, None), profile, cache).path
    model = load_model(converted, None)
    engine = build(profile, cache)
    for sampling in (Sampling(temperature=0.8, topp=0.95, seed=42, top_k=40, min_p=0.05, repeat_penalty=1.3),
                     Sampling(temperature=0.0, repeat_penalty=1.5, repeat_last_n=-1)):
        options = _options(sampling, 16)
        printed = _engine(engine, "host", converted, options)
        assert printed == _reference(model, options), sampling
        plain = Sampling(sampling.temperature, sampling.topp, sampling.seed)
        assert printed != _engine(engine, "host", converted, _options(plain, 16)), sampling
