"""The converted model file's layout: the one place that knows it (mirrored by engine/load.c).

Layout, every integer and float in the file's byte order (``endian``):

    offset  size  field
    0       8     magic "PPCLLM\\0\\0" (bytes, order-free)
    8       4     byte-order mark 0x0A0B0C0D: bytes 0A 0B 0C 0D = big-endian, 0D 0C 0B 0A = little
    12      4     format version (FORMAT_VERSION)
    16      4     header size (HEADER_SIZE)
    20      4     tensor alignment in bytes (ALIGNMENT)
    24      8     file size in bytes
    32      4     number of tensor table entries
    36      28    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (u32 each)
    64      4     shared classifier (0 or 1)
    68      4     rope theta (f32)
    72      4     rms norm epsilon (f32)
    76      4     weight quantization of most matrices: a dtype code (0 f32, 2 q8_0, 3 q4_0, 5 q4_1;
                  0 when wq is kept GGUF blocks or stored per layer: the table says each type)
    80      4     tokenizer kind: 0 llama2.c (sentencepiece scores), 1 GPT-2 byte-level BPE
    84      4     flags: bit 0 float activations (block-quantized matrices multiply float32
                  activations, and may mix block kinds; else int8-quantized ones), bit 1 a chat
                  template (its turn format in the "chat" blob), bit 2 Q/K/V biases (f32
                  tensors bq (layer, dim), bk and bv (layer, kv_dim), after the others), bit 3
                  RoPE frequency factors (f32 tensor rope_freqs (head_size / 2,), last), bit 4
                  per-head Q/K RMS norms (f32 tensors q_norm and k_norm (layer, head_size), last)
    88      4     head size where it is not dim / n_heads, else 0 (q is n_heads * head_size wide)
    92      36    reserved, zero
    128     64*n  tensor table, sorted by offset: name (32 bytes, NUL padded ASCII), dtype (u32),
                  ndim (u32), dims[3] (u32), reserved (u32), offset (u64)
    ...           tensor data, each at a multiple of ALIGNMENT, zero padding between

dtype 0 is f32; dtype 1 is raw bytes (the tokenizer blob, llama2.c tokenizer.bin layout in the
file's byte order; for BPE vocabularies the pieces are raw bytes and the "bpe" blob follows,
layout in toolkit/format/blobs.py; models with a chat template have a "chat" blob: its turn
format as data, layout in toolkit/format/blobs.py); dtypes 2 (q8_0), 3 (q4_0) and 5 (q4_1) are block-quantized codes, whose scales
are the tensor NAME.scales of dtype 4 (fp16), and for q4_1 whose mins are NAME.mins (fp16, same
shape) (layout in toolkit/quant.py). dtypes 6 .. 14 (KEPT_DTYPES: q5_0, q5_1, q2_K, q3_K, q4_K,
q5_K, q6_K, iq4_nl, iq4_xs; float activations only) are GGUF blocks kept bit for bit, one 2-D
tensor per matrix holding every block field, in row groups of 4 rows, each field's array 16-byte
aligned (layout in toolkit/quant.py, "GGUF blocks kept bit for bit"). Norms always stay f32;
each matrix (MATRICES) is f32 or block-quantized, as its table entry says.

A per-layer matrix stack whose layers differ in type (GGUF mixes such as Q4_K_M), or that holds
dtypes 6 .. 14, is stored per layer: no entry NAME, but NAME.0 .. NAME.{n_layers-1}, each a 2-D
matrix of its own dtype (with NAME.l.scales / NAME.l.mins for dtypes 2, 3, 5).

The stored layout depends only on the byte order, never on the target: one big-endian file
serves every big-endian target.
"""

from __future__ import annotations

from ..quant import BLOCK_FORMATS, KINDS

MAGIC = b"PPCLLM\0\0"
BOM = 0x0A0B0C0D
# 7: the bpe blob names its pre-tokenizer and marks punctuation; 6: the chat blob holds the turn
# format (strings, flags, stop ids); 5: the bpe blob's first word is reserved (no digit-splitting flag)
FORMAT_VERSION = 8
HEADER_SIZE = 128
ENTRY_SIZE = 64
# tensor table entries a file may have: a GGUF mix stored per layer takes up to three per matrix and
# layer (codes, scales, mins), 630 for SmolLM2's 30 layers; the loader allocates only what a file has
MAX_TENSORS = 4096
ALIGNMENT = 64
NAME_BYTES = 32
DTYPE_F32 = 0
DTYPE_BYTES = 1
DTYPE_Q8_0 = 2
DTYPE_Q4_0 = 3
DTYPE_F16 = 4
DTYPE_Q4_1 = 5
BLOCK_DTYPES = {"q8_0": DTYPE_Q8_0, "q4_0": DTYPE_Q4_0, "q4_1": DTYPE_Q4_1}
# GGUF blocks kept bit for bit, one tensor per matrix in row groups (toolkit/quant.py): 6 q5_0,
# 7 q5_1, 8 q2_K, 9 q3_K, 10 q4_K, 11 q5_K, 12 q6_K, 13 iq4_nl, 14 iq4_xs
KEPT_DTYPES = {name: f.dtype for name, f in BLOCK_FORMATS.items()}
KEPT_NAMES = {code: name for name, code in KEPT_DTYPES.items()}
QUANT_DTYPES = {"f32": DTYPE_F32, **{kind: BLOCK_DTYPES[kind] for kind in KINDS}}  # what --quant makes
QUANT_NAMES = {code: name for name, code in {**QUANT_DTYPES, **BLOCK_DTYPES}.items()}
QUANT_NAMES_TO_CODE = {"f32": DTYPE_F32, **BLOCK_DTYPES}
TOKENIZER_LLAMA2C, TOKENIZER_BPE, TOKENIZER_SPM = 0, 1, 2
# FLAG_CHATML: any chat template (the name from v4); FLAG_QKV_BIAS: the attention's Q/K/V
# projections add biases (tensors bq, bk, bv: qwen2); FLAG_ROPE_FREQS: RoPE's angles are divided
# by per-pair factors (tensor rope_freqs: Llama 3.x's RoPE scaling); FLAG_QK_NORM: q and k are
# RMS-normed per head before RoPE (tensors q_norm, k_norm: qwen3)
FLAG_FLOAT_ACTIVATIONS, FLAG_CHATML, FLAG_QKV_BIAS, FLAG_ROPE_FREQS, FLAG_QK_NORM = 1, 2, 4, 8, 16
MATRICES = ("tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls")
SCALES_SUFFIX = ".scales"
MINS_SUFFIX = ".mins"
TOKENIZER_TENSOR = "tokenizer"
BPE_TENSOR = "bpe"
SPM_TENSOR = "spm"
CHAT_TENSOR = "chat"
ENDIANS = {"big": ">", "little": "<"}
HEADER_FORMAT = "8sIIIIQI7IIffIIII"
ENTRY_FORMAT = f"{NAME_BYTES}sII3IIQ"
RECREATE = "re-create the file with `ppc-llm convert`"
