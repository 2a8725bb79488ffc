"""llama.cpp as the reference (issue 15's oracle): built from the source vendored in the
llama-cpp-python sdist (toolkit/llamacpp/), it tokenizes, quantizes and generates greedily.

- Tokenizer: the engine's ids (host, g4, xenon) and the toolkit's reference tokenizer's equal
  llama.cpp's on SmolLM2's vocabulary under every pre-tokenizer ppc-llm runs (smollm, gpt-2,
  llama-bpe, qwen2, and none named: llama.cpp's default), and on the Llama 2 SentencePiece
  vocabulary with and without a space prefix.
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
from pathlib import Path

import pytest

from tests.gguf_models import SMOLLM2_WIDE, TINY, spm_vocabulary, write_llama
from tests.helpers import shared_dir, smollm_gguf
from tests.llamacpp_compare import F32_TOLERANCE, PROMPTS, engine_output, greedy_agreement, teacher_forced
from toolkit.llamacpp import SDIST, SDIST_SHA256, LlamaRef, host_llamaref
from toolkit.models.gguf import read_gguf
from toolkit.reference import tokenizer_bpe, tokenizer_spm

from .conftest import cli

TEXTS = ["Hello, world! How are you?", "  leading and trailing   ", "tabs\tand\nnewlines\n\n\nthree",
         "2024-11-25: 3.14159 and 1,000,000", "don't won't I'm you're 'quoted'", "DON'T I'M WE'LL 'S",
         "café naïve résumé Ærøskøbing", "日本語のテキスト 中文字符测试 한국어", "emoji 😀👍🏽 family 👨‍👩‍👧",
         "ℕ ∑ √ ∞ ≠", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "text<|im_end|>more",
         "def f(x):\n    return x ** 2\n", "\u00a0non-breaking\u2003em space \u3000x", "...!!!???", "a", " ",
         "hello\u200bworld", "e\u0301 combining", "\r\nwindows\r\n", "10,000 people in 1999.", "v1.2.3-beta",
         "12345 1234567 x1y22z333", "$5+3<=4 ^~| `q` @#%", "a  \n  b \t\n\n x", " \u00bd cup x \u00b2 \u0663\u0663 12",
         "3 4  5   6", "Price: $12.50!!", "\u00a1Hola! \u00bfQu\u00e9?", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
         "\u2018curly\u2019 \u201cquotes\u201d", "a xyzzy 123999 9991234 plugh"]
ALPHABET = [*"aZ09 '\t\n\r.,!?-_$+<=>^~|`\u00e9\u00df\u00bd\u00b2\u0663\u65e5\U0001f600\u00a0\u3000smltdSMLTD\"()",
            "'s", "'LL", "<|im_start|>", "<|im_end|>", "   ", "\r\n", "12345"]
# the texts are tokenized in one run each, joined by this control token (the engine and llama.cpp
# both match control tokens whole first, so each text is cut on its own)
SEPARATOR = "<|endoftext|>"
# tokenizer.ggml.pre names (None: the key left out, llama.cpp's "default") on SmolLM2's vocabulary,
# with tokens no merge makes added: llama-bpe takes a pre-token that is one whole (its 3-digit
# numbers, " xyzzy"), the others merge it from its bytes
PRE_NAMES = ["smollm", "gpt-2", "llama-bpe", "qwen2", None]
UNMERGED = ("123", "999", "\u0120xyzzy")
# the SentencePiece cases: control tokens as Gemma's, user-defined ones matched whole in a text
# (the U+2581 run never: a text's spaces become U+2581 only after the cut), texts that use them
SPM_CONTROL = ("<start_of_turn>", "<end_of_turn>")
SPM_USER = ("<|user|>", "zqzq", "\u2581" * 17)
SPM_TEXTS = ["<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "zqzqzq <|user|>x<|user|>",
             "\u2581x \u2581\u2581 y", "x<s>y<unk>z", "\t\t\t   \n\n\n", "\x01\x7f\u00ff"]
SPM_SEPARATOR = "</s>"


def _texts() -> list[str]:
    rng = random.Random(20261203)
    return TEXTS + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(80)]


def _per_text(ids: list[int], separator: int) -> list[list[int]]:
    out: list[list[int]] = [[]]
    for token in ids:
        if token == separator:
            out.append([])
        else:
            out[-1].append(token)
    return out


def _same(ours: list[int], theirs: list[int], texts: list[str], separator: int, label: str) -> None:
    """ours == theirs; when not, the first text whose ids differ is named."""
    if ours != theirs:
        for text, a, b in zip(texts, _per_text(ours, separator), _per_text(theirs, separator)):
            assert a == b, f"{label}: {text!r}"
        assert ours == theirs, label


@pytest.fixture(scope="module")
def llamaref(cache: Path) -> LlamaRef:
    return host_llamaref(cache)


@pytest.fixture(scope="module")
def gguf() -> Path:
    return smollm_gguf()


def test_the_sdist_is_the_one_recorded(llamaref: LlamaRef) -> None:
    assert SDIST == "llama-cpp-python==0.3.36" and len(SDIST_SHA256) == 64 and llamaref.binary.is_file()


@pytest.fixture(scope="module", params=PRE_NAMES, ids=lambda name: name or "missing")
def vocabulary(request: pytest.FixtureRequest, gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's vocabulary and merges under each pre-tokenizer name, in the smallest model."""
    name = request.param
    return write_llama(tmp_path_factory.mktemp("pre") / f"vocab-{name or 'missing'}.gguf", TINY, gguf, pre=name,
                       added=UNMERGED)


def test_the_tokenizer_matches_llama_cpp(llamaref: LlamaRef, vocabulary: Path, cache: Path) -> None:
    """Every pre-tokenizer on the same texts, special tokens parsed and BOS added as the file
    says (llama-bpe's default: added): the engine on host, g4 and xenon, and the toolkit's
    reference tokenizer (what --verify encodes with), against llama.cpp."""
    texts = _texts()
    joined = SEPARATOR.join(texts)
    separator = llamaref.tokenize(vocabulary, [SEPARATOR])[0][0]
    theirs = llamaref.tokenize(vocabulary, [joined], add_special=True)[0]
    model = read_gguf(vocabulary, vocabulary.read_bytes(), chat=False)
    assert model.bpe is not None
    _same(tokenizer_bpe.encode(model.tokenizer, model.bpe, joined), theirs, texts, separator, "reference")
    for name in ("host", "g4", "xenon"):
        ours = [int(t) for t in engine_output(cache, name, vocabulary, ["-m", "encode", "-i", joined]).split()]
        _same(ours, theirs, texts, separator, name)


@pytest.fixture(scope="module", params=[True, False], ids=["space-prefix", "no-space-prefix"])
def sentencepiece(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Llama 2 SentencePiece vocabulary (TinyLlama's) with and without the space prefix
    (Gemma's), control and user-defined tokens added, in the smallest model."""
    tokenizer = shared_dir() / "models" / "tokenizer.bin"
    meta = spm_vocabulary(tokenizer, request.param, control=SPM_CONTROL, user_defined=SPM_USER)
    return write_llama(tmp_path_factory.mktemp("spm") / f"spm-prefix-{int(request.param)}.gguf", TINY, tokenizer,
                       vocabulary=meta)


def test_the_sentencepiece_tokenizer_matches_llama_cpp(llamaref: LlamaRef, sentencepiece: Path, cache: Path) -> None:
    """GGUF SentencePiece (tokenizer.ggml.model "llama") on the same texts and a few of its own,
    joined by </s> (a control token: each text after it gets the space prefix), BOS added: the
    engine on host, g4 and xenon, and the reference tokenizer, against llama.cpp."""
    texts = _texts() + SPM_TEXTS
    joined = SPM_SEPARATOR.join(texts)
    separator = llamaref.tokenize(sentencepiece, [SPM_SEPARATOR])[0][0]
    theirs = llamaref.tokenize(sentencepiece, [joined], add_special=True)[0]
    model = read_gguf(sentencepiece, sentencepiece.read_bytes(), chat=False)
    assert model.spm is not None and separator == model.spm.eos_id
    _same(tokenizer_spm.encode(model.tokenizer, model.spm, joined), theirs, texts, separator, "reference")
    for name in ("host", "g4", "xenon"):
        ours = [int(t) for t in engine_output(cache, name, sentencepiece, ["-m", "encode", "-i", joined]).split()]
        _same(ours, theirs, texts, separator, name)


def test_smollm_follows_llama_cpp_where_transformers_differs(llamaref: LlamaRef, gguf: Path, cache: Path) -> None:
    """Whitespace before a number, under "smollm": for a blank before a number that is not an
    ASCII digit (½, ², ٣) transformers keeps the blank with the number and llama.cpp splits it
    off; for two or more blanks before a digit transformers gives one token per blank and
    llama.cpp one for the run. ppc-llm follows llama.cpp (transformers' comparisons in
    tests/integration/test_smollm.py leave these strings out); this test notices when either
    side changes."""
    from tests.smollm_reference import hf_encode, transformers_differs

    assert all(transformers_differs(text) for text in [" \u00bd", "  0"])
    for text in [" \u00bd", "x \u00b2", "\u00bd \u00b2 \u0663", "  0", "x   12"]:
        ours = [int(t) for t in engine_output(cache, "host", gguf, ["-m", "encode", "-i", text]).split()]
        assert ours == llamaref.tokenize(gguf, [text])[0] != hf_encode(gguf, text), text


def test_a_file_without_a_pre_tokenizer_converts_with_a_note(tmp_path: Path, gguf: Path) -> None:
    model = write_llama(tmp_path / "no-pre.gguf", TINY, gguf, pre=None)
    result = cli("convert", str(model), "--endian", "big", "-o", str(tmp_path / "no-pre.bin"))
    assert result.returncode == 0, result.stderr
    assert b"names no pre-tokenizer" in result.stderr and b"'default'" in result.stderr


@pytest.fixture(scope="module")
def random_f32(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama(tmp_path_factory.mktemp("random") / "random-f32.gguf", SMOLLM2_WIDE, gguf)


@pytest.mark.parametrize("name,steps", [("host", 32), ("g4", 16), ("xenon", 16)])
def test_greedy_equals_llama_cpp_on_f32_weights(llamaref: LlamaRef, random_f32: Path, cache: Path, name: str,
                                                steps: int) -> None:
    ids, ours = greedy_agreement(llamaref, cache, name, random_f32, steps)
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
