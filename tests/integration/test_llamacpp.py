"""llama.cpp as the reference (issue 15's oracle): built from the source vendored in the
llama-cpp-python sdist (toolkit/llamacpp/), it tokenizes, quantizes and generates greedily.

- Tokenizer: the engine's ids equal llama.cpp's on SmolLM2's vocabulary (two documented
  pre-tokenizer differences aside, where ppc-llm follows transformers).
- F32 weights (a random-weight model of SmolLM2's widths with its real vocabulary): greedy ids
  equal up to the first step whose margin is below NEAR_TIE, at least MIN_COMPARED compared,
  on host, g4 and xenon; fed the engine's own tokens, llama.cpp's logits put each of them within
  F32_TOLERANCE of its top one.
- Quantized files (llama.cpp's own quantizer, and the real SmolLM2): compared teacher-forced
  (tests/llamacpp_compare.py): llama.cpp's kernels quantize the activations to 8 bits, so a
  greedy run can part at a step whose margin is well above NEAR_TIE (README, "llama.cpp as the
  reference"). On the real SmolLM2 a step past QUANT_TOLERANCE is judged by a float64 pass over
  the file's dequantized weights.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import pytest

from toolkit.llamacpp import SDIST, SDIST_SHA256, LlamaRef, host_llamaref
from tests.gguf_models import SMOLLM2_WIDE, write_llama
from tests.helpers import smollm_gguf
from tests.llamacpp_compare import (F32_TOLERANCE, MIN_COMPARED, PROMPTS, compared, engine_output, printed,
                                     teacher_forced)

TEXTS = ["Hello, world! How are you?", "  leading and trailing   ", "tabs\tand\nnewlines\n\n\nthree",
         "2024-11-25: 3.14159 and 1,000,000", "don't won't I'm you're 'quoted'", "café naïve résumé Ærøskøbing",
         "日本語のテキスト 中文字符测试 한국어", "emoji 😀👍🏽 family 👨‍👩‍👧", "ℕ ∑ √ ∞ ≠",
         "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "text<|endoftext|>more",
         "def f(x):\n    return x ** 2\n", "\u00a0non-breaking\u2003em space \u3000x", "...!!!???", "a", " ", "",
         "hello\u200bworld", "e\u0301 combining", "\r\nwindows\r\n", "10,000 people in 1999.", "v1.2.3-beta"]
ALPHABET = [*"aZ09 '\t\n.,!?-_\u00e9\u00df\u65e5\U0001f600\u00a0smltd\"()", "'s", "<|im_start|>", "<|im_end|>", "   "]
# llama.cpp's "smollm" pre-tokenizer and transformers' disagree on whitespace before a number:
# two or more blanks before a digit, or a blank before a number that is not an ASCII digit.
BLANKS_BEFORE_A_DIGIT = re.compile(r"\s{2,}[0-9]")


def _where_they_differ(text: str) -> bool:
    if BLANKS_BEFORE_A_DIGIT.search(text):
        return True
    return any(a.isspace() and unicodedata.category(b).startswith("N") and not b.isascii()
               for a, b in zip(text, text[1:]))


@pytest.fixture(scope="module")
def llamaref(cache: Path) -> LlamaRef:
    return host_llamaref(cache)


@pytest.fixture(scope="module")
def gguf() -> Path:
    return smollm_gguf()


def test_the_sdist_is_the_one_recorded(llamaref: LlamaRef) -> None:
    assert SDIST == "llama-cpp-python==0.3.36" and len(SDIST_SHA256) == 64 and llamaref.binary.is_file()


def test_the_tokenizer_matches_llama_cpp(llamaref: LlamaRef, gguf: Path, cache: Path) -> None:
    """Special tokens parsed (as the engine does), no BOS added (SmolLM2 adds none)."""
    rng = random.Random(20261202)
    drawn = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 20))) for _ in range(60)]
    texts = TEXTS + [text for text in drawn if not _where_they_differ(text)]
    expected = llamaref.tokenize(gguf, texts)
    for text, theirs in zip(texts, expected):
        ours = [int(t) for t in engine_output(cache, "host", gguf, ["-m", "encode", "-i", text]).split()]
        assert ours == theirs, text
    for text, theirs in list(zip(texts, expected))[::4]:
        assert [int(t) for t in engine_output(cache, "g4", gguf, ["-m", "encode", "-i", text]).split()] == theirs, text


def test_non_ascii_numbers_are_where_llama_cpp_and_transformers_differ(llamaref: LlamaRef, gguf: Path,
                                                                      cache: Path) -> None:
    """Whitespace before a number: for a blank before a number that is not an ASCII digit (½, ²,
    ٣) transformers (the model's own tokenizer) keeps the blank with the number and llama.cpp
    splits it off; for two or more blanks before a digit transformers gives one token per blank
    and llama.cpp one for the run. ppc-llm
    follows transformers (tests/integration/test_smollm.py), so these strings are left out of
    the comparison above; this test notices when either side changes."""
    from tests.smollm_reference import hf_encode

    assert all(_where_they_differ(text) for text in [" \u00bd", "  0"])
    for text in [" \u00bd", "x \u00b2", "\u00bd \u00b2 \u0663", "  0", "x   12"]:
        ours = [int(t) for t in engine_output(cache, "host", gguf, ["-m", "encode", "-i", text]).split()]
        assert ours == hf_encode(gguf, text) != llamaref.tokenize(gguf, [text])[0], text


@pytest.fixture(scope="module")
def random_f32(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama(tmp_path_factory.mktemp("random") / "random-f32.gguf", SMOLLM2_WIDE, gguf)


@pytest.mark.parametrize("name,steps", [("host", 32), ("g4", 16), ("xenon", 16)])
def test_greedy_equals_llama_cpp_on_f32_weights(llamaref: LlamaRef, random_f32: Path, cache: Path, name: str,
                                                steps: int) -> None:
    prompt = PROMPTS[0]
    ids = llamaref.tokenize(random_f32, [prompt])[0]
    prompt_ids, ours = printed(cache, name, random_f32, prompt, len(ids), steps)
    assert prompt_ids == ids
    agreed = compared(ours, llamaref.generate(random_f32, ids, steps))
    assert agreed >= MIN_COMPARED, f"a near-tie after {agreed} tokens (a bad test: change the prompt or seed)"
    if name == "host":
        forced = llamaref.generate(random_f32, ids, len(ours), forced=ours)
        assert max(step.gap for step in forced) < F32_TOLERANCE


@pytest.mark.parametrize("mix", ["Q8_0", "Q4_0", "Q4_1"])
def test_random_weights_quantized_by_llama_cpp(llamaref: LlamaRef, random_f32: Path, cache: Path, tmp_path: Path,
                                               mix: str) -> None:
    """SmolLM2's widths (576: llama.cpp keeps the classifier Q8_0) in each mix; the SIMD kernels
    on g4 and xenon for Q4_0 (bit-identical to the scalar ones: ppcllm-kerneltest)."""
    model = tmp_path / f"random-{mix}.gguf"
    llamaref.quantize(random_f32, model, mix)
    teacher_forced(llamaref, cache, "host", model, PROMPTS)
    for name in ("g4", "xenon") if mix == "Q4_0" else ():
        teacher_forced(llamaref, cache, name, model, PROMPTS[:1])


@pytest.mark.parametrize("mix", ["Q4_1", "Q8_0", "Q4_0", "Q4_K_M"])
def test_the_real_smollm2(llamaref: LlamaRef, gguf: Path, cache: Path, tmp_path: Path, mix: str) -> None:
    """The wheel's Q4_1 file, and llama.cpp's quantizer's Q8_0, Q4_0 and Q4_K_M files made from it
    (from its dequantized weights; Q4_K_M holds Q5_0, Q8_0, Q4_K and Q6_K tensors at SmolLM2's 576
    columns). Every mix on g4 and xenon: test_smollm2_mixes.py (the long tier)."""
    model = gguf
    if mix != "Q4_1":
        model = tmp_path / f"smollm2-{mix}.gguf"
        llamaref.quantize(gguf, model, mix)
    teacher_forced(llamaref, cache, "host", model, PROMPTS, arbiter=True)
