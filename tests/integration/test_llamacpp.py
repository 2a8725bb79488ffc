"""llama.cpp as the reference (issue 15's oracle), on the real SmolLM2-135M-Instruct: built from the
source vendored in the llama-cpp-python sdist (toolkit/llamacpp/), it tokenizes, quantizes and
generates greedily; the engine's ids must equal its ids (tokenizer) and its greedy ids up to the
first step whose margin is below NEAR_TIE, with at least MIN_COMPARED tokens compared before it.

On this real model llama.cpp itself is the noisier side: its CPU dot products quantize the
activations to 8 bits (Q8_0 / Q8_1), ppc-llm's GGUF kernels keep them at 16 bits. For "The
capital of France is" on llama.cpp's own Q4_0 file it puts token 3575 0.40 ahead of 4723, while a
float64 forward pass over the same dequantized weights (tests/smollm_reference.py) puts 4723 0.09
ahead, as ppc-llm does. So each file is compared on prompts whose first 32 steps do not cross
such a point (chosen by running them all; the README's long tier lists the others)."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import pytest

from toolkit.emulate import run_user
from toolkit.llamacpp import SDIST, SDIST_SHA256, LlamaRef, Step, host_llamaref
from toolkit.pipeline import build, convert, open_input
from tests.helpers import smollm_gguf

from .conftest import target

NEAR_TIE = 0.05
MIN_COMPARED = 16
IDS = re.compile(rb"^(?:\d+ )+$", re.M)
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
PROMPTS = {"Q4_1": ["Water boils at", "The quick brown fox"], "Q8_0": ["Once upon a time", "The quick brown fox"],
           "Q4_0": ["Once upon a time", "def fibonacci(n):"]}


@pytest.fixture(scope="module")
def llamaref(cache: Path) -> LlamaRef:
    return host_llamaref(cache)


@pytest.fixture(scope="module")
def gguf() -> Path:
    return smollm_gguf()


def _engine(cache: Path, name: str, model: Path, args: list[str]) -> bytes:
    profile = target(name)
    converted = convert(open_input(model, None), profile, cache).path
    ran = run_user(profile, build(profile, cache).engine, [str(converted), *args], timeout=1500)
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")[-2000:]
    return ran.stderr if "-x" in args else ran.stdout


def _compared(ours: list[int], theirs: list[Step]) -> int:
    """How many greedy ids agree before the first near-tie (or the end); fails at a real mismatch."""
    for i, step in enumerate(theirs):
        if step.margin < NEAR_TIE:
            return i
        assert i < len(ours) and ours[i] == step.token, (i, ours[:i + 1], [s.token for s in theirs[:i + 1]])
        if step.eog:
            return i + 1
    return len(theirs)


def test_the_sdist_is_the_one_recorded(llamaref: LlamaRef) -> None:
    assert SDIST == "llama-cpp-python==0.3.36" and len(SDIST_SHA256) == 64 and llamaref.binary.is_file()


def test_the_tokenizer_matches_llama_cpp(llamaref: LlamaRef, gguf: Path, cache: Path) -> None:
    """Special tokens parsed (as the engine does), no BOS added (SmolLM2 adds none)."""
    rng = random.Random(20261202)
    drawn = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 20))) for _ in range(60)]
    texts = TEXTS + [text for text in drawn if not _where_they_differ(text)]
    expected = llamaref.tokenize(gguf, texts)
    for text, theirs in zip(texts, expected):
        ours = [int(t) for t in _engine(cache, "host", gguf, ["-m", "encode", "-i", text]).split()]
        assert ours == theirs, text
    for text, theirs in list(zip(texts, expected))[::4]:
        assert [int(t) for t in _engine(cache, "g4", gguf, ["-m", "encode", "-i", text]).split()] == theirs, text


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
        ours = [int(t) for t in _engine(cache, "host", gguf, ["-m", "encode", "-i", text]).split()]
        assert ours == hf_encode(gguf, text) != llamaref.tokenize(gguf, [text])[0], text


def _greedy(llamaref: LlamaRef, cache: Path, model: Path, prompt: str, name: str = "host", steps: int = 32) -> int:
    ids = llamaref.tokenize(model, [prompt])[0]
    theirs = llamaref.generate(model, ids, steps)
    found = IDS.findall(_engine(cache, name, model, ["-t", "0", "-N", str(steps), "-x", "1", "-i", prompt]))
    printed = [int(t) for t in found[0].split()] if found else []
    assert printed[:len(ids)] == ids  # -x 1 prints the prompt's ids, then the generated ones
    compared = _compared(printed[len(ids):], theirs)
    assert compared >= MIN_COMPARED, f"{prompt!r}: a near-tie after {compared} tokens (a bad test: change it)"
    return compared


@pytest.mark.parametrize("prompt", PROMPTS["Q4_1"])
def test_greedy_matches_llama_cpp_on_the_q4_1_file(llamaref: LlamaRef, gguf: Path, cache: Path, prompt: str) -> None:
    _greedy(llamaref, cache, gguf, prompt)


@pytest.mark.parametrize("mix", ["Q8_0", "Q4_0"])
def test_greedy_matches_llama_cpp_on_its_own_requantized_files(llamaref: LlamaRef, gguf: Path, cache: Path,
                                                               tmp_path: Path, mix: str) -> None:
    """llama.cpp's quantizer makes the file (from the Q4_1 file's dequantized weights)."""
    out = tmp_path / f"smollm2-{mix}.gguf"
    llamaref.quantize(gguf, out, mix)
    for prompt in PROMPTS[mix]:
        _greedy(llamaref, cache, out, prompt)
