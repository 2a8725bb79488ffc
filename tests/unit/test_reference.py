"""Tests of the NumPy llama2.c reference (toolkit.reference): libm, kernels, the llama2.c tokenizer,
the sampler, generation and the comparison. The GGUF side (block kernels, BPE) is in
test_reference_gguf.py."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

import toolkit
from toolkit import reference as ref
from toolkit.reference import kernels, tokenizer_llama2c
from toolkit.errors import UsageError
from toolkit.models import Model, ModelConfig, Tokenizer
from toolkit.models.llama2c import read_checkpoint, read_tokenizer
from tests.helpers import shared_dir

MODELS = Path(toolkit.__file__).parent / "data" / "models"
GOLDEN_CASES = ("greedy-once-upon", "sampled-t1-p09-s42")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def golden_dir() -> Path:
    directory = shared_dir() / "golden"
    if not directory.is_dir():
        pytest.fail(f"golden outputs not found at {directory}; set PPC_LLM_SHARED to the shared "
                    "directory that holds golden/*.args and golden/*.out")
    return directory


@pytest.fixture(scope="module")
def tok512() -> Tokenizer:
    return read_tokenizer(MODELS / "tok512.bin")


@pytest.fixture(scope="module")
def stories(tok512: Tokenizer) -> Model:
    return read_checkpoint(MODELS / "stories260K.bin", tok512)


def _byte_pieces() -> list[bytes]:
    return [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)]


def _tokenizer(extra: list[tuple[bytes, float]]) -> Tokenizer:
    """llama2.c layout: unk, BOS, EOS, 256 byte tokens (id = byte + 3), then ``extra``."""
    pieces = _byte_pieces() + [piece for piece, _ in extra]
    scores = [0.0] * 259 + [score for _, score in extra]
    return Tokenizer(tuple(pieces), tuple(scores), max(len(p) for p in pieces))


def _tiny_model(tokenizer: Tokenizer, favour: int | None, seq_len: int = 8) -> Model:
    """A model whose layers are all zero, so its logits are ~4.0 for ``favour``, else 0.

    With zero attention and feed-forward weights the residual stream stays the (all-ones)
    embedding; the final rmsnorm makes it ~1.0 everywhere and the classifier row of
    ``favour`` (all ones) is the only non-zero logit.
    """
    config = ModelConfig(dim=4, hidden_dim=8, n_layers=1, n_heads=2, n_kv_heads=1,
                         vocab_size=tokenizer.vocab_size, seq_len=seq_len, shared_classifier=False)
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in config.tensor_shapes().items()}
    for name in ("tok_embeddings", "rms_att", "rms_ffn", "rms_final"):
        tensors[name][...] = 1.0
    if favour is not None:
        tensors["wcls"][favour] = 1.0
    return Model(config, tensors, tokenizer)


def _hex32(values: np.ndarray) -> list[str]:
    return [float(v).hex() for v in np.asarray(values, dtype=np.float32)]


# --------------------------------------------------------------------------- golden outputs


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_generate_reproduces_golden_output(name: str, golden_dir: Path, stories: Model) -> None:
    args = golden_dir / f"{name}.args"
    out = golden_dir / f"{name}.out"
    if not (args.is_file() and out.is_file()):
        pytest.fail(f"golden case {name} is missing from {golden_dir}")
    temperature, topp, seed, steps, prompt = args.read_text().rstrip("\n").split("|", 4)
    generation = ref.generate(stories, prompt, float(temperature), float(topp), int(seed), int(steps))
    expected = out.read_bytes()
    assert generation.text == expected
    assert ref.compare(generation, expected).ok


def test_forward_logits_are_bit_identical_to_run_c(stories: Model) -> None:
    # Token sequence of the greedy "Once upon a time" run; digests and values were taken from
    # run.c's forward() built with gcc -O3 -ffp-contract=off against glibc 2.36 on x86-64.
    tokens = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401,
              396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358,
              394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398,
              312, 286, 267, 414, 270, 333, 415, 426, 13, 438]
    expected = {
        0: ("424ace0879c66495ba76a44e53e608d5961ac816fe09142163ea900d86f5afe2",
            ["-0x1.8e442ep+2", "0x1.0cf05ep+3", "0x1.315214p+3", "0x1.106052p+4"]),
        5: ("c0d3def09e8d426693b831538d84a16ce3af1e06a1143bccf7ae1b9cacab9894",
            ["-0x1.9614aap+2", "0x1.5ab97ep-1", "0x1.c47bb0p+3", "0x1.5fc838p+2"]),
        63: ("3559bde37dd87ed870cad50fd93780019c3fafd2020839ffcef5530b5fc52a6b",
             ["-0x1.f7066ap+2", "0x1.235c9cp+0", "0x1.b6420ap+1", "-0x1.c868b8p+1"]),
    }
    transformer = ref.Transformer(stories)
    for pos, token in enumerate(tokens):
        logits = transformer.forward(token, pos)
        assert logits.dtype == np.float32
        if pos in expected:
            digest, values = expected[pos]
            assert _hex32(logits[[0, 1, 261, 403]]) == [float.fromhex(v).hex() for v in values]
            assert hashlib.sha256(logits.tobytes()).hexdigest() == digest


# --------------------------------------------------------------------------- float32 kernels


@pytest.mark.parametrize("shape", [(37,), (200, 1), (200, 2), (64, 172), (9, 3, 5), (1, 4), (300, 20000)])
def test_sequential_sum_adds_in_c_order(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    terms = (rng.standard_normal(shape) * rng.random(shape) ** 6).astype(np.float32)
    expected = np.zeros(shape[1:], dtype=np.float32)
    for row in terms:
        expected = expected + row  # float32 + float32, one row after another
    assert np.array_equal(kernels.sequential_sum(terms), expected)


def test_matmul_is_a_sequential_row_sum() -> None:
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((5, 300)) * rng.random((5, 300)) ** 4).astype(np.float32)
    x = rng.standard_normal(300).astype(np.float32)
    expected = []
    for row in w:
        acc = np.float32(0.0)
        for weight, value in zip(row, x):
            acc = np.float32(acc + np.float32(weight * value))
        expected.append(acc)
    assert np.array_equal(ref.matmul(np.ascontiguousarray(w.T), x), np.array(expected, dtype=np.float32))


# Inputs where glibc's result is not the correctly rounded one (values from glibc 2.36, x86-64).
@pytest.mark.parametrize(("function", "x", "glibc"), [
    (ref.expf, "0x1.f52afcp+1", "0x1.9157c0p+5"),
    (ref.expf, "0x1.8a912cp+1", "0x1.5d0672p+4"),
    (ref.sinf, "0x1.3aa7aap+7", "0x1.f66370p-3"),
    (ref.sinf, "0x1.9cce78p+6", "0x1.d09a3ep-2"),
    (ref.sinf, "0x1.d0f4aap+6", "-0x1.a44af8p-20"),
    (ref.cosf, "0x1.9672c4p+6", "0x1.e1a2fcp-2"),
    (ref.cosf, "0x1.2962b4p+7", "-0x1.0419bap-1"),
])
def test_float_functions_return_glibc_results(function: object, x: str, glibc: str) -> None:
    result = function(np.array([float.fromhex(x)], dtype=np.float32))  # type: ignore[operator]
    assert float(result[0]) == float.fromhex(glibc)


@pytest.mark.parametrize(("exponent", "glibc"), [
    ("0x1.425978p-1", "0x1.49e12ap+8"), ("0x1.46ab64p-1", "0x1.6489a6p+8"), ("0x1.7a5512p-1", "0x1.c388e4p+9"),
])
def test_powf_returns_glibc_results(exponent: str, glibc: str) -> None:
    assert float(ref.powf(10000.0, float.fromhex(exponent))) == float.fromhex(glibc)


def test_float_functions_special_values() -> None:
    x = np.array([0.0, -0.0, 1e-30, -np.inf, np.inf, -200.0, 100.0], dtype=np.float32)
    assert list(ref.expf(x)) == [1.0, 1.0, 1.0, 0.0, np.inf, 0.0, np.inf]
    assert np.isnan(ref.expf(np.array([np.nan], dtype=np.float32))[0])
    small = np.array([1e-5, -2e-6], dtype=np.float32)
    assert np.array_equal(ref.sinf(small), small) and list(ref.cosf(small)) == [1.0, 1.0]
    assert np.isnan(ref.sinf(np.array([np.inf], dtype=np.float32))[0])
    assert ref.powf(10000.0, 0.0) == 1.0 and ref.powf(1.0, 0.37) == 1.0


def test_float_functions_track_the_true_values() -> None:
    x = np.linspace(-80.0, 80.0, 2001, dtype=np.float32)  # results stay normal floats
    assert np.allclose(ref.expf(x), np.exp(x.astype(np.float64)), rtol=2e-7, atol=0)
    angles = np.concatenate([np.linspace(-5000, 5000, 4001), np.arange(0, 600)]).astype(np.float32)
    assert np.allclose(ref.sinf(angles), np.sin(angles.astype(np.float64)), rtol=0, atol=1.2e-7)
    assert np.allclose(ref.cosf(angles), np.cos(angles.astype(np.float64)), rtol=0, atol=1.2e-7)
    for e in np.linspace(0, 1, 33, dtype=np.float32):
        assert math.isclose(float(ref.powf(10000.0, e)), 10000.0 ** float(e), rel_tol=2e-7)


def test_rope_frequencies_follow_head_dimension(stories: Model) -> None:
    freq = ref.rope_frequencies(stories.config)  # head_size 8: head_dim 0, 2, 4, 6 repeating
    assert freq.shape == (32,) and freq.dtype == np.float32
    assert list(freq[:4]) == list(freq[4:8])
    assert freq[0] == 1.0 and freq[1] == np.float32(0.1)  # 10000^(2/8) = 10 exactly in glibc powf


# --------------------------------------------------------------------------- tokenizer


def test_encode_empty_prompt_is_just_bos(tok512: Tokenizer) -> None:
    assert ref.encode(tok512, "") == [1]
    assert ref.encode(tok512, b"") == [1]
    assert ref.encode(tok512, "", bos=False) == []


def test_encode_once_upon_a_time(tok512: Tokenizer) -> None:
    # Every word with its leading space is a piece of tok512, and merging always reaches them.
    words = [b" Once", b" upon", b" a", b" time"]
    tokens = ref.encode(tok512, "Once upon a time")
    assert tokens == [1] + [tok512.pieces.index(word) for word in words]
    decoded = b"".join(ref.decode_piece(tok512, prev, token) for prev, token in zip(tokens, tokens[1:]))
    assert decoded == b"Once upon a time"  # the BOS-following piece loses its leading space


def test_encode_unicode_falls_back_to_bytes(tok512: Tokenizer) -> None:
    tokens = ref.encode(tok512, "Lily saw a ☃!")
    snowman = [byte + 3 for byte in "☃".encode()]  # not a piece: one byte token per byte
    assert any(tokens[i:i + 3] == snowman for i in range(len(tokens)))
    # safe_printf drops lone bytes that are not printable ASCII, so the snowman never prints.
    decoded = b"".join(ref.decode_piece(tok512, prev, token) for prev, token in zip(tokens, tokens[1:]))
    assert decoded == b"Lily saw a !"


def test_encode_dummy_prefix_and_byte_fallback() -> None:
    tok = _tokenizer([(b" ", -1.0), (b"a", -2.0)])
    space, a = 259, 260
    assert ref.encode(tok, "a") == [1, space, a]
    assert ref.encode(tok, "b") == [1, space, ord("b") + 3]
    assert ref.encode(tok, "é") == [1, space, 0xC3 + 3, 0xA9 + 3]
    assert ref.encode(tok, "a", bos=False) == [space, a]


def test_encode_without_space_piece_has_no_dummy_prefix() -> None:
    tok = _tokenizer([(b"a", -1.0)])
    assert ref.encode(tok, "aa") == [1, 259, 259]


def test_encode_merges_highest_score_first_and_leftmost_on_ties() -> None:
    # pieces: 259 " ", 260 "a", 261 "b", 262 "ab" (-5), 263 "ba" (-1), 264 " a" (-1)
    tok = _tokenizer([(b" ", -9.0), (b"a", -9.0), (b"b", -9.0), (b"ab", -5.0), (b"ba", -1.0), (b" a", -1.0)])
    # " a b a": pairs " a"(-1) @0, "ab"(-5) @1, "ba"(-1) @2 -> leftmost -1 wins: " a", then "ba"
    assert ref.encode(tok, "aba", bos=False) == [264, 263]
    # Once no pair is in the vocabulary, merging stops.
    assert ref.encode(tok, "bb", bos=False) == [259, 261, 261]


def test_encode_codepoints_and_invalid_utf8() -> None:
    snowman = "☃".encode()
    tok = _tokenizer([(snowman, -1.0), (b"\x80", -1.0)])
    # A whole codepoint found in the vocabulary is one token.
    assert ref.encode(tok, snowman, bos=False) == [259]
    # Stray continuation bytes: run.c groups at most 4 bytes, then starts again.
    assert ref.encode(tok, b"\x80\x80\x80\x80\x80", bos=False) == [0x80 + 3] * 4 + [260]
    # A prompt is a C string: it ends at the first NUL.
    assert ref.encode(tok, b"\xe2\x98\x83\x00\xe2\x98\x83", bos=False) == [259]


def test_lookup_of_duplicate_pieces_follows_bsearch() -> None:
    # Pieces 259, 260 and 261 are all "x". Sorted by strcmp (stably) the table is
    # "\n</s>\n", "\n<s>\n", "<0x00>" .. "<0xFF>", "<unk>", "x" (259), "x" (260), "x" (261).
    # bsearch over 262 entries probes 131, 197, 230, 246, 254, 258 (all below "x"), then 260:
    # a match, the second "x", so id 260 -- neither the first nor the last duplicate.
    tok = _tokenizer([(b"x", -1.0), (b"x", -1.0), (b"x", -1.0)])
    assert ref.encode(tok, "x", bos=False) == [260]


def test_pieces_are_c_strings() -> None:
    tok = _tokenizer([(b"ab\x00zz", -1.0), (b"a", -2.0), (b"b", -2.0)])
    # "ab\0zz" reads as "ab" in C, so "a"+"b" merges into it.
    assert ref.encode(tok, "ab", bos=False) == [259]
    assert ref.decode_piece(tok, 5, 259) == b"ab"


def test_decode_piece_rules() -> None:
    tok = _tokenizer([(b" hello", 0.0), (b"x", 0.0), (b"", 0.0), (b"<0x41>", 0.0), (b"<0x7E", 0.0)])
    hello, x, empty, raw_a, short = 259, 260, 261, 262, 263
    assert ref.decode_piece(tok, 1, hello) == b"hello"  # after BOS the leading space goes
    assert ref.decode_piece(tok, 5, hello) == b" hello"
    assert ref.decode_piece(tok, 5, x) == b"x"
    assert ref.decode_piece(tok, 5, empty) == b""
    assert ref.decode_piece(tok, 5, 0x41 + 3) == b"A"  # <0x41>
    assert ref.decode_piece(tok, 5, 0x0A + 3) == b"\n"  # whitespace prints
    assert ref.decode_piece(tok, 5, 0x01 + 3) == b""  # control byte: safe_printf drops it
    assert ref.decode_piece(tok, 5, 0xE2 + 3) == b""  # lone non-ASCII byte: dropped too
    assert ref.decode_piece(tok, 5, 0x00 + 3) == b""  # <0x00> is the empty C string
    assert ref.decode_piece(tok, 5, raw_a) == b"A"
    assert ref.decode_piece(tok, 5, short) == b"~"  # sscanf needs no closing '>'
    assert ref.decode_piece(tok, 5, 0) == b"<unk>"


def test_scan_hex_byte_mirrors_sscanf() -> None:
    assert tokenizer_llama2c._scan_hex_byte(b"<0xff>") == 0xFF
    assert tokenizer_llama2c._scan_hex_byte(b"<0x7") == 7
    assert tokenizer_llama2c._scan_hex_byte(b"<0x123>") == 0x12
    assert tokenizer_llama2c._scan_hex_byte(b"<0x zz>") is None
    assert tokenizer_llama2c._scan_hex_byte(b"<0x 4>") == 4  # %X skips leading white space
    assert tokenizer_llama2c._scan_hex_byte(b"<0x-1>") == 0xFF
    assert tokenizer_llama2c._scan_hex_byte(b"<1x41>") is None


# --------------------------------------------------------------------------- sampler


def test_rng_sequence_for_seed_42() -> None:
    # First draw by hand: s = 42; s ^= s >> 12 -> 42; s ^= s << 25 -> 0x5400002a;
    # s ^= s >> 27 -> 0x54000020; s * 0x2545F4914F6CDD1D mod 2^64 = 0x56ce4ab7719ba3a0 -> >> 32.
    rng = ref.Rng(42)
    assert rng.u32() == 0x56CE4AB7 == 1456360119
    assert rng.state == 0x54000020
    assert [rng.u32() for _ in range(3)] == [3359763283, 3393612768, 4054632243]
    rng = ref.Rng(42)
    assert rng.f32() == np.float32((1456360119 >> 8) / 16777216.0)
    assert rng.f32().dtype == np.float32


def test_sample_argmax_takes_first_maximum() -> None:
    token, margin = ref.sample_argmax(np.array([1.0, 3.0, 3.0, 2.5], dtype=np.float32))
    assert (token, margin) == (1, 0.0)
    token, margin = ref.sample_argmax(np.array([1.0, 3.0, 2.5], dtype=np.float32))
    assert (token, margin) == (1, 0.5)


def test_sample_mult_picks_first_cdf_above_coin() -> None:
    probs = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    for coin, token, margin in ((0.1, 0, 0.1), (0.25, 1, 0.0), (0.7, 1, 0.05)):
        chosen, distance = ref.sample_mult(probs, np.float32(coin))
        assert chosen == token and distance == pytest.approx(margin, abs=1e-7)
    assert ref.sample_mult(probs, np.float32(0.999))[0] == 2


def test_sample_topp_keeps_the_nucleus() -> None:
    probs = np.array([0.1, 0.6, 0.05, 0.25], dtype=np.float32)
    # cutoff (1 - 0.8) / 3 drops index 2; sorted: 1 (0.6), 3 (0.25), 0 (0.1);
    # cumulative 0.6, 0.85 > 0.8 -> nucleus {1, 3}; r = coin * 0.85
    token, margin = ref.sample_topp(probs, np.float32(0.8), np.float32(0.5))
    assert token == 1 and margin == pytest.approx(0.175, abs=1e-6)  # r = 0.425, 0.6 - r
    # coin 0.9: r = 0.765 lies 0.085 below 0.85 -> token 3; but the cut (0.85) is only 0.05
    # above topp, and with index 0 kept too r would be 0.855 -> token 0: the margin is 0.05.
    token, margin = ref.sample_topp(probs, np.float32(0.8), np.float32(0.9))
    assert token == 3 and margin == pytest.approx(0.05, abs=1e-6)
    # never beyond the nucleus, whatever the coin
    assert ref.sample_topp(probs, np.float32(0.8), np.float32(0.99999))[0] == 3


def test_sample_topp_cutoff_and_ties() -> None:
    # cutoff = (1 - 0.5) / 4 = 0.125 drops index 4; equal probabilities keep index order.
    probs = np.array([0.3, 0.3, 0.2, 0.15, 0.05], dtype=np.float32)
    assert ref.sample_topp(probs, np.float32(0.5), np.float32(0.0))[0] == 0
    assert ref.sample_topp(probs, np.float32(0.5), np.float32(0.6))[0] == 1
    # no cumulative sum exceeds topp (possible with float rounding): every kept one takes part
    short = np.array([0.3, 0.2, 0.1], dtype=np.float32)
    assert ref.sample_topp(short, np.float32(0.9), np.float32(0.99))[0] == 2


def test_sample_topp_margin_sees_a_close_cut() -> None:
    # cumulative 0.5, 0.8000001 just above topp 0.8: the cut could have kept index 2 too,
    # which would move r = coin * cumulative past the 0.5 boundary.
    probs = np.array([0.5, 0.3000001, 0.1999999], dtype=np.float32)
    token, margin = ref.sample_topp(probs, np.float32(0.8), np.float32(0.6))
    assert token == 0 and margin < 1e-6


def test_sampler_draws_coin_only_when_sampling() -> None:
    logits = np.array([0.0, 2.0, 1.0], dtype=np.float32)
    greedy = ref.Sampler(0.0, 0.9, 42)
    assert greedy.sample(logits)[0] == 1 and greedy.rng.state == 42
    sampled = ref.Sampler(1.0, 0.0, 42)
    probs = ref.softmax(logits)
    coin = ref.Rng(42).f32()
    assert sampled.sample(logits)[0] == ref.sample_mult(probs, coin)[0]
    assert sampled.rng.state != 42


# --------------------------------------------------------------------------- generation


def test_generate_prints_prompt_then_greedy_tokens() -> None:
    tok = _tokenizer([(b" ", -1.0), (b"h", -1.0), (b"i", -1.0), (b"hi", -1.0), (b" hi", -1.0), (b" yo", -1.0)])
    model = _tiny_model(tok, favour=264)  # " yo"
    generation = ref.generate(model, "hi", 0.0, 0.9, 1, 5)
    assert generation.tokens == [1, 263, 264, 264, 264, 264]  # " " "h" "i" -> " " "hi" -> " hi"
    assert generation.text == b"hi yo yo yo yo\n"
    assert [step.sampled for step in generation.steps] == [False, True, True, True, True]
    assert generation.steps[0].margin == math.inf and generation.steps[1].margin > 3.9
    assert [step.pos for step in generation.steps] == [0, 1, 2, 3, 4]


def test_generate_steps_limits() -> None:
    tok = _tokenizer([(b"z", -1.0)])
    model = _tiny_model(tok, favour=259, seq_len=6)
    assert len(ref.generate(model, "", 0.0, 0.9, 1, 0).steps) == 6  # 0 -> seq_len
    assert len(ref.generate(model, "", 0.0, 0.9, 1, 100).steps) == 6  # capped at seq_len
    assert ref.generate(model, "", 0.0, 0.9, 1, 3).text == b"zzz\n"
    assert ref.generate(model, "zzzzzzzz", 0.0, 0.9, 1, 3).text == b"zzz\n"  # prompt outlasts steps
    with pytest.raises(UsageError):
        ref.generate(model, "", 0.0, 0.9, 1, -1)


def test_generate_stops_at_bos() -> None:
    tok = _tokenizer([(b"z", -1.0)])
    generation = ref.generate(_tiny_model(tok, favour=1), "zz", 0.0, 0.9, 1, 8)
    assert generation.text == b"zz\n"
    assert generation.tokens == [1, 259, 259, 1]
    assert generation.steps[-1].token == 1 and generation.steps[-1].printed == b""


def test_generate_sampling_follows_rng() -> None:
    tok = _tokenizer([(b"z", -1.0)])
    model = _tiny_model(tok, favour=None)  # all logits 0: a uniform distribution
    generation = ref.generate(model, "", 1.0, 1.0, 7, 4)
    rng = ref.Rng(7)
    expected = []
    n = tok.vocab_size
    probs = ref.softmax(np.zeros(n, dtype=np.float32))
    for _ in range(4):
        coin = rng.f32()
        cdf = np.float32(0.0)
        for i, p in enumerate(probs):
            cdf = np.float32(cdf + p)
            if coin < cdf:
                expected.append(i)
                break
    assert generation.tokens[1:] == expected


def test_generate_rejects_clock_seed_when_sampling() -> None:
    model = _tiny_model(_tokenizer([]), favour=5)
    with pytest.raises(UsageError):
        ref.generate(model, "", 1.0, 0.9, 0, 2)
    assert ref.generate(model, "", 0.0, 0.9, 0, 2).tokens == [1, 5, 5]  # greedy never draws


# --------------------------------------------------------------------------- compare


def _synthetic(pieces: list[bytes], margins: list[float]) -> ref.Generation:
    steps = [ref.StepRecord(pos, 300 + pos, not math.isinf(m), m, piece)
             for pos, (piece, m) in enumerate(zip(pieces, margins))]
    return ref.Generation([1] + [s.token for s in steps], steps, b"".join(pieces) + b"\n")


def test_compare_identical_output() -> None:
    generation = _synthetic([b"Once", b" upon", b" a", b" time"], [math.inf, 1.0, 2.0, 3.0])
    result = ref.compare(generation, b"Once upon a time\n")
    assert result.ok and result.message.startswith("verified: 4 tokens identical")


def test_compare_reports_first_mismatch() -> None:
    generation = _synthetic([b"Once", b" upon", b" a", b" time"], [math.inf, 1.0, 2.0, 3.0])
    result = ref.compare(generation, b"Once upon the time\n")
    assert not result.ok
    assert result.message.startswith("first mismatch at step 2 (position 2): reference token 302 "
                                     "printed b' a' but the program printed b' the time\\n'")
    assert "\n" not in result.message


def test_compare_accepts_divergence_at_near_tie() -> None:
    generation = _synthetic([b"Once", b" upon", b" a", b" time"], [math.inf, 1.0, 5e-5, 3.0])
    result = ref.compare(generation, b"Once upon the end\n")
    assert result.ok
    assert "step 2" in result.message and "near-tie" in result.message and "\n" not in result.message
    assert not ref.compare(generation, b"Once upon the end\n", tie_margin=1e-5).ok


def test_compare_near_tie_on_a_longer_token() -> None:
    # The program chose " upon" where the reference chose " up" (a near-tie): the first
    # differing byte is right after " up", so step 1 is a suspect as well as step 2.
    generation = _synthetic([b"Once", b" up", b" time"], [math.inf, 1e-6, 2.0])
    result = ref.compare(generation, b"Once upon time\n")
    assert result.ok and "step 1" in result.message


def test_compare_truncated_and_extra_output() -> None:
    generation = _synthetic([b"Once", b" upon"], [math.inf, 1.0])
    truncated = ref.compare(generation, b"Once up")
    assert not truncated.ok and "first mismatch at step 1" in truncated.message
    extra = ref.compare(generation, b"Once upon a time\n")
    assert not extra.ok and "after the last step" in extra.message
    assert "\n" not in extra.message
    trailing = ref.compare(generation, b"Once upon\nachieved tok/s: 100\n")
    assert not trailing.ok and "after the last step" in trailing.message
