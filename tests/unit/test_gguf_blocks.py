"""GGUF blocks kept bit for bit (toolkit/quant.py's BLOCK_FORMATS): dequantization equals gguf's,
the converted file's row-group layout round-trips in both byte orders within its overhead bound,
GGUF files mixing types per layer convert (per-layer stacks), BF16 widens exactly, and types
still not read are refused by name. (The C kernels against these: tests/integration/test_gguf_quants.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit import format as fmt, quant
from toolkit.errors import InputError
from toolkit.fuzz import tinygguf
from toolkit.models.gguf import read_gguf
from toolkit.reference.blocks import BlockMatrix

KINDS = list(quant.BLOCK_FORMATS)


def _tensor(kind: str, rows: int, cols: int, seed: int = 0) -> quant.BlockTensor:
    f = quant.BLOCK_FORMATS[kind]
    rng = np.random.default_rng(seed)
    return quant.BlockTensor(kind, (rows, cols), tinygguf.random_blocks(f, rows, cols // f.block, rng))


@pytest.mark.parametrize("kind", KINDS)
def test_dequantization_equals_gguf_bit_for_bit(kind: str) -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    t = _tensor(kind, 9, 768 if quant.BLOCK_FORMATS[kind].block == 256 else 96, seed=1)
    theirs = dequantize(t.blocks.reshape(9, -1), GGMLQuantizationType[kind.upper()]).astype(np.float32)
    ours = quant.dequantize_blocks(t)
    assert ours.shape == theirs.shape and np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("kind", KINDS)
def test_row_group_layout_round_trips_and_aligns_every_field(kind: str, bo: str) -> None:
    f = quant.BLOCK_FORMATS[kind]
    rows, cols = 7, 2 * f.block  # a last row group of 3 rows
    t = _tensor(kind, rows, cols, seed=2)
    raw = quant.encode_blocks(t, bo)
    assert len(raw) == quant.block_layout_nbytes(f, rows, cols)
    back = quant.decode_blocks_layout(kind, raw, t.shape, bo)
    assert np.array_equal(back.blocks, t.blocks)
    # the first row group: each field's array in turn, each starting 16-byte aligned
    pos = 0
    for name, start, size, item in f.fields:
        assert pos % 16 == 0, name
        field = t.blocks[:4, :, start:start + size]
        stored = np.frombuffer(raw, np.uint8, count=field.size, offset=pos).reshape(field.shape)
        expect = field[..., ::-1] if item == 2 and bo == ">" else field  # 2-byte fields in the file's order
        assert np.array_equal(stored, expect), name
        pos += -(-field.size // 16) * 16


@pytest.mark.parametrize("kind", KINDS)
def test_layout_overhead_is_within_three_percent_on_real_shapes(kind: str) -> None:
    f = quant.BLOCK_FORMATS[kind]
    # SmolLM2-135M's matrices (576 wide: 32-value types only) and 512 / 1536-wide ones
    shapes = [(576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576)] if f.block == 32 else []
    shapes += [(512, 512), (256, 512), (1536, 512), (512, 1536), (49152, 512), (576, 1536)]
    own = sum(r * (c // f.block) * f.block_bytes for r, c in shapes)
    stored = sum(quant.block_layout_nbytes(f, r, c) for r, c in shapes)
    assert stored <= own * 1.03, (kind, stored / own - 1)


def _mixed_gguf(tmp_path: Path) -> Path:
    from gguf import GGMLQuantizationType as T

    return tinygguf.write(tmp_path / "mixed.gguf", tensor_types={
        "token_embd.weight": T.Q5_0, "blk.0.attn_q.weight": T.IQ4_NL, "blk.1.attn_q.weight": T.Q8_0,
        "blk.0.ffn_down.weight": T.Q4_K, "blk.1.ffn_down.weight": T.Q6_K, "blk.0.ffn_up.weight": T.BF16})


def test_a_gguf_mixing_types_per_layer_converts_and_round_trips(tmp_path: Path) -> None:
    path = _mixed_gguf(tmp_path)
    model = read_gguf(path, path.read_bytes())
    assert isinstance(model.tensors["tok_embeddings"], quant.BlockTensor)
    w2, wq = model.tensors["w2"], model.tensors["wq"]
    assert isinstance(w2, quant.LayerStack) and w2.kinds == ("q4_K", "q6_K")
    assert isinstance(wq, quant.LayerStack) and wq.kinds == ("iq4_nl", "q8_0")
    assert isinstance(model.tensors["w3"], quant.LayerStack) and model.tensors["w3"].kinds == ("f32", "q8_0")
    assert model.matrix_kinds == "f32+iq4_nl+q4_1+q4_K+q5_0+q6_K+q8_0"
    for endian in ("big", "little"):
        data = fmt.encode(model, endian)
        entries = fmt.read_header(data, len(data), "x").entries
        assert "w2" not in entries and entries["w2.0"].dtype == fmt.KEPT_DTYPES["q4_K"]
        assert entries["wq.1"].dtype == fmt.DTYPE_Q8_0 and "wq.1.scales" in entries
        back = fmt.decode(data, "x")
        for name, tensor in model.tensors.items():
            again = back.tensors[name]
            if isinstance(tensor, quant.LayerStack):
                assert isinstance(again, quant.LayerStack) and again.kinds == tensor.kinds
                for ours, theirs in zip(tensor.layers, again.layers):
                    if isinstance(ours, quant.BlockTensor):
                        assert isinstance(theirs, quant.BlockTensor) and np.array_equal(ours.blocks, theirs.blocks)


def test_bf16_widens_exactly(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType as T, GGUFReader
    from gguf.quants import dequantize

    path = _mixed_gguf(tmp_path)
    model = read_gguf(path, path.read_bytes())
    raw = next(t for t in GGUFReader(path, "r").tensors if t.name == "blk.0.ffn_up.weight")
    w3 = model.tensors["w3"]
    assert isinstance(w3, quant.LayerStack)
    layer = w3.layers[0]
    assert isinstance(layer, np.ndarray)
    expect = dequantize(np.asarray(raw.data), T.BF16).astype(np.float32).reshape(layer.shape)
    assert np.array_equal(layer.view(np.uint32), expect.view(np.uint32))  # the top 16 bits, the rest zero
    assert not np.any(layer.view(np.uint32) & 0xFFFF)


def test_other_types_are_refused_naming_what_is_read(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType as T

    path = tinygguf.write(tmp_path / "iq2.gguf", tensor_types={"blk.0.ffn_down.weight": T.IQ2_XXS})
    with pytest.raises(InputError) as err:
        read_gguf(path, path.read_bytes())
    message = str(err.value)
    assert "IQ2_XXS" in message and all(k in message for k in ("Q4_K", "Q6_K", "IQ4_XS", "BF16", "Q5_1"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_reference_product_is_close_to_the_dequantized_one(kind: str) -> None:
    t = _tensor(kind, 11, 512 if quant.BLOCK_FORMATS[kind].block == 256 else 576, seed=3)
    x = np.random.default_rng(4).standard_normal(t.shape[1]).astype(np.float32)
    exact = quant.dequantize_blocks(t).astype(np.float64) @ x.astype(np.float64)
    ours = BlockMatrix(t)(x)
    scale = np.abs(quant.dequantize_blocks(t)).astype(np.float64) @ np.abs(x).astype(np.float64)
    assert np.all(np.abs(ours - exact) <= 1e-4 * scale + 1e-6)
