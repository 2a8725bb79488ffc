"""Reading an input file once, whatever it is: a regular file, a FIFO, ``/dev/stdin`` or a device.

A regular file is read whole in one pass. Anything else is a stream that can be read only once
and may never end (``/dev/zero``), so it is read in chunks up to a size bound that its format
gives: ``bound`` sees the first bytes and returns the largest size that format allows for them
(a llama2.c checkpoint's header gives its exact size, a converted file's header its file size),
or raises ``InputError`` when they cannot start such a file. A stream longer than its bound stops
with an error instead of filling the memory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from .errors import InputError

CHUNK = 1 << 20
Bound = Callable[[bytes], int]


def read_input(path: Path, what: str, bound: Bound, prefix: int = 128) -> bytes:
    """The bytes of ``path``; a stream is bounded by ``bound`` of its first ``prefix`` bytes."""
    try:
        with path.open("rb", buffering=0) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise InputError(f"{what} {path} is a directory, not a file")
            if stat.S_ISREG(mode):
                return handle.read()
            return _read_stream(handle.fileno(), path, what, bound, prefix)
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a file") from None
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def _read_stream(fd: int, path: Path, what: str, bound: Bound, prefix: int) -> bytes:
    data = bytearray()
    while len(data) < prefix:
        chunk = os.read(fd, prefix - len(data))
        if not chunk:
            break
        data += chunk
    limit = bound(bytes(data))
    while len(data) <= limit:
        chunk = os.read(fd, min(CHUNK, limit + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
    raise InputError(f"{what} {path} goes on past the {limit:,} bytes its start allows",
                     "give the file itself, not an endless stream")
