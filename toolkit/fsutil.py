"""Small file-system helpers: atomic writes, staged folders published whole, content hashes.

Staged publish (``staging``): a folder is filled beside its destination, then swapped in with one
``renameat2(RENAME_EXCHANGE)`` (Linux, via libc), so a kill at any instant leaves the old or the
new folder under the destination's name. Where the file system has no exchange (EINVAL / ENOSYS)
the swap takes two renames: the old folder goes to a known side name (``<staging>.old``), then
the new one is renamed in; a kill between the two leaves the name missing for that moment, and
the next run that sweeps the folder (any staging beside it, or a cache lookup) puts the old one
back. Every staging folder ``.NAME.stage.XXXXXXXX`` has a lock file beside it (``... .lock``,
``fcntl.flock``) held by its creator for the folder's whole life: a later run that can take the
lock (its owner died, e.g. SIGKILL) removes the folder; a live run's folder is never touched.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError
from .interrupt import deferred, fault_point

STAGE_MARK = ".stage."
LOCK_SUFFIX = ".lock"
OLD_SUFFIX = ".old"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


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


# --------------------------------------------------------------------------- rename primitives

def _renameat2(src: Path, dst: Path, flags: int) -> None:
    """renameat2(2) through libc; OSError(ENOSYS) where libc has none."""
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(src))


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the file system cannot (the caller falls
    back to two renames)."""
    try:
        _renameat2(a, b, _RENAME_EXCHANGE)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            return False
        raise
    return True


def rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (False then). Without renameat2: a check,
    then a rename (a directory cannot be renamed over a non-empty one anyway)."""
    try:
        _renameat2(src, dst, _RENAME_NOREPLACE)
        return True
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise
    if os.path.lexists(dst):
        return False
    try:
        src.rename(dst)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _swap_in(new: Path, dest: Path, side: Path) -> None:
    """Put ``new`` at ``dest``; an existing ``dest`` ends at ``new``'s path (exchange) or at
    ``side`` (the two-rename fallback), for the caller to remove."""
    for _ in range(3):  # another process may remove or publish dest between two steps
        if rename_noreplace(new, dest):
            return
        try:
            if exchange(new, dest):
                return
            break
        except FileNotFoundError:
            continue
    with deferred():  # a signal here would leave neither the old nor the new one under the name
        dest.rename(side)
        try:
            new.rename(dest)
        except OSError:
            side.rename(dest)
            raise


# --------------------------------------------------------------------------- staging

class Staging:
    """A folder being filled beside ``dest`` (``path``), locked for its life; see ``staging``."""

    def __init__(self, dest: Path, path: Path, lock_fd: int) -> None:
        self.dest = dest
        self.path = path
        self.published = False
        self._lock_fd = lock_fd

    def publish(self, mode: int | None = None, replace: bool = True) -> bool:
        """Put the folder at ``dest``. ``replace``: swap an existing ``dest`` out (removed). Else an
        existing ``dest`` is left as it is and False returned (this folder is then removed)."""
        if mode is not None:
            os.chmod(self.path, mode)
        fault_point("publish")
        if replace:
            _swap_in(self.path, self.dest, self.path.with_name(self.path.name + OLD_SUFFIX))
        elif not rename_noreplace(self.path, self.dest):
            return False
        self.published = True
        return True

    def close(self) -> None:
        """Remove what is left of the staging folder (the old ``dest`` after an exchange, or the
        unpublished folder), then the lock file, still holding the lock while unlinking it."""
        for leftover in (self.path, self.path.with_name(self.path.name + OLD_SUFFIX)):
            if os.path.lexists(leftover):
                _remove(leftover)
        lock = _lock_path(self.path)
        lock.unlink(missing_ok=True)
        os.close(self._lock_fd)


def _lock_path(stage: Path) -> Path:
    return stage.with_name(stage.name + LOCK_SUFFIX)


def _make_stage(dest: Path) -> Staging:
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = parent / f".{dest.name}{STAGE_MARK}{secrets.token_hex(4)}"
        lock = _lock_path(path)
        # locked under a name the sweep ignores, then renamed into place: never seen unlocked
        fresh = lock.with_name(lock.name + ".new")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not rename_noreplace(fresh, lock):
                raise FileExistsError(errno.EEXIST, "taken", str(lock))
            try:
                path.mkdir(mode=0o700)
            except BaseException:
                lock.unlink(missing_ok=True)
                raise
        except FileExistsError:
            fresh.unlink(missing_ok=True)
            os.close(fd)
            continue
        except BaseException:
            fresh.unlink(missing_ok=True)
            os.close(fd)
            raise
        return Staging(dest, path, fd)
    raise FileExistsError(errno.EEXIST, "no free staging name", str(parent))


@contextmanager
def staging(dest: Path) -> Iterator[Staging]:
    """A locked staging folder beside ``dest`` to fill, then ``stage.publish(mode)``; whatever
    happens, what was not published is removed at the end (and stale stagings beside ``dest``,
    left by killed runs, are swept first). Usage (the toolkit's outputs and cache entries)::

        with staging(dest) as stage:
            (stage.path / "file").write_text(...)
            stage.publish(0o755)              # replaces dest; replace=False keeps an existing one

    An OSError making the folder (read-only, full, not a directory, a name too long) is an
    InputError (exit 3)."""
    try:
        sweep(dest.parent)
        stage = _make_stage(dest)
    except OSError as exc:
        raise InputError(f"cannot write to {dest.parent}: {exc.strerror}", "choose a writable directory") from None
    try:
        fault_point("stage")
        yield stage
    finally:
        stage.close()


@contextmanager
def staged_dir(dest: Path, mode: int | None = 0o755) -> Iterator[Path]:
    """``staging`` for the common case: fill the yielded folder; on a normal exit it replaces
    ``dest`` (mode ``mode``), on an exception it is removed and ``dest`` is left as it was."""
    with staging(dest) as stage:
        yield stage.path
        stage.publish(mode)


def sweep(parent: Path) -> list[Path]:
    """Remove staging folders in ``parent`` whose creator is gone (their lock can be taken), and
    put back a folder the two-rename fallback left at its side name; the stagings removed."""
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in names:
        if STAGE_MARK in name and name.endswith(LOCK_SUFFIX) and name.startswith("."):
            stage = parent / name[:-len(LOCK_SUFFIX)]
            if _reclaim(stage):
                removed.append(stage)
    return removed


def _reclaim(stage: Path) -> bool:
    try:
        return _reclaim_locked(stage)
    except OSError:
        return False  # a sweep never fails the run that does it


def _reclaim_locked(stage: Path) -> bool:
    lock = _lock_path(stage)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live run holds it
        try:
            if os.stat(lock).st_ino != os.fstat(fd).st_ino:
                return False  # its owner finished and removed it meanwhile (a new one may exist)
        except FileNotFoundError:
            return False
        dest = stage.parent / stage.name[1:].rsplit(STAGE_MARK, 1)[0]
        side = stage.with_name(stage.name + OLD_SUFFIX)
        if os.path.lexists(side) and not os.path.lexists(dest):
            side.rename(dest)  # killed between the fallback's two renames: the old one goes back
        for leftover in (stage, side):
            if os.path.lexists(leftover):
                _remove(leftover)
        lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- hashes

def sha256_bytes(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
