"""The converted model file: its layout (``layout``), header (``header``), tensor table and
tensors (``tensors``), raw-bytes blobs (``blobs``), and the whole-file codec (``codec``:
``encode``, ``decode``) built from them; ``detect`` opens any model file by what its bytes are.

Every public name of the modules is re-exported here: ``from toolkit import format as fmt``.
"""

from __future__ import annotations

from .blobs import (BPE_HEADER_WORDS, CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE, WHITE_SPACE, blob_payloads,
                    bpe_blob, chat_blob, class_ranges, parse_bpe_blob, parse_bpe_words, parse_chat_blob,
                    parse_spm_blob, read_blob, read_tokenizer_blob, spm_blob)
from .codec import decode, encode
from .detect import model_bound, parse_any, read_any
from .header import (Header, file_endian, header_prefix_size, read_header, read_header_file, sniff,
                     write_header)
from .layout import (ALIGNMENT, BLOCK_DTYPES, BOM, BPE_TENSOR, CHAT_TENSOR, DTYPE_BYTES, DTYPE_F16, DTYPE_F32,
                     DTYPE_Q4_0, DTYPE_Q4_1, DTYPE_Q8_0, ENDIANS, ENTRY_FORMAT, ENTRY_SIZE, FLAG_CHATML, FLAG_QKV_BIAS, FLAG_QK_NORM, FLAG_ROPE_FREQS,
                     FLAG_FLOAT_ACTIVATIONS, FORMAT_VERSION, HEADER_FORMAT, HEADER_SIZE, KEPT_DTYPES, KEPT_NAMES,
                     MAGIC, MATRICES, MAX_TENSORS,
                     MINS_SUFFIX, NAME_BYTES, QUANT_DTYPES, QUANT_NAMES, QUANT_NAMES_TO_CODE, SCALES_SUFFIX,
                     SPM_TENSOR, TOKENIZER_BPE, TOKENIZER_LLAMA2C, TOKENIZER_SPM, TOKENIZER_TENSOR)
from .tensors import Payload, TensorEntry, place, read_table, read_tensor, tensor_payloads, write_tensors

__all__ = [
    "ALIGNMENT", "BLOCK_DTYPES", "BOM", "BPE_HEADER_WORDS", "BPE_TENSOR", "CHAT_TENSOR", "CLASS_LETTER",
    "CLASS_NUMBER", "CLASS_SPACE", "DTYPE_BYTES", "DTYPE_F16", "DTYPE_F32", "DTYPE_Q4_0", "DTYPE_Q4_1",
    "DTYPE_Q8_0", "ENDIANS", "ENTRY_FORMAT", "ENTRY_SIZE", "FLAG_CHATML", "FLAG_QKV_BIAS", "FLAG_QK_NORM", "FLAG_ROPE_FREQS", "FLAG_FLOAT_ACTIVATIONS",
    "FORMAT_VERSION", "HEADER_FORMAT", "HEADER_SIZE", "Header", "KEPT_DTYPES", "KEPT_NAMES", "MAGIC", "MATRICES",
    "MAX_TENSORS", "MINS_SUFFIX",
    "NAME_BYTES", "Payload", "QUANT_DTYPES", "QUANT_NAMES", "QUANT_NAMES_TO_CODE", "SCALES_SUFFIX",
    "SPM_TENSOR", "TOKENIZER_BPE", "TOKENIZER_LLAMA2C", "TOKENIZER_SPM", "TOKENIZER_TENSOR", "TensorEntry", "WHITE_SPACE", "blob_payloads",
    "bpe_blob", "chat_blob", "class_ranges", "decode", "encode", "file_endian", "header_prefix_size",
    "model_bound", "parse_any", "parse_bpe_blob", "parse_bpe_words", "parse_chat_blob", "parse_spm_blob", "spm_blob", "place", "read_any",
    "read_blob", "read_header", "read_header_file", "read_table", "read_tensor", "read_tokenizer_blob",
    "sniff", "tensor_payloads", "write_header", "write_tensors",
]
