"""The bpe blob's parse is linear in the blob (it was quadratic: 20-35 s for SmolLM2's 49k merges).

The measure is not a timer: it is the number of words the parse takes out of the blob. The words
are wrapped in a sequence that counts every element it hands out, by index or in a slice. The old
bug lived inside C slicing (``words[start:][:4]`` copies the whole tail once per merge), which an
opcode count cannot see but this count does: each copied element is handed out by the wrapper.
A linear parse takes each word a bounded number of times, so doubling the merges (and ranges)
about doubles the count; the old expression quadruples it (checked below too, so the measure
itself is shown to catch the bug).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

from toolkit import format as fmt

VOCAB = 100_000


class CountingWords(Sequence[int]):
    def __init__(self, words: tuple[int, ...]) -> None:
        self.words = words
        self.handed = 0

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[int, ...]: ...

    def __getitem__(self, index: int | slice) -> int | tuple[int, ...]:
        if isinstance(index, slice):
            part = self.words[index]
            self.handed += len(part)
            return part
        self.handed += 1
        return self.words[index]

    def __len__(self) -> int:
        return len(self.words)


def blob_words(n: int) -> tuple[int, ...]:
    """A valid blob's words with ``n`` merges and ``n`` ranges (no special tokens)."""
    words = [0, 0, n, n, 1, 2, 0, 0] + list(range(256))
    for i in range(n):  # sorted by (left, right), each merged into a token of its own
        words += [300 + i, 301 + i, n - 1 - i, 1000 + i]
    for i in range(n):
        words += [10 * i, 10 * i + 5, 1 + i % 3]
    return tuple(words)


def handed(n: int) -> int:
    words = CountingWords(blob_words(n))
    parsed = fmt.parse_bpe_words(words, VOCAB, "test")
    assert len(parsed.merges) == n and parsed.merges[0] == (300 + n - 1, 301 + n - 1)  # rank order
    return words.handed


def test_parse_takes_each_word_a_bounded_number_of_times() -> None:
    small, large = handed(2000), handed(4000)
    assert 1.9 < large / small < 2.1, (small, large)
    assert large < 2 * len(blob_words(4000)), large


def test_the_measure_sees_the_old_quadratic_slicing() -> None:
    """The old parse's expression under the same count: doubling the merges quadruples it."""
    def old_style(n: int) -> int:
        words = CountingWords(blob_words(n))
        base = fmt.BPE_HEADER_WORDS + 256
        quads = [words[base + 4 * i:][:4] for i in range(n)]
        assert len(quads) == n
        return words.handed

    assert old_style(4000) / old_style(2000) > 3.5


def test_parse_blob_reads_the_bytes_it_writes() -> None:
    words = blob_words(50)
    import struct

    data = struct.pack(f">{len(words)}I", *words)
    assert fmt.parse_bpe_blob(data, ">", VOCAB, "test") == fmt.parse_bpe_words(words, VOCAB, "test")
