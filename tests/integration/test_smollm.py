"""SmolLM2-135M-Instruct (GGUF, Q4_1) end to end: the C tokenizer and the toolkit's BPE reference
against transformers' own GGUF tokenizer, greedy tokens against a float64 NumPy reference (near-tie
rule), chat mode, the same tokens on the host, G4 and Xenon (the block kernels are bit-identical to
their scalar references, so every target must print the same ids), and `run-qemu --verify`: the
program's text against the toolkit's float32 reference of the engine, on the host and the G4."""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path

import pytest

from tests.helpers import smollm_gguf
from tests.smollm_reference import FloatLlama, chat_text, check_greedy, hf_encode, transformers_differs
from toolkit.cache import cache_root
from toolkit.emulate import RunResult, run_user
from toolkit.models.gguf import read_gguf
from toolkit.reference import tokenizer_bpe
from toolkit.pipeline import convert, open_input
from toolkit.targets import load_target
from toolkit.toolchain import cached_build

from .conftest import cli

CORPUS = [
    "Hello world", "Hello, world! How are you?", "  leading spaces", "trailing spaces   ", "a  b   c    d",
    "tabs\tand\nnewlines\n\n\nthree", "\r\nwindows line\r\n", "2024-11-25: 3.14159 and 1,000,000", "x1y22z333",
    "don't won't I'm you're they've we'll he'd 'quoted' 'S", "café naïve résumé Ærøskøbing", "Größe straße",
    "日本語のテキスト", "中文字符测试", "한국어", "emoji 😀👍🏽 family 👨‍👩‍👧", "ℕ ∑ √ ∞ ≠", "Ⅻ ½ ² ٣",
    "<|im_start|>user\nHi<|im_end|>", "text<|endoftext|>more", "<|im_start|><|im_end|>", "<|im_start", "$%^&*()_+{}|:\"<>?",
    "https://example.com/path?q=1&r=2", "def f(x):\n    return x ** 2\n", "\u00a0non-breaking\u2003em space",
    "UPPER lower MiXeD", "...!!!???", "a", " ", "",
]
# host only (one engine start each): number characters beside spaces and each other (where GPT-2's
# regex and a digit-splitting pre-tokenizer part ways), other scripts, combining marks, and
# random strings drawn from the characters that decide pre-token boundaries
MORE = [" \u00bd cup", "x \u00b2", "\u00b3\u00b2\u00b9", "1\u00bd", "  \u0663\u0663 12", "\u0661\u0662\u0663 \u0664\u0665",
        "\u2460\u2461\u2462", "x\u00b2+y\u00b2=z\u00b2", "3 4  5   6", "10,000 people in 1999.", "v1.2.3-beta",
        "Price: $12.50!!", "a\u00a0\u00a0b", "  \n\t  x", " \u3000x", "hello\u200bworld", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0928\u092e\u0938\u094d\u0924\u0947", "\U0001f1eb\U0001f1f7 flag", "   ", "\n\n\n",
        "a'sb 'll'LL", "I'M HERE", "\u2018curly\u2019 \u201cquotes\u201d", "e\u0301 combining", "\u01c5 D\u017e titlecase",
        "\U0001d518\U0001d52b\U0001d526", "<|im_end|>x", "<|endoftext|><|im_start|>assistant\n"]
ALPHABET = [*"aZ09 '\t\n\r.,!?-_\u00bd\u00b2\u0663\u216b\u00e9\u00df\u65e5\u672c\U0001f600\u00a0\u3000\u200bsmltdvre\"()",
            "\U0001f44d\U0001f3fd", "'s", "'ll", "<|im_start|>", "<|im_end|>", "  ", "   "]
RAW = [("Once upon a time", 40), ("The three primary colors are", 40), ("def fibonacci(n):", 40)]
CHAT = [("What is the capital of France?", None, 110), ("Name three fruits.", "You are a concise assistant.", 110),
        ("How many legs does a spider have?", None, 110)]
IDS = re.compile(rb"^(?:\d+ )+$", re.M)


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    return smollm_gguf()


@lru_cache(maxsize=4)
def _converted(target: str, gguf: Path) -> Path:
    return convert(open_input(gguf, None), load_target(target), cache_root()).path


@lru_cache(maxsize=4)
def _engine(target: str) -> Path:
    return cached_build(load_target(target), cache_root()).engine


def run_engine(target: str, gguf: Path, args: list[str], timeout: float = 1500) -> RunResult:
    result = run_user(load_target(target), _engine(target), [str(_converted(target, gguf)), *args], timeout)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def printed_ids(result: RunResult) -> list[int]:
    """The token ids the engine printed with -x 1 (one line of ids on stderr)."""
    found = IDS.findall(result.stderr)
    return [int(t) for t in found[0].split()] if found else []


@pytest.fixture(scope="module")
def reference(gguf_path: Path) -> FloatLlama:
    return FloatLlama(gguf_path, 256)


def _agreed(texts: list[str]) -> list[str]:
    """The texts on which transformers and llama.cpp (which the engine follows) agree."""
    return [text for text in texts if not transformers_differs(text)]


def test_tokenizer_matches_transformers_on_host_and_g4(gguf_path: Path) -> None:
    for target in ("host", "g4"):
        for text in _agreed(CORPUS):
            result = run_engine(target, gguf_path, ["-m", "encode", "-i", text])
            ours = [int(t) for t in result.stdout.split()]
            assert ours == hf_encode(gguf_path, text), f"{target}: {text!r}"


def test_tokenizer_matches_transformers_on_more_and_random_strings(gguf_path: Path) -> None:
    rng = random.Random(20261201)
    texts = MORE + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(150)]
    for text in _agreed(texts):
        result = run_engine("host", gguf_path, ["-m", "encode", "-i", text])
        assert [int(t) for t in result.stdout.split()] == hf_encode(gguf_path, text), text


def test_tokenizer_on_xenon(gguf_path: Path) -> None:
    for text in _agreed(CORPUS)[::3]:
        result = run_engine("xenon", gguf_path, ["-m", "encode", "-i", text])
        assert [int(t) for t in result.stdout.split()] == hf_encode(gguf_path, text), text


def _check(reference: FloatLlama, context: list[int], generated: list[int], stopped: bool,
           label: str) -> None:
    stops = {0, 2}  # <|endoftext|>, <|im_end|> (the GGUF's eos)
    agreement = check_greedy(reference, context, generated, stops, stopped)
    if agreement.near_tie_at is not None:
        print(f"{label}: near-tie at step {agreement.near_tie_at} (gap {agreement.gap:.4f}): "
              f"compared {agreement.compared} tokens, then stopped comparing")


@pytest.mark.parametrize("prompt,steps", RAW, ids=[p for p, _ in RAW])
def test_raw_greedy_matches_reference(prompt: str, steps: int, gguf_path: Path, reference: FloatLlama) -> None:
    result = run_engine("host", gguf_path, ["-t", "0", "-n", str(steps), "-i", prompt, "-x", "1"])
    ids = printed_ids(result)
    context = hf_encode(gguf_path, prompt)
    assert ids[:len(context)] == context
    assert result.stdout.startswith(prompt.encode()) and result.stdout.endswith(b"\n")
    assert len(ids) <= steps
    _check(reference, context, ids[len(context):], len(ids) < steps, prompt)


@pytest.mark.parametrize("user,system,steps", CHAT, ids=[u for u, _, _ in CHAT])
def test_chat_greedy_matches_reference(user: str, system: str | None, steps: int, gguf_path: Path,
                                       reference: FloatLlama) -> None:
    args = ["-m", "chat", "-t", "0", "-n", str(steps), "-i", user, "-x", "1"] + (["-y", system] if system else [])
    result = run_engine("host", gguf_path, args)
    ids = printed_ids(result)
    context = hf_encode(gguf_path, chat_text(gguf_path, user, system))
    assert b"<|im" not in result.stdout and result.stdout.endswith(b"\n") and result.stdout.count(b"\n") >= 1
    assert ids, "no reply"
    _check(reference, context, ids, len(ids) < steps, user)  # -n bounds the reply in chat


def test_chat_answers_the_question(gguf_path: Path) -> None:
    result = run_engine("host", gguf_path, ["-m", "chat", "-t", "0", "-n", "80", "-i", "What is the capital of France?"])
    assert b"Paris" in result.stdout


@pytest.mark.parametrize("target", ["g4", "xenon"])
def test_targets_print_the_host_tokens(target: str, gguf_path: Path) -> None:
    """Short runs under QEMU (slow: seconds per token): the same ids as the host, raw and chat."""
    raw = ["-t", "0", "-n", "10", "-i", "Once upon a time", "-x", "1"]
    chat = ["-m", "chat", "-t", "0", "-n", "34", "-y", "Be brief.", "-i", "What is the capital of France?", "-x", "1"]
    for args in (raw, chat) if target == "xenon" else (raw,):
        ours, host = run_engine(target, gguf_path, args), run_engine("host", gguf_path, args)
        assert printed_ids(ours) == printed_ids(host) and ours.stdout == host.stdout, args


def test_bench_counts_every_weight_once_per_token_on_g4(gguf_path: Path) -> None:
    """bench on the real model: the forced positions run (BPE prompts too), the AltiVec kernels
    cut the instructions, each token streams the weights once, and the peak fits the Xbox 360."""
    result = cli("bench", "--target", "g4", "--shape", str(gguf_path), "--json", timeout=1800)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    rows = {row["kernel"]: row for row in json.loads(result.stdout)}
    weights = _converted("g4", gguf_path).stat().st_size  # the blocks as stored, and 1.5 MB of tokenizer
    scalar, simd = rows["scalar"], rows["altivec"]
    assert float(simd["instructions_per_token"]) < 0.2 * float(scalar["instructions_per_token"])
    assert 0.9 * weights < float(simd["bytes_per_token"]) < 1.1 * weights
    assert 150 * 2**20 < int(simd["peak_memory_bytes"]) < 300 * 2**20


def test_reference_tokenizer_matches_transformers(gguf_path: Path) -> None:
    """The toolkit's BPE reference (what --verify encodes prompts with) on the same texts."""
    model = read_gguf(gguf_path, gguf_path.read_bytes())
    assert model.bpe is not None
    rng = random.Random(20261202)
    texts = CORPUS + MORE + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(300)]
    for text in _agreed(texts):
        assert tokenizer_bpe.encode(model.tokenizer, model.bpe, text) == hf_encode(gguf_path, text), text


VERIFY_RUNS = {"greedy": ["-t", "0"], "sampled": ["-t", "0.8", "-s", "42"]}


def _verified(target: str, gguf: Path, settings: list[str], prompt: str = "Once upon a time") -> bytes:
    result = cli("run-qemu", "--target", target, "-c", str(gguf), "-n", "24", *settings, "-i", prompt, "--verify",
                 timeout=1800)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err[-2000:]
    assert "verified: 24 tokens identical to the NumPy reference" in err, err[-2000:]
    assert result.stdout.startswith(prompt.encode()) and result.stdout.endswith(b"\n")
    return result.stdout


@pytest.mark.parametrize("name", VERIFY_RUNS)
def test_verify_on_the_host(name: str, gguf_path: Path) -> None:
    _verified("host", gguf_path, VERIFY_RUNS[name])


def test_verify_on_g4(gguf_path: Path) -> None:
    """Under QEMU (about 2 minutes of emulated G4 for 24 positions): the AltiVec block kernels and
    the G4's libm against the reference, greedy. The sampled run (`-t 0.8 -s 42`) is in the
    README's long tier."""
    _verified("g4", gguf_path, VERIFY_RUNS["greedy"])
