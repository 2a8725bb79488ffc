"""GGUF architectures beyond llama, against llama.cpp (tests/llamacpp_compare.py's rules):
random-weight models of real vocabulary (SmolLM2's, under the architecture's pre-tokenizer)
with rows of whole 256-blocks, so llama.cpp's K types are really used.

- qwen2: Q/K/V biases, llama.cpp's NEOX rotation (convert interleaves Q/K rows per head),
  RoPE base 1e6. F32 greedy ids equal llama.cpp's up to the first near-tie on host, g4 and xenon;
  Q4_K_M and Q8_0 (llama.cpp's quantizer) teacher-forced on host, Q4_K_M on g4; `--verify`
  holds the engine to the toolkit's reference (which adds the biases the same way).
- qwen3: heads wider than dim / heads (q is 512 wide for dim 256), per-head Q/K RMS norms
  before RoPE (their weights interleaved as the rows they scale), NEOX: the same checks.
- llama with Llama 3.x's scaled RoPE (the rope_freqs tensor divides each pair's angle) and the
  llama-bpe pre-tokenizer: the same checks.
- llama with the Llama 2 SentencePiece vocabulary (TinyLlama's: tokenizer.ggml.model "llama",
  BOS added, a space prefix): the same checks, the prompt's ids llama.cpp's with BOS.
- An architecture ppc-llm does not run is refused by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gguf_models import WIDE_256, WIDE_HEADS, Shape, write_llama
from tests.helpers import shared_dir, smollm_gguf
from tests.llamacpp_compare import PROMPTS, greedy_agreement, teacher_forced
from toolkit.llamacpp import LlamaRef, host_llamaref

from .conftest import cli


@pytest.fixture(scope="module")
def llamaref(cache: Path) -> LlamaRef:
    return host_llamaref(cache)


# each model's shape and write_llama arguments; the seeds give weights whose greedy margins stay
# above NEAR_TIE for 21 steps or more of PROMPTS[0] (others reach a near-tie within 10)
MODELS: dict[str, tuple[Shape, dict[str, Any]]] = {
    "qwen2": (WIDE_256, {"arch": "qwen2", "pre": "qwen2", "seed": 5}),
    "llama3": (WIDE_256, {"pre": "llama-bpe", "llama3_rope": True, "seed": 5}),
    "qwen3": (WIDE_HEADS, {"arch": "qwen3", "pre": "qwen2", "seed": 1}),
    "tinyllama": (WIDE_256, {"spm": True, "seed": 5}),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name = request.param
    shape, arguments = MODELS[name]
    arguments = dict(arguments)
    # "spm": the Llama 2 SentencePiece vocabulary (TinyLlama's), else SmolLM2's BPE one
    source = shared_dir() / "models" / "tokenizer.bin" if arguments.pop("spm", False) else smollm_gguf()
    return write_llama(tmp_path_factory.mktemp(name) / f"{name}-f32.gguf", shape, source, **arguments)


@pytest.mark.parametrize("name,steps", [("host", 32), ("g4", 16), ("xenon", 16)])
def test_greedy_equals_llama_cpp_on_f32_weights(llamaref: LlamaRef, model: Path, cache: Path, name: str,
                                                steps: int) -> None:
    greedy_agreement(llamaref, cache, name, model, steps)


@pytest.mark.parametrize("mix", ["Q4_K_M", "Q8_0"])
def test_quantized_by_llama_cpp(llamaref: LlamaRef, model: Path, cache: Path, tmp_path: Path, mix: str) -> None:
    quantized = tmp_path / f"{model.stem}-{mix}.gguf"
    llamaref.quantize(model, quantized, mix)
    teacher_forced(llamaref, cache, "host", quantized, PROMPTS[:2])
    if mix == "Q4_K_M":
        teacher_forced(llamaref, cache, "g4", quantized, PROMPTS[:1], steps=16)


def test_verifies_against_the_reference(model: Path) -> None:
    result = cli("run-qemu", "--target", "host", "-c", str(model), "-t", "0", "-n", "24", "-i", PROMPTS[0],
                 "--verify")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err[-2000:]
    assert "verified:" in err, err[-2000:]


def test_an_architecture_not_run_is_refused_by_name(tmp_path: Path) -> None:
    from gguf import GGUFWriter

    path = tmp_path / "mamba.gguf"
    writer = GGUFWriter(str(path), "mamba")
    writer.add_uint32("mamba.block_count", 1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = cli("convert", str(path), "-o", str(tmp_path / "mamba.bin"))
    err = result.stderr.decode(errors="replace")
    assert result.returncode != 0 and "architecture 'mamba' is not supported" in err, err
    assert "Traceback" not in err and not (tmp_path / "mamba.bin").exists()
