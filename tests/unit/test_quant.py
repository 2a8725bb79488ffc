"""Block quantization: error bounds, file codes round trip, and the lane-wise matvec definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit import format as fmt, quant
from toolkit.models.llama2c import read_checkpoint, read_tokenizer


def random_matrix(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


@pytest.mark.parametrize("kind,bound", [("q8_0", 1 / 127), ("q4_0", 2 / 8)])  # q4: +max clamps to 7
@pytest.mark.parametrize("cols", [32, 64, 172, 5])
def test_error_is_within_half_a_step(kind: str, bound: float, cols: int) -> None:
    w = random_matrix(17, cols)
    q = quant.quantize(w, kind)
    assert q.values.shape == (17, quant.padded_groups(cols) * 32) and q.scales.shape[-1] % 4 == 0
    back = quant.dequantize(q)
    assert back.shape == w.shape
    groups = -(-cols // 32)
    padded = np.zeros((17, groups * 32), np.float32)
    padded[:, :cols] = w
    amax = np.abs(padded.reshape(17, groups, 32)).max(axis=2).repeat(32, axis=1)[:, :cols]
    # half a step, plus the fp16 rounding of the scale (relative 2^-11) times the largest code
    assert np.all(np.abs(back - w) <= amax * (bound * 0.5 + 2.0**-10) + 1e-7)


def test_q4_uses_gguf_nibble_order_and_offsets() -> None:
    w = np.linspace(-1, 1, 32, dtype=np.float32)[None, :]
    q = quant.quantize(w, "q4_0")
    raw = quant.encode_codes(q)
    assert len(raw) == 4 * 16  # one row, 4 padded groups of 16 bytes
    assert raw[0] & 0x0F == q.values[0, 0] + 8 and raw[0] >> 4 == q.values[0, 16] + 8
    assert raw[16:] == bytes([0x88]) * 48  # padded groups hold the code for value 0
    assert quant.decode_codes("q4_0", raw, q.shape, q.scales).values.tobytes() == q.values.tobytes()


def test_q8_codes_are_offset_binary() -> None:
    q = quant.quantize(random_matrix(3, 40), "q8_0")
    raw = np.frombuffer(quant.encode_codes(q), np.uint8)
    assert np.array_equal(raw.astype(np.int16) - 128, q.values.reshape(-1))


def test_activation_quantization_matches_c_rounding() -> None:
    x = np.array([0.5, -0.5, 1.0, -1.27, 0.0049], dtype=np.float32)
    codes, scales = quant.quantize_activation(x, 4)
    d = np.float32(1.27) / np.float32(127)
    assert scales[0] == d and np.all(scales[1:] == 0)
    assert list(codes[:5]) == [50, -50, 100, -127, 0]  # half away from zero, as roundf


@pytest.mark.parametrize("kind", quant.KINDS)
def test_matvec_is_close_to_the_float_product(kind: str) -> None:
    w = random_matrix(48, 96, seed=3)
    x = np.random.default_rng(4).standard_normal(96).astype(np.float32)
    q = quant.quantize(w, kind)
    exact = quant.dequantize(q).astype(np.float64) @ x.astype(np.float64)
    got = quant.matvec(q, x)
    assert got.dtype == np.float32
    scale = np.abs(exact).max()
    assert np.abs(got - exact).max() < 0.02 * scale  # only the activation's int8 rounding


def test_converted_file_sizes_shrink(bundled_model_paths: tuple[Path, Path]) -> None:
    model = read_checkpoint(bundled_model_paths[0], read_tokenizer(bundled_model_paths[1]))
    sizes = {kind: len(fmt.encode(model, "big", kind)) for kind in ("f32", "q8_0", "q4_0")}
    assert sizes["q4_0"] < sizes["q8_0"] < sizes["f32"]
    back = fmt.decode(fmt.encode(model, "big", "q8_0"), "m")
    assert back.quant == "q8_0" and isinstance(back.tensors["wq"], quant.QuantTensor)
    assert isinstance(back.tensors["rms_att"], np.ndarray)  # norms stay f32
