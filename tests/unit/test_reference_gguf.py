"""Tests of the reference's GGUF side: the 16-bit-activation block kernel (against a scalar
transcription of the engine's C, with an exact fmaf), the GPT-2 BPE tokenizer (against GPT-2's
regex and hand-worked merges), and the BPE generation loop's bookkeeping."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
import regex

from toolkit import reference as ref
from toolkit.errors import UsageError
from toolkit.fuzz import tinygguf
from toolkit.models import Model, ModelConfig, Tokenizer
from toolkit.models.bpe import BPE, NO_TOKEN, PRE_DEFAULT, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2, PRE_SMOLLM
from toolkit.models.gguf import GLOBAL_TENSORS, LAYER_TENSORS, read_gguf
from toolkit.quant import GROUP, QuantTensor, padded_groups
from toolkit.quant import dequantize as quant_dequantize
from toolkit.reference import blocks, tokenizer_bpe

F32 = np.float32
GPT2 = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
# llama.cpp's (llama-vocab.cpp) regexes for the other pre-tokenizers, applied as it applies them:
# each regex of a list splits every piece the one before left (matches and the gaps between)
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPLITS = {
    PRE_SMOLLM: [r"\p{N}", GPT2.pattern],
    PRE_LLAMA3: [LLAMA3],
    PRE_QWEN2: [LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")],
    PRE_DEFAULT: [r"[\p{P}\$\+<=>\^~\|]+", GPT2.pattern, r"\p{N}+", r"[0-9][0-9][0-9]"],
}


# --------------------------------------------------------------------------- block kernel


def _exact_fmaf(a: float, b: float, c: float) -> F32:
    """fmaf with one rounding: the float32 nearest to a * b + c (ties to even)."""
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    guess = F32(float(exact))
    candidates = [np.nextafter(guess, F32(-np.inf)), guess, np.nextafter(guess, F32(np.inf))]
    candidates.sort(key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.uint32)) & 1))
    return F32(candidates[0])


def _c_roundf(v: F32) -> float:
    return math.copysign(math.floor(abs(float(v)) + 0.5), float(v))


def _c_prepare(x: np.ndarray, groups: int) -> tuple[list[int], list[int], list[F32]]:
    """ppcllm_prepare_fvec, scalar: (hi bytes, lo bytes, scales)."""
    hi, lo, scales = [0] * (groups * GROUP), [0] * (groups * GROUP), []
    for g in range(groups):
        base, amax = g * GROUP, F32(0.0)
        for k in range(GROUP):
            if base + k < x.shape[0] and abs(x[base + k]) > amax:
                amax = abs(x[base + k])
        s = F32(amax / F32(32767.0))
        inv = F32(1.0) / s if s != 0 else F32(0.0)
        scales.append(s)
        for k in range(GROUP):
            r = _c_roundf(F32(x[base + k] * inv)) if base + k < x.shape[0] else 0.0
            biased = (int(r) if -32767 <= r <= 32767 else 0) + 32768
            lo[base + k], hi[base + k] = biased & 255, (biased >> 8) - 128
    return hi, lo, scales


def _c_matvec_blk(q: QuantTensor, x: np.ndarray) -> np.ndarray:
    """ppcllm_matvec_blk_scalar on the stored (unsigned) codes, with the offset corrections."""
    rows, groups = q.scales.shape
    hi, lo, s = _c_prepare(x, groups)
    offset = {"q8_0": 128, "q4_0": 8, "q4_1": 0}[q.kind]
    out = []
    for r in range(rows):
        acc = [F32(0.0)] * 4
        for g in range(groups):
            ds = F32(q.scales[r, g] * s[g])
            ms = F32(q.mins[r, g] * s[g]) if q.mins is not None else F32(0.0)
            for lane in range(4):
                elements = [g * GROUP + e for e in (*range(4 * lane, 4 * lane + 4), *range(16 + 4 * lane, 20 + 4 * lane))]
                qsum = sum(256 * hi[e] + lo[e] for e in elements)
                isum = -offset * qsum + sum((int(q.values[r, e]) + offset) * (256 * hi[e] + lo[e]) for e in elements)
                acc[lane] = _exact_fmaf(float(F32(isum)), float(ds), float(acc[lane]))
                if q.mins is not None:
                    acc[lane] = _exact_fmaf(float(F32(qsum)), float(ms), float(acc[lane]))
        out.append(F32(F32(acc[0] + acc[1]) + F32(acc[2] + acc[3])))
    return np.array(out, dtype=np.float32)


def _random_blocks(kind: str, rows: int, cols: int, rng: np.random.Generator) -> QuantTensor:
    groups, used = padded_groups(cols), -(-cols // GROUP)
    low, high = {"q8_0": (-128, 128), "q4_0": (-8, 8), "q4_1": (0, 16)}[kind]
    values = np.zeros((rows, groups * GROUP), dtype=np.int8)
    values[:, :cols] = rng.integers(low, high, (rows, cols))
    scales = np.zeros((rows, groups), dtype=np.float32)
    scales[:, :used] = (rng.standard_normal((rows, used)) * 0.05).astype(np.float16)
    mins = None
    if kind == "q4_1":
        mins = np.zeros((rows, groups), dtype=np.float32)
        mins[:, :used] = (rng.standard_normal((rows, used)) * 0.3).astype(np.float16)
    return QuantTensor(kind, (rows, cols), values, scales, mins)


@pytest.mark.parametrize("kind", ["q8_0", "q4_0", "q4_1"])
@pytest.mark.parametrize("cols", [32, 70, 200])
def test_wide_block_product_matches_the_c_kernel(kind: str, cols: int) -> None:
    rng = np.random.default_rng(cols)
    q = _random_blocks(kind, 6, cols, rng)
    x = (rng.standard_normal(cols) * rng.random(cols) ** 3 * 40).astype(np.float32)
    x[::9] = 0.0
    expected = _c_matvec_blk(q, x)
    assert np.array_equal(blocks.matvec_wide(q, x), expected)
    assert np.array_equal(blocks.WideMatrix(q)(x), expected)


def test_q8_lanes_too_wide_for_float32_are_split_and_stay_exact() -> None:
    # every code -128 and every input at the group's maximum: each lane sums to 8 * 128 * 32767,
    # above 2^24, where a single float32 product sum would round
    groups = padded_groups(64)
    values = np.full((3, groups * GROUP), -128, dtype=np.int8)
    q = QuantTensor("q8_0", (3, 64), values, np.full((3, groups), 0.5, dtype=np.float32))
    x = np.full(64, 3.0, dtype=np.float32)
    assert blocks.WideMatrix(q).split
    assert np.array_equal(blocks.matvec_wide(q, x), _c_matvec_blk(q, x))
    assert not blocks.WideMatrix(_random_blocks("q4_1", 2, 64, np.random.default_rng(0))).split


def test_wide_quantization_of_the_input() -> None:
    x = np.array([1.0, -2.0, np.nan, 0.5] + [0.0] * 30, dtype=np.float32)
    q, s = blocks.quantize_wide(x, 4)
    assert q.shape == (128,) and s.shape == (4,)
    assert s[0] == F32(F32(2.0) / F32(32767.0)) and list(s[1:]) == [0.0, 0.0, 0.0]
    assert list(q[:4]) == [16384, -32767, 0, 8192]  # NaN: 0, and ignored by the maximum
    infinite = blocks.quantize_wide(np.array([np.inf, 1.0], dtype=np.float32), 4)[0]
    assert list(infinite[:2]) == [0, 0]  # the scale is infinite, 1/s is 0: inf * 0 is NaN -> 0


# --------------------------------------------------------------------------- BPE tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Model:
    path = tinygguf.write(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return read_gguf(path, path.read_bytes())


def _ids(model: Model, *pieces: bytes) -> list[int]:
    return [model.tokenizer.pieces.index(piece) for piece in pieces]


def _pretokens(text: str, pre: int = PRE_GPT2) -> list[str]:
    data, out, start = text.encode(), [], 0
    while start < len(data):
        length = tokenizer_bpe._pretoken(pre, data[start:])
        out.append(data[start:start + length].decode())
        start += length
    return out


def _split(patterns: list[str], text: str) -> list[str]:
    """llama.cpp's unicode_regex_split: each pattern cuts every piece into its matches and gaps."""
    pieces = [text]
    for pattern in patterns:
        cut: list[str] = []
        for piece in pieces:
            at = 0
            for m in regex.finditer(pattern, piece):
                cut += [part for part in (piece[at:m.start()], m.group()) if part]
                at = m.end()
            cut += [piece[at:]] if at < len(piece) else []
        pieces = cut
    return pieces


def _texts(seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = [*"aZ09 '\t\n\r.,!?-_$+<=>^~|`@#\u00bd\u00b2\u0663\u216b\u00e9\u00df\u65e5\U0001f600\u00a0\u3000\u200b",
                *"smltdvreSMLTDVRE\"()\u00bf\u2014\u00ab", "'s", "'ll", "'RE", "'Ve", "  ", "   ", "\u2003", "\r\n",
                " \n ", "12345", "1234567"]
    texts = ["Hello world", "don't won't I'm you're they've we'll he'd", "DON'T I'M WE'LL", "a  b   c", "trailing   ",
             "  lead", "x1y22 333 4444 55555", "\u00bd cup", " \u00bd", "tabs\tand\nnew\n\n\nlines", "'", "'x", "a'", " '",
             "''s", "a  \n  b", "x \r\n\ty", "$5+3<=4 ^~| `q`", "...!!!??", "\u00a1Hola! \u00bfQu\u00e9?", "3.14159, 2,718"]
    return texts + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(500)]


def test_pretokens_follow_gpt2s_regex() -> None:
    for text in _texts(20261202):
        assert _pretokens(text) == GPT2.findall(text), repr(text)


@pytest.mark.parametrize("pre", sorted(SPLITS), ids=lambda p: {PRE_SMOLLM: "smollm", PRE_LLAMA3: "llama3",
                                                                  PRE_QWEN2: "qwen2", PRE_DEFAULT: "default"}[p])
def test_pretokens_follow_llamacpps_regexes(pre: int) -> None:
    for text in _texts(20261203 + pre):
        assert _pretokens(text, pre) == _split(SPLITS[pre], text), repr(text)


def test_malformed_utf8_is_one_other_character_per_byte() -> None:
    # a lone continuation byte and a truncated sequence are class "other", like punctuation
    assert tokenizer_bpe._pretoken(PRE_GPT2, b"\x80\x80!a") == 3
    assert tokenizer_bpe._pretoken(PRE_GPT2, b" \xe2\x98x") == 3
    assert tokenizer_bpe._utf8(b"\xf0\x9f\x98", 0) == (0xFFFD, 1)
    assert tokenizer_bpe._utf8("\U0001f600".encode(), 0) == (0x1F600, 4)


def test_encode_merges_lowest_rank_first(tiny: Model) -> None:
    assert tiny.bpe is not None
    tokens = tokenizer_bpe.encode(tiny.tokenizer, tiny.bpe, "Once upon a time")
    # "Once": only "ce" merges; " upon": "on", then "Ġu", then "Ġup"; " time": "Ġt", "me", "Ġti", "Ġtime"
    assert tokens == _ids(tiny, b"O", b"n", b"ce", b" up", b"on", b" a", b" time")
    assert tokenizer_bpe.encode(tiny.tokenizer, tiny.bpe, "") == []
    assert tokenizer_bpe.encode(tiny.tokenizer, tiny.bpe, b"on\0ce") == _ids(tiny, b"on")  # a C string


def test_encode_matches_control_tokens_whole(tiny: Model) -> None:
    assert tiny.bpe is not None
    tokens = tokenizer_bpe.encode(tiny.tokenizer, tiny.bpe, "on<|im_end|> the<|im_start|><|im_end")
    # an unfinished control token is ordinary text: "<|" "im" "_" "end", and "end" merges "en"
    assert tokens == _ids(tiny, b"on", b"<|im_end|>", b" the", b"<|im_start|>", b"<", b"|", b"i", b"m", b"_",
                          b"en", b"d")
    assert [tokenizer_bpe.decode(tiny.tokenizer, tiny.bpe, t) for t in tokens[:3]] == [b"on", b"", b" the"]
    assert tokenizer_bpe.vocab(tiny.tokenizer, tiny.bpe).stops == set(_ids(tiny, b"<|endoftext|>", b"<|im_end|>"))


def _bpe_model(favour: int | None, add_bos: bool = False, drop: int | None = None, seq_len: int = 16) -> Model:
    """256 byte tokens, "ab" (256), then <|endoftext|> (257), <|im_end|> (258); all-zero layers,
    so the logits are ~4.0 for ``favour``, else 0 (see test_reference._tiny_model)."""
    pieces = tuple(bytes([b]) for b in range(256)) + (b"ab", b"<|endoftext|>", b"<|im_end|>")
    byte_tokens = tuple(NO_TOKEN if b == drop else b for b in range(256))
    bpe = BPE(byte_tokens, (257, 258), ((97, 98),), (256,), 257, 257, add_bos, PRE_GPT2)
    config = ModelConfig(dim=4, hidden_dim=8, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=len(pieces),
                         seq_len=seq_len, shared_classifier=False)
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in config.tensor_shapes().items()}
    for name in ("tok_embeddings", "rms_att", "rms_ffn", "rms_final"):
        tensors[name][...] = 1.0
    if favour is not None:
        tensors["wcls"][favour] = 1.0
    return Model(config, tensors, Tokenizer(pieces, (0.0,) * len(pieces), 13), bpe=bpe)


def test_llama3_takes_a_pre_token_that_is_a_whole_token_unmerged() -> None:
    """llama.cpp's ignore_merges (llama-bpe): " xyz" is a token no merge reaches; the other
    pre-tokenizers merge it from its bytes."""
    pieces = tuple(bytes([b]) for b in range(256)) + (b"ab", b" xyz", b"<|endoftext|>")
    tokenizer = Tokenizer(pieces, (0.0,) * len(pieces), 4)
    for pre, expected in ((PRE_LLAMA3, [256, 257]), (PRE_QWEN2, [256, 32, 120, 121, 122])):
        bpe = BPE(tuple(range(256)), (258,), ((97, 98),), (256,), 258, 258, False, pre)
        assert tokenizer_bpe.encode(tokenizer, bpe, "ab xyz") == expected


def test_encode_drops_bytes_without_a_token_and_adds_bos_when_asked() -> None:
    model = _bpe_model(None, add_bos=True, drop=ord("x"))
    assert model.bpe is not None
    assert tokenizer_bpe.encode(model.tokenizer, model.bpe, "xabx a") == [257, 256, 32, 97]


# --------------------------------------------------------------------------- BPE generation


def test_bpe_generation_prints_the_prompt_then_samples_up_to_steps() -> None:
    model = _bpe_model(favour=ord("z"))
    generation = ref.generate(model, "abc", 0.0, 0.9, 1, 6)
    assert generation.text == b"abczzzz\n"  # "ab" "c" as typed, then 4 tokens: 6 printed in all
    assert [s.sampled for s in generation.steps] == [False, False, True, True, True, True]
    assert [s.pos for s in generation.steps] == [0, 1, 2, 3, 4, 5]
    assert generation.tokens == [256, 99] + [ord("z")] * 4
    assert generation.steps[0].margin == math.inf and generation.steps[2].margin > 3.9


def test_bpe_generation_with_bos_empty_prompt_and_a_long_prompt() -> None:
    with_bos = ref.generate(_bpe_model(favour=ord("z"), add_bos=True), "ab", 0.0, 0.9, 1, 4)
    assert with_bos.text == b"abzzz\n" and with_bos.tokens[0] == 257  # BOS runs but never prints
    empty = ref.generate(_bpe_model(favour=ord("z")), "", 0.0, 0.9, 1, 3)
    assert empty.text == b"zzz\n" and empty.tokens == [257] + [ord("z")] * 3
    assert [s.pos for s in empty.steps] == [1, 2, 3]
    long = ref.generate(_bpe_model(favour=ord("z")), "abcdefgh", 0.0, 0.9, 1, 3)
    assert long.text == b"abcd\n" and not any(s.sampled for s in long.steps)  # "ab" is one token
    whole = ref.generate(_bpe_model(favour=ord("z"), seq_len=5), "", 0.0, 0.9, 1, 0)
    assert len(whole.steps) == 5  # 0: the whole context


@pytest.mark.parametrize("stop", [257, 258])
def test_bpe_generation_ends_at_a_stop_token(stop: int) -> None:
    generation = ref.generate(_bpe_model(favour=stop), "ab<|im_end|>c", 0.0, 0.9, 1, 10)
    assert generation.text == b"abc\n"  # a control token in the prompt prints nothing
    assert generation.steps[-1].token == stop and generation.steps[-1].printed == b""
    assert ref.compare(generation, b"abc\n").ok and not ref.compare(generation, b"abcz\n").ok


def test_bpe_generation_on_the_tiny_gguf_model(tiny: Model) -> None:
    """The tiny model's blocks (Q8_0, Q4_1) multiply 16-bit activations; sampling is seeded."""
    greedy = ref.generate(tiny, "Once upon a time", 0.0, 0.9, 1, 12)
    assert greedy.text.startswith(b"Once upon a time") and len(greedy.steps) <= 12
    sampled = ref.generate(tiny, "Once upon a time", 0.8, 0.9, 42, 12)
    assert sampled.text.startswith(b"Once upon a time")
    assert sampled == ref.generate(tiny, "Once upon a time", 0.8, 0.9, 42, 12)
    assert ref.compare(sampled, sampled.text).ok


def test_context_length_is_the_engines() -> None:
    model = _bpe_model(None, seq_len=4096)
    assert ref.context_length(model, None) == 2048  # the engine's default -c
    assert ref.context_length(model, 100) == 100 and ref.context_length(model, 10**6) == 4096
    with pytest.raises(UsageError):
        ref.context_length(model, 0)
    assert len(ref.generate(model, "", 0.0, 0.9, 1, 0, context=7).steps) == 7



def test_block_codes_mean_what_the_gguf_package_dequantizes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The reference multiplies the blocks as read (codes, fp16 scales, Q4_1 mins); dequantized they
    are exactly the gguf package's values, for every quantized tensor of the tiny model."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    path = tinygguf.write(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    model = read_gguf(path, path.read_bytes())
    kinds = set()
    for t in GGUFReader(path, "r").tensors:
        parts = t.name.split(".")  # token_embd.weight, blk.N.attn_q.weight, ...
        ours = model.tensors[GLOBAL_TENSORS[parts[0]] if len(parts) == 2 else LAYER_TENSORS[parts[2]]]
        if not isinstance(ours, QuantTensor):
            continue
        matrix = ours if len(parts) == 2 else ours.rows_of(int(parts[1]))
        expected = dequantize(t.data, t.tensor_type).reshape(matrix.shape).astype(np.float32)
        assert np.array_equal(quant_dequantize(matrix), expected), t.name
        kinds.add(matrix.kind)
    assert kinds == {"q8_0", "q4_1"}
