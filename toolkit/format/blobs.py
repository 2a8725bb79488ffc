"""The raw-bytes tensors of a converted file (dtype 1): the tokenizer, "bpe" and "chat" blobs.

``tokenizer``: llama2.c's tokenizer.bin layout in the file's byte order (``models.llama2c``); for
a GPT-2 byte-level BPE vocabulary the pieces are raw bytes (GGUF stores GPT-2 pieces through the
byte-to-unicode table; ``convert`` undoes it) with zero scores.

``bpe`` (BPE vocabularies only) adds what encoding needs, every integer a u32 in the file's byte
order:

    reserved (0), n_special, n_merges, n_ranges, bos id, eos id, add_bos (0/1), pre-tokenizer
                               (models.bpe.PRE_GPT2 ... PRE_DEFAULT)
    byte_tokens[256]           token id of every single byte (NO_TOKEN: none, the byte is dropped)
    special[n_special]         ids of control tokens, matched whole in the text
    merges[n_merges]           (left id, right id, rank, merged id), sorted by (left, right)
    ranges[n_ranges]           (first, last, class) code point ranges: 1 letter (\\p{L}),
                               2 number (\\p{N}), 3 white space (\\s), 4 punctuation (\\p{P} and
                               $+<=>^~|, else "other" like the rest); sorted, disjoint

``spm`` (GGUF SentencePiece vocabularies only; their pieces stay as GGUF spells them, spaces as
U+2581), u32 words in the file's byte order:

    reserved (0), bos id, eos id, add_bos (0/1), add_space_prefix (0/1), vocab_size
    byte_tokens[256]           token id of every byte for byte fallback (NO_TOKEN: none)
    types[vocab_size]          GGUF's token type of each token (models.spm.NORMAL ... BYTE)

``chat`` (models with a chat template; its turn format, toolkit/models/chat.py), u32 words in
the file's byte order, then the strings:

    flags                      bit 0 the template has a default system prompt, bit 1 it takes a
                               system prompt, bit 2 it folds the system prompt into the first
                               user turn; the other bits zero
    n_stops                    1 .. 16
    n_strings                  6
    stops[n_stops]             token ids that end a reply (each inside the vocabulary)
    lengths[6]                 byte lengths of: first, system_prefix, system_suffix, user_prefix,
                               user_suffix, default system prompt ("" without one)
    bytes                      the six strings back to back, UTF-8, no NUL byte; the blob ends there
"""

from __future__ import annotations

import struct
import sys
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from ..errors import InputError
from ..models import Model, Tokenizer
from ..models.bpe import BPE, NO_TOKEN, PRE_DEFAULT
from ..models.chat import MAX_STOPS, ChatFormat
from ..models.spm import BYTE, SPM
from ..models.llama2c import parse_tokenizer, tokenizer_bytes
from .layout import BPE_TENSOR, CHAT_TENSOR, DTYPE_BYTES, RECREATE, SPM_TENSOR, TOKENIZER_TENSOR
from .tensors import Payload, TensorEntry

CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE, CLASS_PUNCT = 1, 2, 3, 4
PUNCT_EXTRA = "$+<=>^~|"  # with \p{P}: llama.cpp's default pre-tokenizer's first split
# Unicode's White_Space property (what \s matches in the tokenizers library's regex)
WHITE_SPACE = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
BPE_HEADER_WORDS = 8


def blob_payloads(model: Model, bo: str) -> list[Payload]:
    """The payloads of the model's blobs, in file order (after the tensors)."""
    blobs = [(TOKENIZER_TENSOR, tokenizer_bytes(model.tokenizer, bo))]
    if model.bpe is not None:
        blobs.append((BPE_TENSOR, bpe_blob(model.bpe, bo)))
    if model.spm is not None:
        blobs.append((SPM_TENSOR, spm_blob(model.spm, bo)))
    if model.chat is not None:
        blobs.append((CHAT_TENSOR, chat_blob(model.chat, bo)))
    return [(name, DTYPE_BYTES, (len(blob),), blob) for name, blob in blobs]


def read_blob(data: bytes, entries: dict[str, TensorEntry], name: str, source: str) -> bytes:
    entry = entries.get(name)
    if entry is None or entry.dtype != DTYPE_BYTES:
        raise InputError(f"{source}: no embedded {name} data", RECREATE)
    return data[entry.offset:entry.offset + entry.nbytes]


def read_tokenizer_blob(data: bytes, bo: str, entries: dict[str, TensorEntry], vocab_size: int,
                        source: str) -> Tokenizer:
    tokenizer = parse_tokenizer(read_blob(data, entries, TOKENIZER_TENSOR, source), source, bo)
    if tokenizer.vocab_size != vocab_size:
        raise InputError(f"{source}: embedded tokenizer has {tokenizer.vocab_size} tokens, model has {vocab_size}")
    return tokenizer


@lru_cache(maxsize=1)
def class_ranges() -> tuple[tuple[int, int, int], ...]:
    """(first, last, class) for letters, numbers, white space and punctuation, from Python's Unicode
    tables."""
    spaces = {c for first, last in WHITE_SPACE for c in range(first, last + 1)}
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if cp in spaces:
            cls = CLASS_SPACE
        else:
            cat = unicodedata.category(chr(cp))
            cls = CLASS_LETTER if cat[0] == "L" else CLASS_NUMBER if cat[0] == "N" else \
                CLASS_PUNCT if cat[0] == "P" or chr(cp) in PUNCT_EXTRA else 0
        if cls == 0:
            continue
        if ranges and ranges[-1][2] == cls and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, cls])
    return tuple((a, b, c) for a, b, c in ranges)


def bpe_blob(bpe: BPE, byteorder: str) -> bytes:
    """The ``bpe`` blob in ``byteorder`` ('<' or '>')."""
    ranges = class_ranges()
    order = sorted(range(len(bpe.merges)), key=lambda r: bpe.merges[r])
    words = [0, len(bpe.special), len(bpe.merges), len(ranges),
             bpe.bos_id, bpe.eos_id, int(bpe.add_bos), bpe.pre]
    words += list(bpe.byte_tokens) + list(bpe.special)
    for rank in order:
        words += [bpe.merges[rank][0], bpe.merges[rank][1], rank, bpe.merged[rank]]
    for first, last, cls in ranges:
        words += [first, last, cls]
    return struct.pack(f"{byteorder}{len(words)}I", *words)


def parse_bpe_blob(data: bytes, byteorder: str, vocab_size: int, source: str) -> BPE:
    """The inverse of ``bpe_blob`` (the ranges are the engine's business and are not kept)."""
    if len(data) < 4 * (BPE_HEADER_WORDS + 256) or len(data) % 4:
        raise _bad(source, "is truncated")
    return parse_bpe_words(struct.unpack(f"{byteorder}{len(data) // 4}I", data), vocab_size, source)


def _bad(source: str, what: str) -> InputError:
    return InputError(f"{source}: BPE tokenizer data {what}", RECREATE)


def parse_bpe_words(words: Sequence[int], vocab_size: int, source: str) -> BPE:
    """``parse_bpe_blob`` on the blob's words. Linear in the blob: each merge and range is one
    slice of its own few words (slicing the tail first would copy it once per merge)."""
    flags, n_special, n_merges, n_ranges, bos, eos, add_bos, pre = words[:8]
    head = BPE_HEADER_WORDS
    if len(words) != head + 256 + n_special + 4 * n_merges + 3 * n_ranges:
        raise _bad(source, "has the wrong size")
    ids = words[head:head + 256 + n_special]
    base = head + 256 + n_special
    quads = [words[base + 4 * i:base + 4 * i + 4] for i in range(n_merges)]
    if any(i >= vocab_size for i in ids[256:]) or any(vocab_size <= i != NO_TOKEN for i in ids[:256]) or \
            any(max(q[0], q[1], q[3]) >= vocab_size for q in quads):
        raise _bad(source, "names a token outside the vocabulary")
    if bos >= vocab_size or eos >= vocab_size or add_bos > 1 or flags or pre > PRE_DEFAULT:
        raise _bad(source, "has a bos / eos id, the add_bos flag, the pre-tokenizer or the reserved word "
                           "out of range")
    if any((a[0], a[1]) >= (b[0], b[1]) for a, b in zip(quads, quads[1:])):
        raise _bad(source, "has merges not sorted by (left, right) or repeated")
    base += 4 * n_merges
    ranges = [words[base + 3 * i:base + 3 * i + 3] for i in range(n_ranges)]
    if any(r[0] > r[1] for r in ranges) or any(a[1] >= b[0] for a, b in zip(ranges, ranges[1:])):
        raise _bad(source, "has character class ranges not sorted or overlapping")
    ranked = sorted(quads, key=lambda q: q[2])
    return BPE(tuple(ids[:256]), tuple(ids[256:]),
               tuple((q[0], q[1]) for q in ranked), tuple(q[3] for q in ranked), bos, eos, bool(add_bos), pre)


SPM_HEADER_WORDS = 6


def spm_blob(spm: SPM, byteorder: str) -> bytes:
    """The ``spm`` blob in ``byteorder`` ('<' or '>')."""
    words = [0, spm.bos_id, spm.eos_id, int(spm.add_bos), int(spm.add_space_prefix), len(spm.types),
             *spm.byte_tokens, *spm.types]
    return struct.pack(f"{byteorder}{len(words)}I", *words)


def parse_spm_blob(data: bytes, byteorder: str, vocab_size: int, source: str) -> SPM:
    """The inverse of ``spm_blob``, every bound checked as engine/tok_spm.c checks it."""
    count = SPM_HEADER_WORDS + 256 + vocab_size
    if len(data) != 4 * count:
        raise InputError(f"{source}: SentencePiece tokenizer data has the wrong size", RECREATE)
    words = struct.unpack(f"{byteorder}{count}I", data)
    reserved, bos, eos, add_bos, prefix, n = words[:SPM_HEADER_WORDS]
    byte_ids, types = words[SPM_HEADER_WORDS:SPM_HEADER_WORDS + 256], words[SPM_HEADER_WORDS + 256:]
    if reserved or bos >= vocab_size or eos >= vocab_size or add_bos > 1 or prefix > 1 or n != vocab_size or \
            any(vocab_size <= i != NO_TOKEN for i in byte_ids) or any(t > BYTE for t in types):
        raise InputError(f"{source}: SentencePiece tokenizer data is inconsistent", RECREATE)
    return SPM(tuple(types), tuple(byte_ids), bos, eos, bool(add_bos), bool(prefix))


CHAT_DEFAULT_SYSTEM, CHAT_SYSTEM_ROLE, CHAT_FOLDED = 1, 2, 4
CHAT_FLAGS = CHAT_DEFAULT_SYSTEM | CHAT_SYSTEM_ROLE | CHAT_FOLDED
CHAT_STRINGS = 6


def chat_blob(chat: ChatFormat, byteorder: str) -> bytes:
    """The ``chat`` blob in ``byteorder`` ('<' or '>')."""
    flags = (CHAT_DEFAULT_SYSTEM if chat.default_system is not None else 0) | \
        (CHAT_SYSTEM_ROLE if chat.system_role else 0) | (CHAT_FOLDED if chat.folded else 0)
    strings = [text.encode("utf-8") for text in chat.strings()]
    words = [flags, len(chat.stops), CHAT_STRINGS, *chat.stops, *(len(b) for b in strings)]
    return struct.pack(f"{byteorder}{len(words)}I", *words) + b"".join(strings)


def parse_chat_blob(data: bytes, byteorder: str, vocab_size: int, source: str) -> ChatFormat:
    """The inverse of ``chat_blob`` (every bound checked, as engine/load.c checks it)."""
    def bad(what: str) -> InputError:
        return InputError(f"{source}: chat template data is malformed: it {what}", RECREATE)

    if len(data) < 12:
        raise bad("is truncated")
    flags, n_stops, n_strings = struct.unpack(f"{byteorder}3I", data[:12])
    if flags & ~CHAT_FLAGS or not 0 < n_stops <= MAX_STOPS or n_strings != CHAT_STRINGS:
        raise bad("has flags, a stop count or a string count out of range")
    head = 4 * (3 + n_stops + CHAT_STRINGS)
    if len(data) < head:
        raise bad("is truncated")
    words = struct.unpack(f"{byteorder}{n_stops + CHAT_STRINGS}I", data[12:head])
    stops, lengths = words[:n_stops], words[n_stops:]
    if any(i >= vocab_size for i in stops) or head + sum(lengths) != len(data) or b"\0" in data[head:]:
        raise bad("names a token outside the vocabulary, has the wrong size or a NUL byte")
    texts, at = [], head
    for n in lengths:
        try:
            texts.append(data[at:at + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise bad("has a string that is not UTF-8") from None
        at += n
    default = texts[5] if flags & CHAT_DEFAULT_SYSTEM else None
    first, system_prefix, system_suffix, user_prefix, user_suffix = texts[:5]
    return ChatFormat(first, system_prefix, system_suffix, user_prefix, user_suffix, default,
                      bool(flags & CHAT_SYSTEM_ROLE), bool(flags & CHAT_FOLDED), tuple(stops))
