"""Random-weight GGUF models of real shapes with a real vocabulary, for comparing the engine with
llama.cpp (tests/integration/test_llamacpp.py): written as F32 with the ``gguf`` package's
GGUFWriter, then quantized into each mix by llama.cpp's own quantizer (toolkit/llamacpp).

The vocabulary, merges, special tokens and chat template are SmolLM2's (read from its GGUF); the
weights are random, scaled so that greedy choices are far from ties: an untied classifier with a
large spread makes logits differ by whole units (llama.cpp's 8-bit activations cannot flip them),
and the layers' gains make the next token depend on the context, not only on the last token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KEEP", "Shape", "SMOLLM2_WIDE", "TINY", "WIDE_256", "WIDE_HEADS", "Chat", "spm_vocabulary", "write_llama"]

_COPIED = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
           "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
           "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template")


KEEP = "(the vocabulary's own)"  # write_llama's pre: keep tokenizer.ggml.pre as the source has it


@dataclass(frozen=True)
class Shape:
    name: str
    dim: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    context: int = 512
    head_dim: int = 0  # 0: dim // heads

    @property
    def head(self) -> int:
        return self.head_dim or self.dim // self.heads


# SmolLM2-135M's widths (576: rows that are no multiple of 256, so llama.cpp's K mixes fall back to
# Q5_0 / Q8_0 there) in 2 layers
SMOLLM2_WIDE = Shape("smollm2-576x2", 576, 1536, 2, 9, 3)
# the smallest llama shape: for chat templates, where only the prompt's tokens matter
TINY = Shape("tiny-64x1", 64, 128, 1, 4, 2)
# rows of whole 256-blocks (llama.cpp's K types really used), Qwen2.5's head size of 64
WIDE_256 = Shape("wide-256x2", 256, 768, 2, 4, 2)
# Qwen3's heads wider than dim / heads (its 0.6B: 1024 wide, 16 heads of 128)
WIDE_HEADS = Shape("wide-heads-256x2", 256, 768, 2, 4, 2, head_dim=128)


@dataclass(frozen=True)
class Chat:
    """A chat template for the vocabulary: the template's text, the control tokens it needs added
    (after SmolLM2's), the bos token's text (None: SmolLM2's) and whether the tokenizer adds it."""

    template: str
    added: tuple[str, ...] = ()
    bos: str | None = None
    add_bos: bool = False


def _with_chat(meta: list[tuple[str, Any, Any]], chat: Chat) -> list[tuple[str, Any, Any]]:
    """The vocabulary's metadata with chat's tokens added (CONTROL), its bos and template."""
    from gguf import GGUFValueType as V

    values = {key: value for key, _, value in meta}
    tokens = list(values["tokenizer.ggml.tokens"]) + [t for t in chat.added if t not in values["tokenizer.ggml.tokens"]]
    types = list(values["tokenizer.ggml.token_type"]) + [3] * (len(tokens) - len(values["tokenizer.ggml.tokens"]))
    changed = {"tokenizer.ggml.tokens": (V.ARRAY, tokens), "tokenizer.ggml.token_type": (V.ARRAY, types),
               "tokenizer.chat_template": (V.STRING, chat.template), "tokenizer.ggml.add_bos_token": (V.BOOL, chat.add_bos)}
    if "tokenizer.ggml.scores" in values:  # a SentencePiece vocabulary: the added tokens score 0
        scores = list(values["tokenizer.ggml.scores"])
        changed["tokenizer.ggml.scores"] = (V.ARRAY, scores + [0.0] * (len(tokens) - len(scores)))
    if chat.bos is not None:
        changed["tokenizer.ggml.bos_token_id"] = (V.UINT32, tokens.index(chat.bos))
    kept = [(key, vtype, value) for key, vtype, value in meta if key not in changed]
    return kept + [(key, vtype, value) for key, (vtype, value) in changed.items()]


def _with_tokens(meta: list[tuple[str, Any, Any]], tokens: tuple[str, ...]) -> list[tuple[str, Any, Any]]:
    """The vocabulary's metadata with ``tokens`` (GPT-2 byte-level spelling) added as normal
    tokens: no merge makes them."""
    from gguf import GGUFValueType as V

    values = {key: value for key, _, value in meta}
    changed = {"tokenizer.ggml.tokens": list(values["tokenizer.ggml.tokens"]) + list(tokens),
               "tokenizer.ggml.token_type": list(values["tokenizer.ggml.token_type"]) + [1] * len(tokens)}
    return [(key, vtype, changed.get(key, value)) for key, vtype, value in meta] if tokens else meta


def spm_vocabulary(tokenizer_bin: Path, add_space_prefix: bool | None = None, control: tuple[str, ...] = (),
                   user_defined: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """The GGUF SentencePiece metadata (tokenizer.ggml.model "llama") of a llama2.c tokenizer.bin:
    its pieces with U+2581 for spaces, as GGUF spells them, its scores, <unk> unknown, <s> and </s>
    control (llama2.c's file spells them with newlines around), <0x00>..<0xFF> byte tokens, the rest normal; ``control`` and ``user_defined`` tokens
    appended (score 0); add_space_prefix stated unless None (llama.cpp's default: true)."""
    from gguf import GGUFValueType as V

    from toolkit.models.llama2c import parse_tokenizer

    tok = parse_tokenizer(tokenizer_bin.read_bytes(), str(tokenizer_bin), "<")
    tokens = ["<unk>", "<s>", "</s>"] + [piece.decode("utf-8").replace(" ", "\u2581") for piece in tok.pieces[3:]]
    types = [2, 3, 3] + [6 if t.startswith("<0x") and len(t) == 6 else 1 for t in tokens[3:]]
    tokens += [*control, *user_defined]
    types += [3] * len(control) + [4] * len(user_defined)
    scores = [float(s) for s in tok.scores] + [0.0] * (len(control) + len(user_defined))
    meta = [("tokenizer.ggml.model", V.STRING, "llama"), ("tokenizer.ggml.tokens", V.ARRAY, tokens),
            ("tokenizer.ggml.scores", V.ARRAY, scores), ("tokenizer.ggml.token_type", V.ARRAY, types),
            ("tokenizer.ggml.bos_token_id", V.UINT32, 1), ("tokenizer.ggml.eos_token_id", V.UINT32, 2),
            ("tokenizer.ggml.unknown_token_id", V.UINT32, 0)]
    return meta + ([("tokenizer.ggml.add_space_prefix", V.BOOL, add_space_prefix)]
                   if add_space_prefix is not None else [])


def _vocabulary(source: Path) -> list[tuple[str, Any, Any]]:
    """(key, gguf value type, value) of the tokenizer and chat metadata of ``source`` (a GGUF, or
    a llama2.c tokenizer.bin: ``spm_vocabulary``)."""
    from gguf import GGUFReader

    if source.suffix == ".bin":
        return spm_vocabulary(source)
    reader = GGUFReader(source, "r")
    out = []
    for key in _COPIED:
        field = reader.fields.get(key)
        if field is not None:
            out.append((key, field.types[0], field.contents()))
    return out


def _add(writer: Any, key: str, vtype: Any, value: Any) -> None:
    from gguf import GGUFValueType as V

    if vtype == V.ARRAY:
        writer.add_array(key, value)
    elif vtype == V.STRING:
        writer.add_string(key, value)
    elif vtype == V.BOOL:
        writer.add_bool(key, value)
    else:
        writer.add_uint32(key, int(value))


def _tensors(shape: Shape, vocab: int, seed: int, biases: bool, qk_norm: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    head = shape.head
    kv, q = shape.kv_heads * head, shape.heads * head

    def matrix(rows: int, cols: int, gain: float = 1.0) -> np.ndarray:
        values: np.ndarray = (rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)
        return values

    tensors = {"token_embd.weight": (rng.standard_normal((vocab, shape.dim)) * 1.0).astype(np.float32),
               "output_norm.weight": np.ones(shape.dim, dtype=np.float32),
               "output.weight": (rng.standard_normal((vocab, shape.dim)) * 0.4).astype(np.float32)}
    for layer in range(shape.layers):
        b = f"blk.{layer}."
        tensors.update({
            b + "attn_norm.weight": (1.0 + 0.1 * rng.standard_normal(shape.dim)).astype(np.float32),
            b + "ffn_norm.weight": (1.0 + 0.1 * rng.standard_normal(shape.dim)).astype(np.float32),
            b + "attn_q.weight": matrix(q, shape.dim), b + "attn_k.weight": matrix(kv, shape.dim),
            b + "attn_v.weight": matrix(kv, shape.dim), b + "attn_output.weight": matrix(shape.dim, q),
            b + "ffn_gate.weight": matrix(shape.hidden, shape.dim), b + "ffn_up.weight": matrix(shape.hidden, shape.dim),
            b + "ffn_down.weight": matrix(shape.dim, shape.hidden)})
        if biases:  # qwen2's: as large as the products they are added to
            tensors.update({b + "attn_q.bias": (0.5 * rng.standard_normal(q)).astype(np.float32),
                            b + "attn_k.bias": (0.5 * rng.standard_normal(kv)).astype(np.float32),
                            b + "attn_v.bias": (0.3 * rng.standard_normal(kv)).astype(np.float32)})
        if qk_norm:  # qwen3's per-head norms
            tensors.update({b + "attn_q_norm.weight": (1.0 + 0.2 * rng.standard_normal(head)).astype(np.float32),
                            b + "attn_k_norm.weight": (1.0 + 0.2 * rng.standard_normal(head)).astype(np.float32)})
    return tensors


def llama3_rope_factors(head_size: int, base: float, factor: float = 32.0, low: float = 1.0, high: float = 4.0,
                       original_context: int = 8192) -> np.ndarray:
    """Llama 3.x's RoPE frequency factors (rope_freqs), as llama.cpp's convert_hf_to_gguf.py
    computes them from rope_scaling (3.2's: factor 32): 1 for short wavelengths, ``factor`` for
    long ones, smoothly between."""
    freqs = base ** -(np.arange(0, head_size, 2, dtype=np.float64) / head_size)
    out = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < original_context / high:
            out.append(1.0)
        elif wavelen > original_context / low:
            out.append(factor)
        else:
            smooth = (original_context / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def write_llama(path: Path, shape: Shape, vocabulary_from: Path, seed: int = 0, chat: Chat | None = None,
                pre: str | None = KEEP, added: tuple[str, ...] = (), arch: str = "llama",
                llama3_rope: bool = False, vocabulary: list[tuple[str, Any, Any]] | None = None) -> Path:
    """An F32 GGUF of ``shape`` with the vocabulary of the GGUF ``vocabulary_from`` (and
    ``chat``'s template and tokens, when given; and the normal tokens ``added``), its
    pre-tokenizer named ``pre`` (None: no tokenizer.ggml.pre at all); ``arch`` "llama", or
    "qwen2" (Q/K/V biases, llama.cpp's NEOX rotation, RoPE base 1e6 as Qwen2.5's), or "qwen3"
    (qwen2's rotation and base, no biases, per-head Q/K norms; give it WIDE_HEADS); with
    ``llama3_rope``, Llama 3.2's scaled RoPE (the rope_freqs tensor) for an original context of
    64, not 8192, so that the factors change the angles at a short test's positions;
    ``vocabulary``: the tokenizer metadata itself (``spm_vocabulary``) instead of
    ``vocabulary_from``'s."""
    from gguf import GGUFValueType as V
    from gguf import GGUFWriter

    meta = vocabulary if vocabulary is not None else _vocabulary(vocabulary_from)
    if chat is not None:
        meta = _with_chat(meta, chat)
    meta = _with_tokens(meta, added)
    if pre != KEEP:
        meta = [item for item in meta if item[0] != "tokenizer.ggml.pre"]
        meta += [("tokenizer.ggml.pre", V.STRING, pre)] if pre is not None else []
    vocab = len(next(value for key, _, value in meta if key == "tokenizer.ggml.tokens"))
    writer = GGUFWriter(str(path), arch)
    writer.add_string("general.name", shape.name)
    for key, value in (("context_length", shape.context), ("embedding_length", shape.dim),
                       ("feed_forward_length", shape.hidden), ("block_count", shape.layers),
                       ("attention.head_count", shape.heads), ("attention.head_count_kv", shape.kv_heads),
                       ("rope.dimension_count", shape.head), ("vocab_size", vocab)):
        writer.add_uint32(f"{arch}.{key}", value)
    if shape.head_dim:
        writer.add_uint32(f"{arch}.attention.key_length", shape.head_dim)
        writer.add_uint32(f"{arch}.attention.value_length", shape.head_dim)
    base = 1e6 if arch in ("qwen2", "qwen3") else 10000.0
    writer.add_float32(f"{arch}.rope.freq_base", base)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6 if arch in ("qwen2", "qwen3") else 1e-5)
    writer.add_uint32("general.file_type", 0)
    for key, vtype, value in meta:
        _add(writer, key, vtype, value)
    for name, data in _tensors(shape, vocab, seed, arch == "qwen2", arch == "qwen3").items():
        writer.add_tensor(name, data)
    if llama3_rope:
        writer.add_tensor("rope_freqs.weight", llama3_rope_factors(shape.dim // shape.heads, base,
                                                                   original_context=64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
