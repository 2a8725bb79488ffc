"""The converted file: round trips, layout facts the C loader relies on, and rejected damage."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from toolkit import format as fmt
from toolkit.errors import InputError, UsageError
from toolkit.fuzz import tiny_bpe_model
from toolkit.models import Activations, Model
from toolkit.models.llama2c import read_checkpoint, read_tokenizer


@pytest.fixture(scope="module")
def model(bundled_model_paths: tuple[Path, Path]) -> Model:
    checkpoint, tokenizer = bundled_model_paths
    return read_checkpoint(checkpoint, read_tokenizer(tokenizer))


@pytest.fixture(scope="module")
def blocks_model() -> Model:
    """A model whose blocks multiply float32 activations (the tiny GGUF one: Q8_0 / Q4_1, BPE, ChatML)."""
    return tiny_bpe_model()


@pytest.mark.parametrize("endian", ["big", "little"])
def test_round_trip(model: Model, endian: str) -> None:
    data = fmt.encode(model, endian)
    back = fmt.decode(data, "x")
    assert back.config == model.config
    assert back.tokenizer == model.tokenizer
    for name, tensor in model.tensors.items():
        assert back.tensors[name].tobytes() == tensor.tobytes(), name


def test_byte_order_mark_and_floats_are_in_file_order(model: Model) -> None:
    big, little = fmt.encode(model, "big"), fmt.encode(model, "little")
    assert big[:8] == little[:8] == b"PPCLLM\0\0"
    assert big[8:12] == bytes.fromhex("0a0b0c0d") and little[8:12] == bytes.fromhex("0d0c0b0a")
    assert fmt.file_endian(big, "b") == "big" and fmt.file_endian(little, "l") == "little"
    (offset,) = struct.unpack_from(">Q", big, fmt.HEADER_SIZE + 56)  # first tensor: tok_embeddings
    first = model.tensors["tok_embeddings"].reshape(-1)[0]
    assert big[offset:offset + 4] == struct.pack(">f", first)
    assert little[offset:offset + 4] == struct.pack("<f", first)


def test_tensors_are_aligned_for_vec_ld(model: Model) -> None:
    data = fmt.encode(model, "big")
    (count,) = struct.unpack_from(">I", data, 32)
    for i in range(count):
        (offset,) = struct.unpack_from(">Q", data, fmt.HEADER_SIZE + i * fmt.ENTRY_SIZE + 56)
        assert offset % fmt.ALIGNMENT == 0 and fmt.ALIGNMENT % 16 == 0


def test_encoding_is_deterministic(model: Model) -> None:
    assert fmt.encode(model, "big") == fmt.encode(model, "big")


def test_wrong_version_is_refused(model: Model) -> None:
    data = bytearray(fmt.encode(model, "big"))
    struct.pack_into(">I", data, 12, fmt.FORMAT_VERSION + 1)
    with pytest.raises(InputError, match="format version"):
        fmt.decode(bytes(data), "x")


def test_truncated_file_is_refused(model: Model) -> None:
    data = fmt.encode(model, "big")
    with pytest.raises(InputError, match="header says"):
        fmt.decode(data[:-1], "x")


def test_bad_magic_and_mark(model: Model) -> None:
    data = bytearray(fmt.encode(model, "big"))
    with pytest.raises(InputError, match="not a ppc-llm converted file"):
        fmt.decode(b"XX" + bytes(data[2:]), "x")
    data[8:12] = b"\1\2\3\4"
    with pytest.raises(InputError, match="byte-order mark"):
        fmt.decode(bytes(data), "x")


def test_tensor_outside_file(model: Model) -> None:
    data = bytearray(fmt.encode(model, "big"))
    struct.pack_into(">Q", data, fmt.HEADER_SIZE + 56, len(data))
    with pytest.raises(InputError, match="outside the file"):
        fmt.decode(bytes(data), "x")


def test_read_any_needs_tokenizer_for_llama2c(bundled_model_paths: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="needs its tokenizer"):
        fmt.read_any(bundled_model_paths[0], None)


def test_read_any_reads_converted_without_tokenizer(model: Model, tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(fmt.encode(model, "little"))
    back = fmt.read_any(path, None)
    assert np.array_equal(back.tensors["wq"], model.tensors["wq"])


def test_activations_are_a_fact_of_the_model(model: Model, blocks_model: Model) -> None:
    assert model.activations is Activations.INT8 and not model.keeps_blocks
    assert blocks_model.activations is Activations.FLOAT32 and blocks_model.keeps_blocks


@pytest.mark.parametrize("endian", ["big", "little"])
def test_activations_round_trip_as_the_stored_flag(model: Model, blocks_model: Model, endian: str) -> None:
    bo = fmt.ENDIANS[endian]
    for source, flag in ((model, 0), (blocks_model, fmt.FLAG_FLOAT_ACTIVATIONS)):
        for quant in ((None, "q8_0") if flag == 0 else (None,)):
            data = fmt.encode(source, endian, quant)
            (flags,) = struct.unpack_from(bo + "I", data, 84)
            assert flags & fmt.FLAG_FLOAT_ACTIVATIONS == flag
            header = fmt.read_header(data, len(data), "x")
            assert header.activations is source.activations
            assert fmt.decode(data, "x").activations is source.activations


@pytest.mark.parametrize("endian", ["big", "little"])
def test_blocks_model_round_trips_byte_for_byte(blocks_model: Model, endian: str) -> None:
    data = fmt.encode(blocks_model, endian)
    back = fmt.decode(data, "x")
    assert back.bpe == blocks_model.bpe and back.chat is not None and back.chat == blocks_model.chat
    assert back.quant == blocks_model.quant and fmt.encode(back, endian) == data


def test_quant_does_not_apply_to_kept_blocks(blocks_model: Model) -> None:
    with pytest.raises(UsageError, match=rf"--quant q4_0: a GGUF model keeps its own quantization "
                                         rf"\({blocks_model.quant}\)"):
        fmt.encode(blocks_model, "big", "q4_0")


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_blob_codecs_invert(blocks_model: Model, byteorder: str) -> None:
    assert blocks_model.bpe is not None
    blob = fmt.bpe_blob(blocks_model.bpe, byteorder)
    assert fmt.parse_bpe_blob(blob, byteorder, blocks_model.config.vocab_size, "x") == blocks_model.bpe
    chat = blocks_model.chat
    assert chat is not None
    vocab = blocks_model.config.vocab_size
    for system in (None, "", "caf\u00e9 \U0001f600"):
        variant = dataclasses.replace(chat, default_system=system, folded=system == "", stops=(vocab - 1, 0))
        assert fmt.parse_chat_blob(fmt.chat_blob(variant, byteorder), byteorder, vocab, "x") == variant


@pytest.mark.parametrize("label,edit,message", [
    ("truncated", lambda b: b[:10], "truncated"),
    ("flags", lambda b: b"\0\0\0\x08" + b[4:], "flags"),
    ("stop-outside", lambda b: b[:12] + b"\xff\xff\xff\xff" + b[16:], "outside the vocabulary"),
    ("longer", lambda b: b + b"x", "wrong size"),
    ("nul", lambda b: b[:-1] + b"\0", "NUL"),
    ("not-utf8", lambda b: b[:-1] + b"\xff", "not UTF-8"),
])
def test_chat_blob_is_checked(blocks_model: Model, label: str, edit: Callable[[bytes], bytes], message: str) -> None:
    assert blocks_model.chat is not None
    blob = fmt.chat_blob(blocks_model.chat, ">")
    with pytest.raises(InputError, match=f"chat template data is malformed: .*{message}"):
        fmt.parse_chat_blob(edit(blob), ">", blocks_model.config.vocab_size, "x")


def test_every_public_name_is_on_the_package() -> None:
    for name in fmt.__all__:
        assert getattr(fmt, name) is not None, name
