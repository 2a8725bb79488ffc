"""The toolkit's cache: builds, converted models and other outputs, keyed by what made them.

It is the one content cache: ``builds`` (toolchain.py), ``models`` (pipeline.py), ``bench`` and
``plugins`` (bench.py), ``kernels`` and ``system`` (the guest kernel and /init, system/), and the
fuzz builds (fuzz/, under its own work folder).

An entry is a folder ``ROOT/KIND/NAME`` (NAME carries a hash of the inputs). It holds its files
and, written last, a stamp (``.stamp.json``): the kind and name, the toolkit version, what the
entry was made from (the inputs' hashes and names), and the size and SHA-256 of every file. An
entry is trusted only after its stamp checks out: every file present, of its size and its hash
(the cost is one read of the entry, linear in its size). A damaged entry (a file truncated,
changed or missing, a stamp missing or broken) is named on stderr in one line, removed and made
again.

Entries are made in a locked staging folder beside their place and published in one rename
(toolkit/fsutil.py): two processes making the same entry at once both succeed, and the second
one uses the first one's (identical) entry. A staging folder left by a killed run is removed by
the next run that looks in that folder.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from . import __version__
from .errors import InputError
from .fsutil import OLD_SUFFIX, atomic_write_bytes, sha256_file, staging, sweep

STAMP = ".stamp.json"
STAMP_VERSION = 1
CACHE_HINT = "set PPC_LLM_CACHE to a writable folder with free space (a relative path is taken from here)"
_noted: set[str] = set()


def cache_root() -> Path:
    """$PPC_LLM_CACHE (a relative one from the working directory), else $XDG_CACHE_HOME/ppc-llm,
    else ~/.cache/ppc-llm; always absolute. A relative $XDG_CACHE_HOME is invalid (XDG base
    directory spec) and ignored, with one note on stderr."""
    explicit = os.environ.get("PPC_LLM_CACHE")
    if explicit:
        return Path(os.path.abspath(explicit))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and not os.path.isabs(xdg):
        if xdg not in _noted:
            _noted.add(xdg)
            print(f"note: XDG_CACHE_HOME={xdg} is not an absolute path and is ignored (XDG spec); "
                  f"using ~/.cache", file=sys.stderr, flush=True)
        xdg = None
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return Path(os.path.abspath(base / "ppc-llm"))


def _cache_error(path: Path, exc: OSError) -> InputError:
    return InputError(f"the cache folder {path} cannot be used: {exc.strerror}", CACHE_HINT)


def entry_files(folder: Path) -> dict[str, dict[str, object]]:
    """Relative path -> {bytes, sha256} of every file under ``folder`` but the stamp."""
    files: dict[str, dict[str, object]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel != STAMP and path.is_file():
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def write_stamp(folder: Path, kind: str, name: str, inputs: Mapping[str, str]) -> None:
    """The stamp of a filled entry: written last, once every file is in place."""
    stamp = {"stamp": STAMP_VERSION, "kind": kind, "name": name, "toolkit": __version__,
             "inputs": dict(sorted(inputs.items())), "files": entry_files(folder)}
    atomic_write_bytes(folder / STAMP, (json.dumps(stamp, indent=2, sort_keys=True) + "\n").encode())


def check(folder: Path, kind: str, name: str) -> str | None:
    """What is wrong with the entry at ``folder`` (None: nothing): stamp, then each file's
    presence, size and SHA-256."""
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no stamp"
    except (OSError, ValueError):
        return "stamp unreadable"
    files = stamp.get("files") if isinstance(stamp, dict) else None
    if not isinstance(files, dict) or stamp.get("kind") != kind or stamp.get("name") != name or not files:
        return "stamp malformed"
    for rel, want in sorted(files.items()):
        path = folder / rel
        if not isinstance(want, dict) or not path.is_file():
            return f"{rel} missing"
        if path.stat().st_size != want.get("bytes"):
            return f"{rel} has {path.stat().st_size} bytes, stamp says {want.get('bytes')}"
        if sha256_file(path) != want.get("sha256"):
            return f"{rel} content changed"
    return None


def lookup(root: Path, kind: str, name: str) -> Path | None:
    """The entry's folder when it exists and checks out; a damaged one is named and removed."""
    folder = root / kind / name
    sweep(folder.parent)
    if not os.path.lexists(folder):
        return None
    problem = check(folder, kind, name) if folder.is_dir() else "not a folder"
    if problem is None:
        return folder
    print(f"cache: damaged entry {folder} ({problem}), rebuilding", file=sys.stderr, flush=True)
    return None


def obtain(root: Path, kind: str, name: str, fill: Callable[[Path], None], inputs: Mapping[str, str]) -> Path:
    """The checked entry ROOT/KIND/NAME, made first by ``fill(folder)`` when it is missing or
    damaged (``fill`` writes its files into the empty staging folder it is given)."""
    found = lookup(root, kind, name)
    return found if found is not None else create(root, kind, name, fill, inputs)


def create(root: Path, kind: str, name: str, fill: Callable[[Path], None], inputs: Mapping[str, str]) -> Path:
    """Make the entry in a staging folder and publish it. Another process's entry published
    first is used when it checks out (it has the same content); a damaged one is replaced."""
    folder = root / kind / name
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(folder.parent, exc) from None
    with staging(folder) as stage:
        if os.path.lexists(folder) and check(folder, kind, name) is not None:
            try:  # the damaged entry goes aside, under this staging's lock, and is removed with it
                folder.rename(stage.path.with_name(stage.path.name + OLD_SUFFIX))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _cache_error(folder, exc) from None
        try:
            fill(stage.path)
            write_stamp(stage.path, kind, name, inputs)
            if not stage.publish(0o755, replace=False) and check(folder, kind, name) is not None:
                stage.publish(0o755, replace=True)
        except OSError as exc:
            raise _cache_error(folder, exc) from None
    return folder
