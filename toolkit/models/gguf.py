"""GGUF llama models (SmolLM2 and kin) -> the in-memory Model.

The ``gguf`` package reads the file, but it trusts every length and count it finds, so
``check_structure`` first walks the header, the metadata and the tensor table with bounds checks
against the file's size. GGUF's quantization blocks are kept as they are (F16, BF16 and F32
matrices become f32, which is exact): Q8_0, Q4_0, Q4_1 codes and fp16 scales (and Q4_1's fp16
mins) move into ``QuantTensor``s; Q5_0, Q5_1, Q2_K .. Q6_K, IQ4_NL and IQ4_XS blocks into
``BlockTensor``s, byte for byte; nothing is re-quantized. A layer stack whose layers differ in
type (llama.cpp's mixes: Q4_K_M gives some layers' ffn_down Q6_K) is a ``LayerStack``. They multiply float32 activations (the
model's ``Activations.FLOAT32``), so ``--quant`` does not apply to them (``Model.keeps_blocks``).

GGUF's llama Q and K matrices are stored permuted (by llama.cpp's converter) so that RoPE turns
adjacent pairs (2i, 2i+1): the pairing llama2.c and the engine use, so they need no change.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..quant import BLOCK_FORMATS, GROUP, BlockTensor, LayerStack, QuantTensor, padded_groups
from . import Activations, Model, ModelConfig, Tensor, Tokenizer
from .bpe import BPE, NO_TOKEN, PRE_LLAMA3, PRE_NAMES, piece_bytes
from .chat import EOG_NAMES, ChatFormat, derive, stop_ids
from .spm import CONTROL as SPM_CONTROL, DEFAULT_BOS, DEFAULT_EOS, NORMAL, SPM, byte_tokens as spm_byte_tokens

MAGIC = b"GGUF"
MAX_COUNT = 1 << 20          # tensors, metadata entries
MAX_ARRAY = 1 << 24          # elements of one metadata array
MAX_STRING = 1 << 24         # bytes of one string
# GGUF metadata value types: fixed sizes (None: string 8, array 9)
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
UNSIGNED_FORMATS = {0: "B", 2: "H", 4: "I", 10: "Q"}  # uint8/16/32/64 value types: struct codes
F32, F16, Q4_0, Q4_1, Q8_0, BF16 = 0, 1, 2, 3, 8, 30
WIDENED = {F32: "F32", F16: "F16", BF16: "BF16"}  # become float32, exactly
# GGUF's type codes of the blocks kept as stored: the int8-era kinds (QuantTensor) and the rest
# (BlockTensor, toolkit/quant.py's BLOCK_FORMATS)
OLD_BLOCKS = {Q4_0: "Q4_0", Q4_1: "Q4_1", Q8_0: "Q8_0"}
NEW_BLOCKS = {6: "Q5_0", 7: "Q5_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
              20: "IQ4_NL", 23: "IQ4_XS"}
KEPT = {**WIDENED, **OLD_BLOCKS, **NEW_BLOCKS}
LAYER_TENSORS = {"attn_norm": "rms_att", "attn_q": "wq", "attn_k": "wk", "attn_v": "wv",
                 "attn_output": "wo", "ffn_norm": "rms_ffn", "ffn_gate": "w1", "ffn_down": "w2",
                 "ffn_up": "w3"}
LAYER_BIASES = {"attn_q": "bq", "attn_k": "bk", "attn_v": "bv"}  # qwen2's (ModelConfig.qkv_bias)
LAYER_QK_NORMS = {"attn_q_norm": "q_norm", "attn_k_norm": "k_norm"}  # qwen3's (ModelConfig.qk_norm)
GLOBAL_TENSORS = {"token_embd": "tok_embeddings", "output_norm": "rms_final", "output": "wcls",
                  "rope_freqs": "rope_freqs"}
# general.architecture values ppc-llm runs; NEOX: llama.cpp rotates their Q/K halves (i, i + d/2)
# where the engine rotates pairs (2i, 2i + 1), so convert interleaves those rows per head
ARCHITECTURES = ("llama", "qwen2", "qwen3")
NEOX = ("qwen2", "qwen3")
CONTROL, USER_DEFINED = 3, 4
# tokenizer.ggml.pre names as llama.cpp reads them (models/bpe.py); without one llama.cpp takes
# "default", and so does convert, saying so
PRE_MISSING_NOTE = ("note: the file names no pre-tokenizer (tokenizer.ggml.pre): using llama.cpp's 'default' "
                    "one, as llama.cpp does (re-export the model with a current convert_hf_to_gguf.py to name it)")
FIX = "get the original file again, or re-export it with llama.cpp's convert_hf_to_gguf.py"


def sniff(data: bytes) -> bool:
    return data[:4] == MAGIC


class _Cursor:
    """Bounds-checked little-endian reads over the file's bytes."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def fail(self, what: str) -> InputError:
        return InputError(f"{self.source}: GGUF {what} (at byte {self.pos})", FIX)

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > len(self.data) - self.pos:
            raise self.fail(f"{what} runs past the end of the file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(struct.unpack("<Q", self.take(8, what))[0])

    def string(self, what: str) -> bytes:
        n = self.u64(f"{what} length")
        if n > MAX_STRING:
            raise self.fail(f"{what} claims {n} bytes")
        return self.take(n, what)


def _skip_value(cur: _Cursor, vtype: int, key: str, depth: int = 0) -> None:
    if vtype in SCALAR_SIZES:
        cur.take(SCALAR_SIZES[vtype], f"value of {key}")
    elif vtype == 8:
        cur.string(f"string value of {key}")
    elif vtype == 9 and depth == 0:
        etype = cur.u32(f"array type of {key}")
        count = cur.u64(f"array length of {key}")
        if count > MAX_ARRAY:
            raise cur.fail(f"array {key} claims {count} elements")
        if etype in SCALAR_SIZES:
            cur.take(count * SCALAR_SIZES[etype], f"array {key}")
        else:
            for _ in range(count):
                _skip_value(cur, etype, key, depth + 1)
    else:
        raise cur.fail(f"metadata {key} has unknown value type {vtype}")


def _tensor_nbytes(cur: _Cursor, name: str, ttype: int, dims: list[int]) -> int:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
    except (ValueError, KeyError):
        raise cur.fail(f"tensor {name} has unknown type {ttype}") from None
    if dims[0] % block:
        raise cur.fail(f"tensor {name}: first dimension {dims[0]} is not a multiple of its block size {block}")
    return int(np.prod(dims, dtype=object)) // block * size


def check_structure(data: bytes, source: str) -> None:
    """Raise InputError unless every count, length and offset in the GGUF file fits the file."""
    cur = _Cursor(data, source)
    if cur.take(4, "magic") != MAGIC:
        raise InputError(f"{source}: not a GGUF file (bad magic)", "pass a .gguf model file")
    version = cur.u32("version")
    if version not in (2, 3):
        hint = "big-endian GGUF files are not read: use the little-endian original" \
            if version in (0x02000000, 0x03000000) else "ppc-llm reads GGUF versions 2 and 3"
        raise InputError(f"{source}: GGUF version {version} is not supported", hint)
    n_tensors, n_kv = cur.u64("tensor count"), cur.u64("metadata count")
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise cur.fail(f"header claims {n_tensors} tensors and {n_kv} metadata entries")
    alignment, parts = 32, 1
    for _ in range(n_kv):
        key = cur.string("metadata key").decode("utf-8", "replace")
        vtype = cur.u32(f"type of {key}")
        start = cur.pos
        _skip_value(cur, vtype, key)
        if key == "general.alignment" and vtype == 4:
            alignment = int(struct.unpack_from("<I", data, start)[0])
        elif key == "split.count" and vtype in UNSIGNED_FORMATS:
            parts = int(struct.unpack_from("<" + UNSIGNED_FORMATS[vtype], data, start)[0])
    if alignment == 0 or alignment & (alignment - 1):
        raise cur.fail(f"alignment {alignment} is not a power of two")
    if parts > 1:
        raise InputError(f"{source}: this file is one part of a model split into {parts} GGUF files "
                         "(split.count); ppc-llm converts a whole model from one file",
                         "merge the parts first with llama.cpp's `llama-gguf-split --merge "
                         "MODEL-00001-of-0000N.gguf MODEL.gguf`, then convert MODEL.gguf")
    spans: list[tuple[str, int, int]] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = cur.string("tensor name").decode("utf-8", "replace")
        n_dims = cur.u32(f"dimension count of {name}")
        if not 1 <= n_dims <= 4:
            raise cur.fail(f"tensor {name} has {n_dims} dimensions")
        dims = [cur.u64(f"dimension of {name}") for _ in range(n_dims)]
        if any(d == 0 or d > 1 << 32 for d in dims) or int(np.prod(dims, dtype=object)) > 1 << 40:
            raise cur.fail(f"tensor {name} has absurd dimensions {dims}")
        ttype, offset = cur.u32(f"type of {name}"), cur.u64(f"offset of {name}")
        if name in names:
            raise cur.fail(f"tensor {name} appears twice")
        names.add(name)
        spans.append((name, offset, _tensor_nbytes(cur, name, ttype, dims)))
    base = -(-cur.pos // alignment) * alignment
    for name, offset, nbytes in spans:
        if offset % alignment or base + offset + nbytes > len(data):
            raise InputError(f"{source}: GGUF tensor {name} lies outside the file or is misaligned",
                             "the file is truncated or damaged: " + FIX)


def read_gguf(path: Path, data: bytes, chat: bool = True, chat_kwargs: dict[str, Any] | None = None) -> Model:
    """The Model of a GGUF llama file whose bytes are ``data``; its chat template rendered with
    ``chat_kwargs`` (left out when not ``chat``)."""
    from gguf import GGUFReader

    source = str(path)
    check_structure(data, source)
    try:
        reader = GGUFReader(path, "r")
    except (ValueError, OSError, struct.error) as exc:
        raise InputError(f"{source}: the gguf reader refuses the file: {exc}", FIX) from None
    meta = _metadata(reader)
    config = _config(meta, source)
    raw = {t.name: t for t in reader.tensors}
    # what the tensors present say: an untied classifier, Q/K/V biases (qwen2's; llama.cpp's llama
    # takes them too), RoPE frequency factors (Llama 3.x's), per-head Q/K norms (qwen3's)
    config = dataclasses.replace(config, shared_classifier="output.weight" not in raw,
                                 qkv_bias="blk.0.attn_q.bias" in raw, rope_freqs="rope_freqs.weight" in raw,
                                 qk_norm="blk.0.attn_q_norm.weight" in raw)
    tensors = _tensors(raw, config, source, meta["general.architecture"] in NEOX)
    tokenizer, vocab = _tokenizer(meta, config.vocab_size, source)
    chat_format = chat_template(meta, tokenizer, vocab, source, chat_kwargs) if chat else None
    notes = [PRE_MISSING_NOTE] if isinstance(vocab, BPE) and not meta.get("tokenizer.ggml.pre") else []
    if chat_format is not None and chat_format.date is not None:
        notes.append(f"note: the chat template asks for today's date: frozen at conversion as {chat_format.date!r}")
    return Model(config, tensors, tokenizer, bpe=vocab if isinstance(vocab, BPE) else None,
                 spm=vocab if isinstance(vocab, SPM) else None, chat=chat_format,
                 activations=Activations.FLOAT32, notes=tuple(notes))


def _metadata(reader: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, field in reader.fields.items():
        try:
            meta[key] = field.contents()
        except (ValueError, IndexError, UnicodeDecodeError):
            meta[key] = None
    return meta


def _need(meta: dict[str, Any], key: str, source: str) -> Any:
    value = meta.get(key)
    if value is None:
        raise InputError(f"{source}: GGUF metadata {key} is missing", FIX)
    return value


def _config(meta: dict[str, Any], source: str) -> ModelConfig:
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise InputError(f"{source}: architecture {arch!r} is not supported (ppc-llm runs "
                         f"{', '.join(ARCHITECTURES)} models, e.g. SmolLM2, TinyLlama, Qwen2.5)")
    if meta.get(f"{arch}.rope.scaling.type") not in (None, "none"):
        raise InputError(f"{source}: RoPE scaling {meta[f'{arch}.rope.scaling.type']!r} is not supported")
    dim = int(_need(meta, f"{arch}.embedding_length", source))
    heads = int(_need(meta, f"{arch}.attention.head_count", source))
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv") or heads)
    tokens = _need(meta, "tokenizer.ggml.tokens", source)
    vocab = int(meta.get(f"{arch}.vocab_size") or len(tokens))
    config = ModelConfig(dim, int(_need(meta, f"{arch}.feed_forward_length", source)),
                         int(_need(meta, f"{arch}.block_count", source)), heads, kv_heads, vocab,
                         int(_need(meta, f"{arch}.context_length", source)), shared_classifier=True,
                         rope_theta=float(np.float32(meta.get(f"{arch}.rope.freq_base") or 10000.0)),
                         norm_eps=float(np.float32(meta.get(f"{arch}.attention.layer_norm_rms_epsilon") or 1e-5)),
                         head_dim=_head_dim(meta, arch, dim, heads, source))
    config.validate(source)
    rope_dims = meta.get(f"{arch}.rope.dimension_count")
    if rope_dims is not None and int(rope_dims) != config.head_size:
        raise InputError(f"{source}: partial RoPE ({rope_dims} of {config.head_size} dimensions) is not supported")
    if len(tokens) != vocab:
        raise InputError(f"{source}: {len(tokens)} tokens in the vocabulary, {arch}.vocab_size says {vocab}", FIX)
    return config


def _block_tensor(name: str, ttype: int, raw: np.ndarray, rows: int, cols: int) -> QuantTensor:
    """GGUF blocks (rows, blocks * block bytes) -> a QuantTensor padded to whole, 4-aligned groups."""
    nb, groups = cols // GROUP, padded_groups(cols)
    per = {Q8_0: 34, Q4_0: 18, Q4_1: 20}[ttype]
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, nb, per)
    scales = np.zeros((rows, groups), dtype=np.float32)
    scales[:, :nb] = blocks[:, :, 0:2].copy().view("<f2")[..., 0]
    mins = None
    values = np.zeros((rows, groups, GROUP), dtype=np.int8)
    if ttype == Q8_0:
        values[:, :nb] = blocks[:, :, 2:].view(np.int8)
        kind = "q8_0"
    else:
        qs = blocks[:, :, 4:] if ttype == Q4_1 else blocks[:, :, 2:]
        nib = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int16)
        values[:, :nb] = (nib - (8 if ttype == Q4_0 else 0)).astype(np.int8)
        kind = "q4_0" if ttype == Q4_0 else "q4_1"
        if ttype == Q4_1:
            mins = np.zeros((rows, groups), dtype=np.float32)
            mins[:, :nb] = blocks[:, :, 2:4].copy().view("<f2")[..., 0]
    return QuantTensor(kind, (rows, cols), values.reshape(rows, groups * GROUP), scales, mins)


def _one_tensor(t: Any, shape: tuple[int, ...], source: str) -> Tensor:
    ttype = int(t.tensor_type)
    dims = tuple(int(d) for d in reversed(list(t.shape)))
    if dims != shape:
        raise InputError(f"{source}: tensor {t.name} has shape {dims}, the config needs {shape}", FIX)
    if ttype not in KEPT:
        kind = getattr(t.tensor_type, "name", str(ttype))
        raise InputError(f"{source}: tensor {t.name} is {kind}, which ppc-llm does not convert "
                         f"(it reads {', '.join(KEPT.values())})",
                         "re-quantize the model to one of those with llama.cpp's llama-quantize")
    if ttype in (F32, F16):
        return np.asarray(t.data, dtype=np.float32).reshape(shape)
    if ttype == BF16:
        from gguf.quants import dequantize

        return np.asarray(dequantize(np.asarray(t.data), t.tensor_type), dtype=np.float32).reshape(shape)
    if len(shape) != 2:
        raise InputError(f"{source}: tensor {t.name} is a quantized vector", FIX)
    if ttype in NEW_BLOCKS:
        fmt = BLOCK_FORMATS[NEW_BLOCKS[ttype].lower().replace("_k", "_K")]
        raw = np.asarray(t.data, dtype=np.uint8).reshape(shape[0], shape[1] // fmt.block, fmt.block_bytes)
        return BlockTensor(fmt.name, shape, raw.copy())
    return _block_tensor(t.name, ttype, t.data, shape[0], shape[1])


def _stack(parts: list[Tensor], name: str, source: str) -> Tensor:
    """One stacked tensor when the layers share a type (float32, or one int8-era block kind),
    else a LayerStack: GGUF mixes (Q4_K_M, ...) choose a type per layer."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.stack([np.asarray(p) for p in parts])
    quants = [p for p in parts if isinstance(p, QuantTensor)]
    if len(quants) != len(parts) or len({q.kind for q in quants}) != 1:
        layers = []
        for p in parts:
            if isinstance(p, LayerStack):
                raise InputError(f"{source}: the layers' {name} matrices are stacks", FIX)
            layers.append(p)
        return LayerStack(tuple(layers))
    mins = None if quants[0].mins is None else np.stack([q.mins for q in quants if q.mins is not None])
    return QuantTensor(quants[0].kind, (len(quants),) + quants[0].shape, np.stack([q.values for q in quants]),
                       np.stack([q.scales for q in quants]), mins)


def _head_dim(meta: dict[str, Any], arch: str, dim: int, heads: int, source: str) -> int:
    """ModelConfig.head_dim: the metadata's key length where it is not dim / heads (qwen3), else 0."""
    key, value = meta.get(f"{arch}.attention.key_length"), meta.get(f"{arch}.attention.value_length")
    if key is None or (int(key) * heads == dim and dim % heads == 0):
        return 0
    if value is not None and int(value) != int(key):
        raise InputError(f"{source}: attention key length {key} differs from value length {value} (not supported)")
    return int(key)


def _interleaved(t: Tensor, head_size: int) -> Tensor:
    """A NEOX-rotated projection's rows (or bias) per head reordered for the engine's rotation:
    new row 2i = old row i, new row 2i + 1 = old row i + head_size / 2 (their dot products with
    each other are unchanged, so attention is the same)."""
    rows = t.shape[0]
    order = np.arange(rows).reshape(-1, 2, head_size // 2).transpose(0, 2, 1).reshape(-1)
    if isinstance(t, QuantTensor):
        return dataclasses.replace(t, values=t.values[order], scales=t.scales[order],
                                   mins=None if t.mins is None else t.mins[order])
    if isinstance(t, BlockTensor):
        return dataclasses.replace(t, blocks=t.blocks[order])
    if isinstance(t, LayerStack):
        raise ValueError("a layer's matrix is not a stack")
    return np.asarray(t)[order]


def _tensors(raw: dict[str, Any], config: ModelConfig, source: str, neox: bool) -> dict[str, Tensor]:
    config_shapes = config.tensor_shapes()
    layer_re = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)$")
    names = {(k, "weight"): v for k, v in LAYER_TENSORS.items()}
    names.update({(k, "bias"): v for k, v in LAYER_BIASES.items()} if config.qkv_bias else {})
    names.update({(k, "weight"): v for k, v in LAYER_QK_NORMS.items()} if config.qk_norm else {})
    per_layer: dict[str, list[Tensor | None]] = {v: [None] * config.n_layers for v in names.values()}
    out: dict[str, Tensor] = {}
    for name, t in raw.items():
        m = layer_re.match(name)
        if m and (m.group(2), m.group(3)) in names and int(m.group(1)) < config.n_layers:
            ours = names[(m.group(2), m.group(3))]
            tensor = _one_tensor(t, config_shapes[ours][1:], source)
            per_layer[ours][int(m.group(1))] = _interleaved(tensor, config.head_size) \
                if neox and ours in ("wq", "wk", "bq", "bk", "q_norm", "k_norm") else tensor
        elif name.endswith(".weight") and name[:-7] in GLOBAL_TENSORS:
            ours = GLOBAL_TENSORS[name[:-7]]
            out[ours] = _one_tensor(t, config_shapes[ours], source)
        else:
            raise InputError(f"{source}: unexpected tensor {name} (not a llama model ppc-llm can run?)", FIX)
    for ours, parts in per_layer.items():
        missing = [i for i, p in enumerate(parts) if p is None]
        if missing:
            raise InputError(f"{source}: tensor {ours} of layer {missing[0]} is missing", FIX)
        out[ours] = _stack([p for p in parts if p is not None], ours, source)
    for ours in ("tok_embeddings", "rms_final"):
        if ours not in out:
            raise InputError(f"{source}: tensor {ours} is missing", FIX)
    return {name: out[name] for name in config_shapes}


def _tokenizer(meta: dict[str, Any], vocab: int, source: str) -> tuple[Tokenizer, BPE | SPM]:
    model = meta.get("tokenizer.ggml.model")
    if model == "llama":
        return _spm_tokenizer(meta, vocab, source)
    if model != "gpt2":
        raise InputError(f"{source}: tokenizer model {model!r} is not supported (ppc-llm reads GPT-2 byte-level BPE "
                         "('gpt2') and SentencePiece ('llama'))")
    return _bpe_tokenizer(meta, vocab, source)


def _special_id(meta: dict[str, Any], key: str, default: int, vocab: int) -> int:
    """A special token id from the metadata; llama.cpp keeps its default for one outside the vocabulary."""
    value = meta.get(f"tokenizer.ggml.{key}_token_id")
    return int(value) if isinstance(value, int) and 0 <= value < vocab else default


def _spm_tokenizer(meta: dict[str, Any], vocab: int, source: str) -> tuple[Tokenizer, SPM]:
    """A SentencePiece vocabulary with llama.cpp's defaults: BOS 1 and EOS 2, BOS added, a space
    prefix; tokens llama.cpp takes for end-of-generation by their text are control tokens."""
    tokens = [str(t) for t in _need(meta, "tokenizer.ggml.tokens", source)]
    types = [int(t) for t in (meta.get("tokenizer.ggml.token_type") or [NORMAL] * vocab)]
    scores = [float(np.float32(s)) for s in (meta.get("tokenizer.ggml.scores") or [0.0] * vocab)]
    if len(types) != vocab or len(scores) != vocab:
        raise InputError(f"{source}: {len(types)} token types and {len(scores)} scores for {vocab} tokens", FIX)
    if meta.get("tokenizer.ggml.add_eos_token"):
        raise InputError(f"{source}: the vocabulary asks for EOS after every text (add_eos_token), "
                         "which ppc-llm does not do", "set tokenizer.ggml.add_eos_token to false (gguf-set-metadata)")
    types = [SPM_CONTROL if tok in EOG_NAMES else typ for tok, typ in zip(tokens, types)]
    pieces = [tok.encode("utf-8") for tok in tokens]
    stated_bos, stated_prefix = meta.get("tokenizer.ggml.add_bos_token"), meta.get("tokenizer.ggml.add_space_prefix")
    spm = SPM(tuple(types), spm_byte_tokens(pieces), _special_id(meta, "bos", DEFAULT_BOS, vocab),
              _special_id(meta, "eos", DEFAULT_EOS, vocab), True if stated_bos is None else bool(stated_bos),
              True if stated_prefix is None else bool(stated_prefix))
    if max(spm.bos_id, spm.eos_id) >= vocab:
        raise InputError(f"{source}: bos/eos token ids {spm.bos_id}/{spm.eos_id} lie outside the vocabulary", FIX)
    return Tokenizer(tuple(pieces), tuple(scores), max(1, max(len(p) for p in pieces))), spm


def _bpe_tokenizer(meta: dict[str, Any], vocab: int, source: str) -> tuple[Tokenizer, BPE]:
    pre_name = str(meta.get("tokenizer.ggml.pre") or "default")
    if pre_name not in PRE_NAMES:
        raise InputError(f"{source}: pre-tokenizer {pre_name!r} is not supported (ppc-llm knows: "
                         f"{', '.join(PRE_NAMES)})")
    pre = PRE_NAMES[pre_name]
    tokens = list(_need(meta, "tokenizer.ggml.tokens", source))
    types = list(meta.get("tokenizer.ggml.token_type") or [1] * vocab)
    merges = list(_need(meta, "tokenizer.ggml.merges", source))
    if len(types) != vocab:
        raise InputError(f"{source}: {len(types)} token types for {vocab} tokens", FIX)
    special = tuple(i for i, t in enumerate(types) if t in (CONTROL, USER_DEFINED))
    pieces = [tok.encode("utf-8") if typ in (CONTROL, USER_DEFINED) else piece_bytes(tok, source)
              for tok, typ in zip(tokens, types)]
    index = {tok: i for i, tok in enumerate(tokens)}
    byte_tokens = _byte_tokens(pieces, set(special))
    pairs, merged = [], []
    for rank, text in enumerate(merges):
        left, sep, right = str(text).partition(" ")
        ids = (index.get(left), index.get(right), index.get(left + right))
        if not sep or None in ids:
            raise InputError(f"{source}: merge {rank} ({text!r}) names tokens not in the vocabulary", FIX)
        pairs.append((int(ids[0]), int(ids[1])))  # type: ignore[arg-type]
        merged.append(int(ids[2]))  # type: ignore[arg-type]
    bos = int(meta.get("tokenizer.ggml.bos_token_id") or 0)
    eos = int(meta.get("tokenizer.ggml.eos_token_id") or 0)
    if not (0 <= bos < vocab and 0 <= eos < vocab):
        raise InputError(f"{source}: bos/eos token ids {bos}/{eos} lie outside the vocabulary", FIX)
    stated = meta.get("tokenizer.ggml.add_bos_token")
    add_bos = bool(stated) if stated is not None else pre == PRE_LLAMA3  # llama.cpp's defaults
    bpe = BPE(byte_tokens, special, tuple(pairs), tuple(merged), bos, eos, add_bos, pre)
    longest = max(len(p) for p in pieces)
    return Tokenizer(tuple(pieces), (0.0,) * vocab, max(longest, 1)), bpe


def _byte_tokens(pieces: list[bytes], special: set[int]) -> tuple[int, ...]:
    ids: dict[bytes, int] = {}
    for i, piece in enumerate(pieces):
        if len(piece) == 1 and i not in special:
            ids.setdefault(piece, i)
    # a byte without a token is dropped from the text, as the tokenizers library does
    return tuple(ids.get(bytes([b]), NO_TOKEN) for b in range(256))


def chat_template(meta: dict[str, Any], tokenizer: Tokenizer, bpe: BPE | SPM | None, source: str,
                  kwargs: dict[str, Any] | None = None) -> ChatFormat | None:
    """The chat turn format of the GGUF's ``tokenizer.chat_template`` (toolkit/models/chat.py),
    None without one (or without control tokens to spell it: a GGUF vocabulary's)."""
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or bpe is None:
        return None
    pieces = tokenizer.pieces
    eot = meta.get("tokenizer.ggml.eot_token_id")
    stops = stop_ids(pieces, bpe.special, bpe.eos_id, eot if isinstance(eot, int) else None)
    return derive(template, bos_token=pieces[bpe.bos_id].decode("utf-8", "replace"),
                  eos_token=pieces[bpe.eos_id].decode("utf-8", "replace"), add_bos=bpe.add_bos, stops=stops,
                  kwargs=kwargs, source=source)
