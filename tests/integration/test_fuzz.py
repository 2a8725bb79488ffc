"""Fuzzing the generated C's loaders under AddressSanitizer + UndefinedBehaviorSanitizer
(libFuzzer), replaying every crash ever found, and failing each allocation of a full run in turn
(toolkit/fuzz/). The long run is `python -m toolkit.fuzz --runs 1000000` (README, Reliability)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, RELIABILITY_LINES
from toolkit import format as fmt
from toolkit import fuzz
from toolkit.models import Model, Tokenizer

BOUNDED_RUNS = 10_000
REGRESSIONS = REPO / "tests" / "fuzz" / "regressions"


@pytest.fixture(scope="session")
def fuzz_build(cache: Path) -> fuzz.FuzzBuild:
    return fuzz.build(cache / "fuzz")


@pytest.mark.parametrize("loader", fuzz.LOADERS)
def test_bounded_fuzz_run(loader: str, fuzz_build: fuzz.FuzzBuild, tmp_path: Path) -> None:
    result = fuzz.fuzz(fuzz_build, loader, tmp_path / "corpus", tmp_path / "crashes", BOUNDED_RUNS, 90,
                       max_len=fuzz.BOUNDED_MAX_LEN, seed=1)
    RELIABILITY_LINES.append(f"fuzz {loader}: {result.executions} executions in {result.seconds:.1f} s, "
                             f"{len(result.crashes)} crashes")
    assert not result.crashes, f"{loader}: {[p.name for p in result.crashes]}\n{result.log_tail}"
    assert result.executions >= BOUNDED_RUNS, result.log_tail


@pytest.mark.parametrize("loader", fuzz.LOADERS)
def test_fuzz_regressions_stay_fixed(loader: str, fuzz_build: fuzz.FuzzBuild) -> None:
    inputs = sorted((REGRESSIONS / loader).glob("*"))
    if not inputs:
        return
    result = fuzz.replay(fuzz_build, loader, inputs)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]


def small_vocab_model(fb: fuzz.FuzzBuild) -> Model:
    """The tiny model with a 100-token vocabulary: bytes above 0x60 have no fallback token."""
    base = fuzz.tiny_model()
    tok = base.tokenizer
    cfg = fuzz.TINY.__class__(**{**fuzz.TINY.__dict__, "vocab_size": 100})
    tensors = dict(base.tensors)
    tensors["tok_embeddings"] = base.tensors["tok_embeddings"][:100]
    return Model(cfg, tensors, Tokenizer(tok.pieces[:100], tok.scores[:100], tok.max_token_length))


def test_prompt_byte_without_fallback_token_is_an_error(fuzz_build: fuzz.FuzzBuild, tmp_path: Path) -> None:
    """Found by reading, kept as a regression: llama2.c's byte fallback (id = byte + 3) indexed past
    a small vocabulary (an AddressSanitizer report here); now generate refuses the prompt."""
    base = tmp_path / "small-vocab.bin"
    base.write_bytes(fmt.encode(small_vocab_model(fuzz_build), "little"))
    prompt = tmp_path / "z"
    prompt.write_bytes(b"zebra")
    result = fuzz.replay(fuzz_build, "prompt", [prompt], base=base)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]


@pytest.mark.parametrize("quant", list(fmt.QUANT_DTYPES))
def test_every_allocation_failure_ends_cleanly(quant: str, fuzz_build: fuzz.FuzzBuild, tmp_path: Path) -> None:
    model = tmp_path / f"tiny.{quant}.bin"
    model.write_bytes(fmt.encode(fuzz.tiny_model(), "little", quant))
    total, result = fuzz.alloc_fail(fuzz_build, model)
    RELIABILITY_LINES.append(f"allocation failure injection ({quant}): N = 1 .. {total} "
                             f"(every allocation of open + generate + close), exit {result.returncode}")
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")[-3000:]
    assert total >= 20


def test_every_allocation_failure_ends_cleanly_on_a_bpe_chat_model(fuzz_build: fuzz.FuzzBuild) -> None:
    """The tiny GGUF model (BPE tokenizer, Q8_0 / Q4_1 blocks, float activations, ChatML): open,
    a generation and a chat turn, failing each allocation in turn."""
    total, result = fuzz.alloc_fail(fuzz_build, fuzz_build.bpe_base, "hi 42 caf\u00e9")
    RELIABILITY_LINES.append(f"allocation failure injection (tiny GGUF, BPE + chat): N = 1 .. {total} "
                             f"(open + generate + chat turn + close), exit {result.returncode}")
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")[-3000:]
    assert total >= 20


def test_every_allocation_failure_ends_cleanly_on_kept_gguf_blocks(fuzz_build: fuzz.FuzzBuild,
                                                                   tmp_path: Path) -> None:
    """The tiny GGUF model with kept block types differing by layer (fuzz.KEPT_MIX: stacks stored
    per layer, each layer's matrix its own allocation)."""
    model = tmp_path / "tiny_kept.bin"
    model.write_bytes(fmt.encode(fuzz.tiny_bpe_model(kept=True), "little"))
    total, result = fuzz.alloc_fail(fuzz_build, model, "hi 42")
    RELIABILITY_LINES.append(f"allocation failure injection (tiny GGUF, kept K / IQ / Q5 blocks): N = 1 .. {total} "
                             f"(open + generate + chat turn + close), exit {result.returncode}")
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")[-3000:]
    assert total >= 20
