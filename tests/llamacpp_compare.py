"""Comparing the engine with llama.cpp (issue 15's oracle), shared by the integration tests
that do: test_llamacpp.py, test_gguf_quants.py and the long tier's test_smollm2_mixes.py.

- F32 weights: greedy ids equal up to the first step whose margin is below NEAR_TIE
  (``compared``), at least MIN_COMPARED of them.
- Quantized files: llama.cpp's CPU kernels quantize the activations to 8 bits (Q8_0 / Q8_1, and
  Q8_K per 256 values for the K types) where ppc-llm's keep 16 or 32, so a greedy run can part at a
  step whose margin is well above NEAR_TIE. These are compared teacher-forced
  (``teacher_forced``): llama.cpp is fed the engine's greedy tokens; at every step the engine's
  token must be llama.cpp's top one or within the tolerance of it, and llama.cpp's top one at a
  share of the steps at least. With ``arbiter``, a step past the tolerance is judged instead by
  a float64 pass over the file's dequantized weights (tests/smollm_reference.py's FloatLlama,
  no activation quantization): the engine's token must be its top one within NEAR_TIE.
"""

from __future__ import annotations

import re
from pathlib import Path

from toolkit.emulate import run_user
from toolkit.llamacpp import LlamaRef, Step
from toolkit.pipeline import build, convert, open_input
from toolkit.targets import load_target
from tests.smollm_reference import FloatLlama

IDS = re.compile(rb"^(?:\d+ )+$", re.M)
NEAR_TIE, MIN_COMPARED = 0.05, 16
F32_TOLERANCE = 0.01
QUANT_TOLERANCE = 0.5   # measured at most 0.40 (SmolLM2 Q4_0), 0.23 (Q8_0), 0.19 (random Q8_0)
EXACT_SHARE = 0.9       # measured 0.96 to 1.0
PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):"]


def engine_output(cache: Path, name: str, model: Path, args: list[str]) -> bytes:
    """The engine's stdout for ``model`` converted for target ``name`` (stderr with ``-x``)."""
    profile = load_target(name)
    converted = convert(open_input(model, None), profile, cache).path
    ran = run_user(profile, build(profile, cache).engine, [str(converted), *args], timeout=1500)
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")[-2000:]
    return ran.stderr if "-x" in args else ran.stdout


def printed(cache: Path, name: str, model: Path, prompt: str, n_prompt: int,
            steps: int) -> tuple[list[int], list[int]]:
    """(the engine's prompt ids, its greedy ids after them): -x 1 prints both on one line."""
    found = IDS.findall(engine_output(cache, name, model, ["-t", "0", "-N", str(steps), "-x", "1", "-i", prompt]))
    ids = [int(t) for t in found[0].split()] if found else []
    return ids[:n_prompt], ids[n_prompt:]


def compared(ours: list[int], theirs: list[Step]) -> int:
    """How many greedy ids agree before the first near-tie (or the end); fails at a real mismatch."""
    for i, step in enumerate(theirs):
        if step.margin < NEAR_TIE:
            return i
        assert i < len(ours) and ours[i] == step.token, (i, ours[:i + 1], [s.token for s in theirs[:i + 1]])
        if step.eog:
            return i + 1
    return len(theirs)


def arbitrate(model: Path, prompt: list[int], ours: list[int], disputed: list[int]) -> list[float]:
    """At each disputed step (an index into ``ours``), how far the engine's token lies below the
    top logit of a float64 pass over ``model``'s dequantized weights; each must be below NEAR_TIE."""
    reference = FloatLlama(model, len(prompt) + len(ours))
    tokens = prompt + ours
    gaps: list[float] = []
    for pos in range(len(prompt) + max(disputed)):
        logits = reference.forward(tokens[pos], pos)
        step = pos - len(prompt) + 1
        if step in disputed:
            gaps.append(float(logits.max() - logits[ours[step]]))
    assert max(gaps) < NEAR_TIE, (disputed, gaps)
    return gaps


def forced_agreement(llamaref: LlamaRef, model: Path, prompt: list[int], ours: list[int], tolerance: float,
                     arbiter: bool = False) -> int:
    """Teacher-forced: the number of steps where the engine's token is llama.cpp's top one; every
    other step within ``tolerance`` of it (or, with ``arbiter``, judged by ``arbitrate``)."""
    forced = llamaref.generate(model, prompt, len(ours), forced=ours)
    disputed = [i for i, step in enumerate(forced) if step.gap >= tolerance]
    if disputed:
        assert arbiter, [(i, forced[i]) for i in disputed]
        arbitrate(model, prompt, ours, disputed)
    return sum(1 for step, token in zip(forced, ours) if step.token == token)


def _prompt(llamaref: LlamaRef, model: Path, prompt: str) -> tuple[list[int], list[int]]:
    """llama.cpp's ids of the prompt as fed (BOS as the file says) and as the engine's ``-x 1``
    shows them (without BOS)."""
    return (llamaref.tokenize(model, [prompt], add_special=True)[0],
            llamaref.tokenize(model, [prompt], add_special=False)[0])


def greedy_agreement(llamaref: LlamaRef, cache: Path, name: str, model: Path, steps: int,
                     prompt: str = PROMPTS[0]) -> tuple[list[int], list[int]]:
    """The engine's greedy ids on target ``name`` equal llama.cpp's up to the first near-tie,
    at least MIN_COMPARED of them; returns (the prompt's ids, the engine's ids after them)."""
    ids, shown = _prompt(llamaref, model, prompt)
    prompt_ids, ours = printed(cache, name, model, prompt, len(shown), steps)
    assert prompt_ids == shown
    agreed = compared(ours, llamaref.generate(model, ids, steps))
    assert agreed >= MIN_COMPARED, f"a near-tie after {agreed} tokens (a bad test: change the prompt or seed)"
    return ids, ours


def teacher_forced(llamaref: LlamaRef, cache: Path, name: str, model: Path, prompts: list[str],
                   steps: int = 32, tolerance: float = QUANT_TOLERANCE, share: float = EXACT_SHARE,
                   arbiter: bool = False) -> None:
    """``forced_agreement`` over the greedy continuations of ``prompts`` on target ``name``."""
    exact = total = 0
    for prompt in prompts:
        ids, shown = _prompt(llamaref, model, prompt)
        prompt_ids, ours = printed(cache, name, model, prompt, len(shown), steps)
        assert prompt_ids == shown, prompt
        exact += forced_agreement(llamaref, model, ids, ours, tolerance, arbiter)
        total += len(ours)
    assert exact >= share * total, f"llama.cpp's top token at {exact} of {total} steps"
