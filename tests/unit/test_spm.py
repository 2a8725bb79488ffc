"""GGUF SentencePiece vocabularies: the reference tokenizer's rules on a hand-made vocabulary
(llama.cpp's SPM tokenizer, llama-vocab.cpp), the "spm" blob, and what convert reads from a GGUF's
metadata (llama.cpp's defaults). The engine and the reference are held to llama.cpp itself in
tests/integration/test_llamacpp.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit import format as fmt
from toolkit.errors import InputError
from toolkit.models import Tokenizer
from toolkit.models.bpe import NO_TOKEN
from toolkit.models.gguf import read_gguf
from toolkit.models.spm import BYTE, CONTROL, NORMAL, SPM, UNKNOWN, UNUSED, USER_DEFINED, byte_tokens
from toolkit.reference import tokenizer_spm

SP = "\u2581"


def _vocab(extra: list[tuple[str, float, int]], prefix: bool = True) -> tuple[Tokenizer, SPM]:
    """<unk> <s> </s>, the 256 byte tokens, then ``extra`` (piece, score, type)."""
    entries = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    entries += [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)] + extra
    pieces = [p.encode() for p, _, _ in entries]
    tok = Tokenizer(tuple(pieces), tuple(s for _, s, _ in entries), max(len(p) for p in pieces))
    return tok, SPM(tuple(t for _, _, t in entries), byte_tokens(pieces), 1, 2, True, prefix)


WORDS = [(SP, -1.0, NORMAL), ("a", -2.0, NORMAL), ("b", -2.0, NORMAL), ("c", -2.0, NORMAL), (SP + "a", -3.0, NORMAL),
         ("ab", -0.5, NORMAL), ("bc", -0.5, NORMAL), ("abc", -4.0, NORMAL), ("<t>", 0.0, CONTROL),
         ("<tt>", 0.0, USER_DEFINED), ("tt>xy", 0.0, USER_DEFINED), ("<unused0>", 0.0, UNUSED)]


def _id(tok: Tokenizer, piece: str) -> int:
    return tok.pieces.index(piece.encode())


def test_the_highest_scoring_pair_merges_first_the_leftmost_of_equals() -> None:
    tok, spm = _vocab(WORDS)
    # "▁abc": ab and bc both score -0.5: the leftmost (ab) wins, then ab+c = abc (-4.0) merges
    assert tokenizer_spm.encode(tok, spm, "abc") == [1, _id(tok, SP), _id(tok, "abc")]
    # "▁a" (-3.0) would merge first only without a higher pair: ab (-0.5) is taken first
    assert tokenizer_spm.encode(tok, spm, "ab") == [1, _id(tok, SP), _id(tok, "ab")]
    assert tokenizer_spm.encode(tok, spm, "a") == [1, _id(tok, SP + "a")]


def test_a_character_without_a_token_becomes_its_byte_tokens() -> None:
    tok, spm = _vocab(WORDS, prefix=False)
    assert tokenizer_spm.encode(tok, spm, "\u00e9") == [1, 3 + 0xC3, 3 + 0xA9]
    assert tokenizer_spm.encode(tok, spm, "") == [1]


def test_special_tokens_are_cut_longest_first_and_a_space_prefix_follows_them() -> None:
    tok, spm = _vocab(WORDS)
    t, tt, ttx = _id(tok, "<t>"), _id(tok, "<tt>"), _id(tok, "tt>xy")
    # the longest special piece is cut first, even where a shorter one starts earlier
    assert tokenizer_spm.encode(tok, spm, "<tt>xy") == [1, _id(tok, SP), 3 + ord("<"), ttx]
    assert tokenizer_spm.encode(tok, spm, "<tt>") == [1, tt]
    # after a special token the next fragment gets its space prefix again
    assert tokenizer_spm.encode(tok, spm, "a<t>a") == [1, _id(tok, SP + "a"), t, _id(tok, SP + "a")]
    _, no_prefix = _vocab(WORDS, prefix=False)
    assert tokenizer_spm.encode(tok, no_prefix, "a<t>a") == [1, _id(tok, "a"), t, _id(tok, "a")]


def test_decode_prints_what_llama_cpp_prints() -> None:
    tok, spm = _vocab(WORDS)
    printed = {piece: tokenizer_spm.decode(tok, spm, _id(tok, piece))
               for piece in (SP + "a", "<t>", "<tt>", "<unused0>", "<unk>", "<0x0A>", "<0x00>")}
    assert printed == {SP + "a": b" a", "<t>": b"", "<tt>": b"<tt>", "<unused0>": b"", "<unk>": b"",
                       "<0x0A>": b"\n", "<0x00>": b"\0"}
    assert tokenizer_spm.vocab(tok, spm).stops == {2}


def test_byte_tokens_fall_back_to_the_byte_as_a_piece() -> None:
    pieces = [b"<0x41>", b"B", b"<0x41>"]
    ids = byte_tokens(pieces)
    assert ids[0x41] == 2 and ids[0x42] == 1 and ids[0x43] == NO_TOKEN


@pytest.mark.parametrize("bo", ["<", ">"])
def test_the_spm_blob_round_trips_and_is_checked(bo: str) -> None:
    tok, spm = _vocab(WORDS, prefix=False)
    blob = fmt.spm_blob(spm, bo)
    assert fmt.parse_spm_blob(blob, bo, len(tok.pieces), "x") == spm
    with pytest.raises(InputError, match="wrong size"):
        fmt.parse_spm_blob(blob[:-4], bo, len(tok.pieces), "x")
    bad = bytearray(blob)
    bad[-4:] = (99).to_bytes(4, "little" if bo == "<" else "big")  # a token type past BYTE
    with pytest.raises(InputError, match="inconsistent"):
        fmt.parse_spm_blob(bytes(bad), bo, len(tok.pieces), "x")


def _gguf(path: Path, meta: dict[str, int | bool]) -> Path:
    """A one-layer llama GGUF (dim 64) with a SentencePiece vocabulary and ``meta`` added."""
    from gguf import GGUFWriter

    tok, spm = _vocab(WORDS + [("<end_of_turn>", 0.0, USER_DEFINED)])
    vocab, dim = len(tok.pieces), 64
    writer = GGUFWriter(str(path), "llama")
    for key, value in (("context_length", 32), ("embedding_length", dim), ("feed_forward_length", 128),
                       ("block_count", 1), ("attention.head_count", 4), ("attention.head_count_kv", 4)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_array("tokenizer.ggml.tokens", [p.decode() for p in tok.pieces])
    writer.add_array("tokenizer.ggml.scores", list(tok.scores))
    writer.add_array("tokenizer.ggml.token_type", list(spm.types))
    for name, setting in meta.items():
        if isinstance(setting, bool):
            writer.add_bool(name, setting)
        else:
            writer.add_uint32(name, setting)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (vocab, dim), "output_norm.weight": (dim,), "blk.0.attn_norm.weight": (dim,),
              "blk.0.ffn_norm.weight": (dim,), "blk.0.attn_q.weight": (dim, dim), "blk.0.attn_k.weight": (dim, dim),
              "blk.0.attn_v.weight": (dim, dim), "blk.0.attn_output.weight": (dim, dim),
              "blk.0.ffn_gate.weight": (128, dim), "blk.0.ffn_up.weight": (128, dim),
              "blk.0.ffn_down.weight": (dim, 128)}
    for name, shape in shapes.items():
        writer.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_convert_reads_llama_cpps_defaults_where_the_metadata_is_silent(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "spm.gguf", {})
    model = read_gguf(path, path.read_bytes(), chat=False)
    assert model.spm is not None and model.bpe is None and not model.notes
    spm = model.spm
    assert (spm.bos_id, spm.eos_id, spm.add_bos, spm.add_space_prefix) == (1, 2, True, True)
    # llama.cpp takes <end_of_turn> for end of generation and makes it a control token
    assert spm.types[-1] == CONTROL
    assert tokenizer_spm.vocab(model.tokenizer, spm).stops == {2, len(spm.types) - 1}


def test_convert_takes_the_metadata_and_keeps_defaults_for_ids_outside(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "spm.gguf", {"tokenizer.ggml.add_bos_token": False,
                                         "tokenizer.ggml.add_space_prefix": False,
                                         "tokenizer.ggml.eos_token_id": 260, "tokenizer.ggml.bos_token_id": 99999})
    spm = read_gguf(path, path.read_bytes(), chat=False).spm
    assert spm is not None and (spm.bos_id, spm.eos_id, spm.add_bos, spm.add_space_prefix) == (1, 260, False, False)


def test_a_vocabulary_that_adds_eos_is_refused(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "spm.gguf", {"tokenizer.ggml.add_eos_token": True})
    with pytest.raises(InputError, match="add_eos_token"):
        read_gguf(path, path.read_bytes(), chat=False)


def test_the_converted_file_carries_the_vocabulary(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "spm.gguf", {})
    model = read_gguf(path, path.read_bytes(), chat=False)
    for endian in ("little", "big"):
        back = fmt.decode(fmt.encode(model, endian), "x")
        assert back.spm == model.spm and back.tokenizer.pieces == model.tokenizer.pieces
        assert fmt.read_header(fmt.encode(model, endian), len(fmt.encode(model, endian)), "x").spm
