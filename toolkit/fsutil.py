"""Small file-system helpers: atomic writes and content hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import InputError
from .interrupt import deferred, fault_point


def atomic_write_bytes(path: Path, payload: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: never half-written."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(f"cannot write to {directory}: {exc.strerror}", "choose a writable output path") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        fault_point("write")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}", "check free space and permissions") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(new: Path, dest: Path, mode: int | None = None) -> None:
    """Publish the finished directory ``new`` (made beside ``dest``) as ``dest``: optionally set its
    mode (``mkdtemp`` makes it private), swap an existing ``dest`` out, rename, then remove the old
    one, so ``dest`` is never half-written and the previous one stays until the new one is in."""
    if mode is not None:
        os.chmod(new, mode)
    fault_point("publish")
    old = None
    with deferred():  # a signal here would leave neither the old nor the new directory
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old.{os.getpid()}")
            dest.rename(old)
        try:
            new.rename(dest)
        except OSError:
            if old is not None:
                old.rename(dest)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def sha256_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
