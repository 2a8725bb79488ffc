"""The engine's llama2.c prompt encoding (a linked list and a heap of pairs, O(n log n)) gives
the token ids of llama2.c's run.c `encode` (O(n^2)), compared with a plain Python port of
run.c written here, on the stories260K 512-token and the Llama 2 32000-token vocabularies."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from toolkit import format as fmt
from toolkit.emulate import run_user
from toolkit.models import Model, ModelConfig, Tokenizer
from toolkit.models.llama2c import parse_tokenizer
from toolkit.resources import default_tokenizer
from toolkit.targets import load_target
from toolkit.toolchain import Build, cached_build

LLAMA2_TOKENIZER = Path("/work/shared/models/tokenizer.bin")
BOS = 1
NEWLINE = b"\n"


# ------------------------------------------------------------------------------------------------
# run.c's encode, ported line by line (sorted_vocab, str_lookup with glibc's bsearch, encode)


class RunC:
    """run.c's Tokenizer over a parsed tokenizer.bin: pieces as C strings (cut at a NUL)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.vocab = [piece.split(b"\0", 1)[0] for piece in tokenizer.pieces]
        self.scores = list(tokenizer.scores)
        order = sorted(range(len(self.vocab)), key=lambda i: self.vocab[i])  # qsort by strcmp (stable)
        self.sorted_str = [self.vocab[i] for i in order]
        self.sorted_id = order
        self.memo: dict[bytes, int] = {}

    def str_lookup(self, text: bytes) -> int:
        """bsearch(3) as glibc probes: the middle of [l, u), strcmp decides the half."""
        found = self.memo.get(text)
        if found is None:
            lo, hi, found = 0, len(self.sorted_str), -1
            while lo < hi:
                idx = (lo + hi) // 2
                probe = self.sorted_str[idx]
                if text < probe:
                    hi = idx
                elif text > probe:
                    lo = idx + 1
                else:
                    found = self.sorted_id[idx]
                    break
            self.memo[text] = found
        return found

    def codepoints(self, text: bytes) -> list[int]:
        """The UTF-8 loop: a lead byte and up to 3 continuation bytes, looked up, else bytes + 3."""
        tokens: list[int] = []
        buf = bytearray()
        for i, c in enumerate(text):
            if c & 0xC0 != 0x80:
                buf.clear()
            buf.append(c)
            following = text[i + 1] if i + 1 < len(text) else 0
            if following & 0xC0 == 0x80 and len(buf) < 4:
                continue
            token = self.str_lookup(bytes(buf))
            tokens.extend([token] if token != -1 else [b + 3 for b in buf])
            buf.clear()
        return tokens

    def merge(self, tokens: list[int]) -> list[int]:
        """The merge loop: rescan every pair, merge the best (strict >, so the leftmost), repeat."""
        tokens = list(tokens)
        while True:
            best_score, best_id, best_idx = np.float32(-1e10), -1, -1
            for i in range(len(tokens) - 1):
                token = self.str_lookup(self.vocab[tokens[i]] + self.vocab[tokens[i + 1]])
                if token != -1 and self.scores[token] > best_score:
                    best_score, best_id, best_idx = self.scores[token], token, i
            if best_idx == -1:
                return tokens
            tokens[best_idx:best_idx + 2] = [best_id]

    def start(self, text: bytes) -> list[int]:
        """BOS, then the dummy prefix " " when the text is not empty (the engine, like run.c with
        any real vocabulary, adds it only when " " is a piece)."""
        tokens = [BOS]
        if text and self.str_lookup(b" ") != -1:
            tokens.append(self.str_lookup(b" "))
        return tokens

    def encode(self, text: bytes) -> list[int]:
        return self.merge(self.start(text) + self.codepoints(text))


# ------------------------------------------------------------------------------------------------
# Models and engines


@dataclass(frozen=True)
class Vocab:
    name: str
    tokenizer: Tokenizer
    runc: RunC


def tiny_model_for(tokenizer: Tokenizer) -> Model:
    """Random weights, tiny dims, the given vocabulary: only the tokenizer matters here."""
    cfg = ModelConfig(dim=16, hidden_dim=32, n_layers=1, n_heads=2, n_kv_heads=1,
                      vocab_size=tokenizer.vocab_size, seq_len=16, shared_classifier=True)
    rng = np.random.default_rng(0)
    tensors = {name: (rng.standard_normal(shape) * 0.5).astype(np.float32)
               for name, shape in cfg.tensor_shapes().items()}
    return Model(cfg, tensors, tokenizer)


@pytest.fixture(scope="module", params=["tok512", "llama2-32000"])
def vocab(request: pytest.FixtureRequest) -> Vocab:
    path = default_tokenizer() if request.param == "tok512" else LLAMA2_TOKENIZER
    tokenizer = parse_tokenizer(path.read_bytes(), str(path))
    assert tokenizer.vocab_size == (512 if request.param == "tok512" else 32000)
    return Vocab(request.param, tokenizer, RunC(tokenizer))


@pytest.fixture(scope="module")
def engines(cache: Path) -> dict[str, Build]:
    return {name: cached_build(load_target(name), cache) for name in ("host", "g4")}


@pytest.fixture(scope="module")
def model_files(vocab: Vocab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp(f"encode-{vocab.name}")
    model = tiny_model_for(vocab.tokenizer)
    files = {}
    for name, endian in (("host", "little"), ("g4", "big")):
        files[name] = folder / f"{vocab.name}.{endian}.bin"
        files[name].write_bytes(fmt.encode(model, endian))
    return files


def engine_ids(name: str, engines: dict[str, Build], model_files: dict[str, Path], text: bytes) -> list[int]:
    result = run_user(load_target(name), engines[name].engine, [str(model_files[name]), "-m", "encode", "-i", text],
                      timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [int(word) for word in result.stdout.split()]


# ------------------------------------------------------------------------------------------------
# Prompts

FIXED_PROMPTS: list[bytes] = [
    b"",
    b"a",
    b" ",
    b"Once upon a time",
    b"Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
    b"The quick brown fox jumps over the lazy dog. 0123456789 !@#$%^&*()_+-=[]{};':\",./<>?`~|\\",
    "h\u00e9llo w\u00f6rld \u2014 na\u00efve caf\u00e9 \u2603 \u65e5\u672c\u8a9e \U0001F600 \U0001D11E".encode(),
    b"\xff\xfe bad \xc3 \x80\x80\x80\x80 \xf0\x9f \xe2\x82",  # invalid UTF-8: byte fallback
    b"\x01\x02\x03\t\n\r\x1b\x7f tabs\tand\nnewlines\r\n",  # control bytes
    b"a" * 257,
    b"ab" * 160,
    b"aaa bbb " * 40,
    b" " * 100,
    b"\n" * 50,
    "\U0001F600".encode() * 40,
    "\u00e9".encode() * 99,
    b"the the the the the the the the the the the the the the the the",
    b"        indented    with    runs    of    spaces        ",
]

ALPHABET: list[bytes] = [bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz  ,.!?'\"\t\nABCLY0123"] + [
    "\u00e9".encode(), "\u00fc".encode(), "\u2603".encode(), "\u65e5".encode(), "\U0001F600".encode(),
    b"\xff", b"\xc3", b"\x80", b"\x01", b"\x7f",
]
WORDS = [b"Once", b"upon", b"a", b"time", b"there", b"was", b"little", b"girl", b"named", b"Lily", b"She",
         b"loved", b"to", b"play", b"in", b"the", b"park", b"One", b"day", b"saw", b"big", b"red", b"ball",
         "caf\u00e9".encode(), "na\u00efve".encode(), b"aaaa", b"abab", b"\xff\xfe", b"42", b"---"]


def random_prompt(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 120)))
    return b" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))


RANDOM_PROMPTS = [random_prompt(random.Random(seed)) for seed in range(40)]


def words_text(rng: random.Random, size: int, sep: bytes) -> bytes:
    """About ``size`` bytes of random words and characters, cut at ``sep`` boundaries."""
    parts: list[bytes] = []
    used = 0
    while used < size:
        line = b" ".join(rng.choice(WORDS) if rng.random() < 0.8 else rng.choice(ALPHABET).strip(b"\n") or b"x"
                         for _ in range(rng.randint(3, 18)))
        parts.append(line)
        used += len(line) + len(sep)
    return sep.join(parts)


# ------------------------------------------------------------------------------------------------
# Tests


def test_port_matches_known_ids(vocab: Vocab) -> None:
    """Not the engine: the port itself against run.c's ids as llama2.c's test.c records them for
    the Llama 2 vocabulary, and a hand-checked case for tok512 (byte fallback of an emoji)."""
    if vocab.name == "llama2-32000":
        assert vocab.runc.encode(b"I believe the meaning of life is") == [1, 306, 4658, 278, 6593, 310, 2834, 338]
        assert vocab.runc.encode(b"") == [1]
    else:
        ids = vocab.runc.encode("\U0001F600".encode())
        assert ids[2:] == [b + 3 for b in "\U0001F600".encode()]


def test_host_encoding_equals_runc(vocab: Vocab, engines: dict[str, Build], model_files: dict[str, Path]) -> None:
    mismatches = []
    for text in FIXED_PROMPTS + RANDOM_PROMPTS:
        got, want = engine_ids("host", engines, model_files, text), vocab.runc.encode(text)
        if got != want:
            mismatches.append((text, got, want))
    assert not mismatches, mismatches[:3]


def test_g4_encoding_equals_runc(vocab: Vocab, engines: dict[str, Build], model_files: dict[str, Path]) -> None:
    """Big-endian, 32-bit, under qemu-ppc: a few of the prompts."""
    for text in [FIXED_PROMPTS[4], FIXED_PROMPTS[6], FIXED_PROMPTS[7], FIXED_PROMPTS[10], *RANDOM_PROMPTS[:3]]:
        assert engine_ids("g4", engines, model_files, text) == vocab.runc.encode(text), text


def test_a_4k_prompt_equals_runc(vocab: Vocab, engines: dict[str, Build], model_files: dict[str, Path]) -> None:
    """One line of about 4 KiB: thousands of merges, compared with the full quadratic port."""
    text = words_text(random.Random(4), 4096, b" ")
    assert NEWLINE not in text and len(text) >= 4096
    want = vocab.runc.encode(text)
    assert len(want) > 500
    assert engine_ids("host", engines, model_files, text) == want


def test_a_34k_prompt_equals_runc(vocab: Vocab, engines: dict[str, Build], model_files: dict[str, Path]) -> None:
    """About 34 KiB in lines. A newline has no piece of its own in these vocabularies, so it is
    the byte token <0x0A>, and no piece starts or ends with "<0x0A>": no merge crosses it, and
    run.c's result is the concatenation of the lines' merges (each line computed by the port)."""
    runc = vocab.runc
    newline = runc.str_lookup(b"<0x0A>")
    assert runc.str_lookup(NEWLINE) == -1 and newline == NEWLINE[0] + 3
    assert not [p for p in runc.vocab if p != b"<0x0A>" and (p.startswith(b"<0x0A>") or p.endswith(b"<0x0A>"))]
    text = words_text(random.Random(34), 34 * 1024, NEWLINE)
    lines = text.split(NEWLINE)
    assert len(text) >= 34 * 1024 and len(lines) > 100
    want = runc.merge(runc.start(text) + runc.codepoints(lines[0]))
    for line in lines[1:]:
        want += [newline] + runc.merge(runc.codepoints(line))
    got = engine_ids("host", engines, model_files, text)
    assert got == want
    assert len(got) > 5000
