"""`run-qemu --verify` on the tiny GGUF model in every block type the engine runs (Q8_0, Q4_0, Q4_1
and F32 matrices, and mixed as SmolLM2 mixes them), on the host and under QEMU on the G4 (AltiVec
block kernels): the engine's text must be the toolkit's float32 reference's, greedy and sampled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from toolkit.fuzz import tinygguf

from .conftest import cli

MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def _types(kind: str) -> dict[str, Any]:
    """Every matrix (the embedding table too) in ``kind``."""
    from gguf import GGMLQuantizationType as T

    names = ["token_embd.weight"] + [f"blk.{i}.{m}.weight" for i in range(tinygguf.LAYERS) for m in MATRICES]
    return {name: T[kind] for name in names}


# (F16 matrices become f32 when read, exactly: the f32 variant covers them; tinygguf writes F16 as
# random bytes, for the catalogue's damaged models)
VARIANTS: dict[str, str | dict[str, str] | None] = {
    "mixed": None, "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_1": "Q4_1", "f32": "F32",
    # the kept GGUF blocks (toolkit/quant.py), types differing by layer (stored per layer): the
    # 32-value types everywhere, the 256-value K types where rows are 256 wide (ffn_down)
    "q5_0+q2_K+q3_K": {"": "Q5_0", "blk.1.attn_q": "Q8_0", "blk.0.ffn_down": "Q2_K", "blk.1.ffn_down": "Q3_K"},
    "q5_1+q4_K+q5_K": {"": "Q5_1", "blk.0.attn_k": "IQ4_NL", "blk.0.ffn_down": "Q4_K", "blk.1.ffn_down": "Q5_K"},
    "iq4_nl+q6_K+iq4_xs": {"": "IQ4_NL", "token_embd": "Q5_0", "blk.0.ffn_down": "Q6_K",
                           "blk.1.ffn_down": "IQ4_XS"},
}
RUNS = [["-t", "0", "-n", "40", "-i", "Once upon a time"], ["-t", "0.9", "-p", "0.8", "-s", "42", "-n", "40", "-i", "the"],
        ["-t", "1", "-p", "0", "-s", "7", "-n", "30"]]


def _model(tmp: Path, variant: str) -> Path:
    kind = VARIANTS[variant]
    if isinstance(kind, dict):
        from gguf import GGMLQuantizationType as T

        types = {name: T[kind.get(name[:-len(".weight")], kind[""])] for name in _types("F32")}
        return tinygguf.write(tmp / f"tiny-{variant}.gguf", tensor_types=types)
    return tinygguf.write(tmp / f"tiny-{variant}.gguf", tensor_types=_types(kind) if kind else None)


def _verify(target: str, model: Path, args: list[str]) -> None:
    result = cli("run-qemu", "--target", target, "-c", str(model), *args, "--verify")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err[-2000:]
    assert "verified:" in err and "tokens identical to the NumPy reference" in err, err[-2000:]  # no near-tie here


@pytest.mark.parametrize("variant", VARIANTS)
def test_verify_every_block_type_on_the_host(variant: str, tmp_path: Path) -> None:
    model = _model(tmp_path, variant)
    for args in RUNS:
        _verify("host", model, args)


@pytest.mark.parametrize("variant", ["mixed", "q5_1+q4_K+q5_K", "iq4_nl+q6_K+iq4_xs"])
def test_verify_on_g4(tmp_path: Path, variant: str) -> None:
    model = _model(tmp_path, variant)
    for args in RUNS:
        _verify("g4", model, args)
