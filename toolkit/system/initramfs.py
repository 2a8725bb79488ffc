"""A minimal initramfs: a cpio archive in the kernel's "newc" format, written here (no cpio tool).

Everything is owned by root with mtime 0, so the same inputs give the same archive. Device nodes
need no privileges: they are only records in the archive, created by the kernel when it unpacks.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory (no data), a file (bytes or a host file) or a char device."""

    name: str
    mode: int
    data: bytes | Path | None = None
    rdev: tuple[int, int] = (0, 0)

    @staticmethod
    def directory(name: str) -> "Entry":
        return Entry(name, stat.S_IFDIR | 0o755)

    @staticmethod
    def file(name: str, data: bytes | Path, executable: bool = False) -> "Entry":
        return Entry(name, stat.S_IFREG | (0o755 if executable else 0o644), data)

    @staticmethod
    def char_device(name: str, major: int, minor: int) -> "Entry":
        return Entry(name, stat.S_IFCHR | 0o600, None, (major, minor))

    def size(self) -> int:
        if self.data is None:
            return 0
        return len(self.data) if isinstance(self.data, bytes) else self.data.stat().st_size


def _pad(out: BinaryIO, written: int) -> None:
    out.write(b"\0" * (-written % 4))


def header(entry: Entry, ino: int) -> bytes:
    """The 110-byte newc header and the NUL-terminated name, padded to 4 bytes."""
    name = entry.name.encode("utf-8") + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, entry.size(), 0, 0, entry.rdev[0], entry.rdev[1], len(name), 0)
    raw = b"070701" + b"".join(b"%08X" % value for value in fields) + name
    return raw + b"\0" * (-len(raw) % 4)


def write(out: BinaryIO, entries: Iterable[Entry]) -> None:
    """Write ``entries`` (parents before children) and the trailer to ``out``."""
    ino = 0
    for ino, entry in enumerate(entries, start=1):
        out.write(header(entry, ino))
        if isinstance(entry.data, bytes):
            out.write(entry.data)
        elif entry.data is not None:
            with entry.data.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
        _pad(out, entry.size())
    out.write(header(Entry(TRAILER, 0), ino + 1))


def write_file(path: Path, entries: Iterable[Entry]) -> None:
    with path.open("wb") as out:
        write(out, entries)


def read_names(archive: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of every member before the trailer: for tests and inspection."""
    members: list[tuple[str, int, bytes]] = []
    offset = 0
    while True:
        if archive[offset:offset + 6] != b"070701":
            raise ValueError(f"no newc header at offset {offset}")
        fields = [int(archive[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize, mode = fields[11], fields[6], fields[1]
        start = offset + 110
        name = archive[start:start + namesize - 1].decode("utf-8")
        data_at = start + namesize + (-(110 + namesize) % 4)
        if name == TRAILER:
            return members
        members.append((name, mode, archive[data_at:data_at + filesize]))
        offset = data_at + filesize + (-filesize % 4)
