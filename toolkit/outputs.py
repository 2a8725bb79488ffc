"""What an output path may hold before ppc-llm writes there: never anything ppc-llm did not write.

A command's output replaces what is at its path only when ppc-llm wrote it:

- a **file** output (``convert -o``) may replace a regular file that starts with the converted
  file's magic; nothing else that exists there (another file, a folder, a symlink, a device, a
  FIFO, a socket) is touched;
- a **folder** output (``build -o``, ``release -o``, ``build --emit-source``) may be a new path,
  an empty folder, or a folder that carries our ownership manifest (``OWNER_FILE``) and holds
  nothing that manifest does not list. Each such folder is published with a fresh manifest.

An input that is the output, or lies inside it, is refused before any work starts; the
comparison is by device and inode (of the input and of every folder above it), never by name.
Every refusal is a ``UsageError`` (exit 2) naming what is there and telling the user to choose
an empty or new path.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError, UsageError

OWNER_FILE = ".ppc-llm-output.json"
OWNER_TOOL = "ppc-llm"
CHOOSE = "choose an empty directory or a new path"
CHOOSE_FILE = "choose a new file name (ppc-llm only replaces files it wrote)"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a file"


def _lstat(path: Path, option: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot write {option} {path}: {exc.strerror}", "choose a writable output path") from None


def check_output_file(path: Path, magic: bytes, option: str = "--output") -> None:
    """Refuse ``path`` as a file output unless it is new or a regular file starting with ``magic``."""
    info = _lstat(path, option)
    if info is None:
        return
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{option} {path} is {_kind(info.st_mode)}, not a file ppc-llm wrote", CHOOSE_FILE)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(magic))
    except OSError as exc:
        raise InputError(f"cannot read {option} {path}: {exc.strerror}", CHOOSE_FILE) from None
    if head != magic:
        raise UsageError(f"{option} {path} exists and is not a file ppc-llm wrote", CHOOSE_FILE)


def check_output_dir(path: Path, option: str = "--output") -> None:
    """Refuse ``path`` as a folder output unless it is new, empty, or ours (see the module doc)."""
    info = _lstat(path, option)
    if info is None:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{option} {path} is {_kind(info.st_mode)}, not a directory ppc-llm wrote", CHOOSE)
    present = _tree(path, option)
    if not present:
        return
    listed = _owned_files(path)
    if listed is None:
        count = f"{len(present)} entr{'y' if len(present) == 1 else 'ies'}"
        raise UsageError(f"{option} {path} is a directory ppc-llm did not write (it holds {count})", CHOOSE)
    extra = sorted(present - listed - {OWNER_FILE})
    if extra:
        raise UsageError(f"{option} {path} holds {extra[0]!r}, which ppc-llm did not write", CHOOSE)


def _tree(path: Path, option: str) -> set[str]:
    """Relative paths of everything under ``path`` (folders end with '/'); links are not followed."""
    found: set[str] = set()
    try:
        for root, dirs, files in os.walk(path, onerror=_raise):
            rel = Path(root).relative_to(path)
            found.update((rel / d).as_posix() + "/" for d in dirs)
            found.update((rel / f).as_posix() for f in files)
    except OSError as exc:
        raise InputError(f"cannot look inside {option} {path}: {exc.strerror}", CHOOSE) from None
    return found


def _raise(exc: OSError) -> None:
    raise exc


def _owned_files(path: Path) -> set[str] | None:
    """The entries our manifest in ``path`` lists (folders included), or None if it has none."""
    owner = path / OWNER_FILE
    try:
        if not stat.S_ISREG(os.lstat(owner).st_mode):
            return None
        record = json.loads(owner.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("tool") != OWNER_TOOL or not isinstance(record.get("files"), list):
        return None
    files = {str(f) for f in record["files"]}
    folders = {p.as_posix() + "/" for f in files for p in Path(f).parents if p != Path(".")}
    return files | folders


def write_owner_manifest(folder: Path, kind: str) -> None:
    """Record every file now under ``folder`` as ppc-llm's (written last, before publishing)."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != OWNER_FILE)
    record = {"tool": OWNER_TOOL, "kind": kind, "files": files}
    (folder / OWNER_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def check_inputs_outside(output: Path, inputs: Iterable[Path | None], option: str = "--output") -> None:
    """Refuse when an input is ``output`` or lies inside it (device and inode, not names)."""
    try:
        out = os.stat(output)
    except OSError:
        return  # nothing there yet: it holds no input
    target = (out.st_dev, out.st_ino)
    for given in inputs:
        if given is None:
            continue
        for place in _self_and_parents(given):
            if place == target:
                raise UsageError(f"{option} {output} would replace the input {given}",
                                 "write the output somewhere else than the input")


def _self_and_parents(path: Path) -> list[tuple[int, int]]:
    try:
        real = Path(os.path.realpath(path))
    except OSError:
        return []
    found = []
    for place in (real, *real.parents):
        try:
            info = os.stat(place)
        except OSError:
            continue
        found.append((info.st_dev, info.st_ino))
    return found

