"""The cache is trusted only after a check (toolkit/cache.py), with real `ppc-llm` processes.

A damaged entry (the engine binary truncated, a byte flipped in the converted model, the build's
manifest or an entry's stamp deleted or corrupted) is named in one stderr line, rebuilt, and the
run prints the text a clean run prints (same seed), exit 0. Two processes on an empty cache both
succeed. A staging folder whose owner was SIGKILLed is removed by the next run, a live one is
not. Relative cache paths, and caches that cannot be used (a file, read-only, full, a name too
long): one error line, exit 3.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from toolkit.cache import STAMP

from .conftest import cli

RUN = ["run-qemu", "--target", "host", "-n", "20", "-s", "1"]
DAMAGED = "cache: damaged entry "


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A cache made by one clean run, and that run's text."""
    root = tmp_path_factory.mktemp("clean") / "cache"
    result = cli(*RUN, cache_dir=root)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() and DAMAGED not in result.stderr.decode()
    return root, result.stdout


def copy_of(clean: tuple[Path, bytes], dest: Path) -> Path:
    shutil.copytree(clean[0], dest, symlinks=True)
    return dest


def entry(root: Path, kind: str) -> Path:
    (found,) = [p for p in (root / kind).iterdir() if not p.name.startswith(".")]
    return found


def _truncate_engine(root: Path) -> None:
    engine = entry(root, "builds") / "ppcllm"
    with engine.open("r+b") as handle:
        handle.truncate(engine.stat().st_size // 2)


def _flip_model_byte(root: Path) -> None:
    model = entry(root, "models") / "model.bin"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x40  # a weight: without the check the engine prints other text, exit 0
    model.write_bytes(bytes(data))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "engine-truncated": (_truncate_engine, "ppcllm has"),
    "model-byte-flipped": (_flip_model_byte, "model.bin content changed"),
    "manifest-deleted": (lambda r: (entry(r, "builds") / "manifest.json").unlink(), "manifest.json missing"),
    "manifest-corrupt": (lambda r: (entry(r, "builds") / "manifest.json").write_text("{not json"),
                         "manifest.json has"),
    "model-stamp-deleted": (lambda r: (entry(r, "models") / STAMP).unlink(), "no stamp"),
    "build-stamp-corrupt": (lambda r: (entry(r, "builds") / STAMP).write_bytes(b"\x00garbage"), "stamp unreadable"),
}


@pytest.mark.parametrize("label", list(DAMAGE))
def test_a_damaged_entry_is_rebuilt_and_the_text_is_right(label: str, clean: tuple[Path, bytes],
                                                          tmp_path: Path) -> None:
    root = copy_of(clean, tmp_path / "cache")
    damage, what = DAMAGE[label]
    kind = "models" if "model" in label else "builds"
    damaged = entry(root, kind)
    damage(root)
    result = cli(*RUN, cache_dir=root)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    notes = [line for line in err.splitlines() if line.startswith(DAMAGED)]
    assert len(notes) == 1 and notes[0].startswith(f"{DAMAGED}{damaged} (") and what in notes[0], err
    assert notes[0].endswith("), rebuilding")
    assert result.stdout == clean[1]
    again = cli(*RUN, cache_dir=root)  # repaired: the next run trusts it silently
    assert again.returncode == 0 and DAMAGED not in again.stderr.decode() and again.stdout == clean[1]


def test_two_processes_on_an_empty_cache_both_succeed(clean: tuple[Path, bytes], tmp_path: Path) -> None:
    env = dict(os.environ, PPC_LLM_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-m", "toolkit", *RUN], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err.decode()
        assert out == clean[1] and b"Traceback" not in err
    for kind in ("models", "builds"):
        assert [p.name for p in (tmp_path / "cache" / kind).iterdir() if p.name.startswith(".")] == []


def stopped_at_stage(root: Path) -> subprocess.Popen[bytes]:
    """A real run that stops, holding its staging folder's lock, at its first staging folder."""
    env = dict(os.environ, PPC_LLM_CACHE=str(root), PPC_LLM_TEST_FAULT="stage:STOP")
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", *RUN], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    deadline, seen = time.monotonic() + 120, b""
    while b"fault point stage reached" not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
        if not chunk:
            proc.kill()
            pytest.fail(f"the run never reached the stage fault point: {seen.decode(errors='replace')}")
        seen += chunk
    return proc


def stagings(root: Path) -> set[str]:
    return {p.name for p in (root / "models").iterdir() if ".stage." in p.name and not p.name.endswith(".lock")}


def test_a_killed_runs_staging_is_removed_and_a_live_ones_is_left(clean: tuple[Path, bytes], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    killed = stopped_at_stage(root)
    dead = stagings(root)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(dead) == 1 and (root / "models" / dead.pop()).is_dir()
    live = stopped_at_stage(root)  # its own sweep removes the dead one
    try:
        held = stagings(root)
        assert len(held) == 1
        result = cli(*RUN, cache_dir=root)
        assert result.returncode == 0 and result.stdout == clean[1], result.stderr.decode()
        assert held <= stagings(root), "a live run's staging folder was taken"
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    result = cli(*RUN, cache_dir=root)  # a cache hit sweeps too
    assert result.returncode == 0 and result.stdout == clean[1], result.stderr.decode()
    assert stagings(root) == set() and [p for p in (root / "models").iterdir() if p.name.startswith(".")] == []


def test_a_relative_ppc_llm_cache_is_taken_from_the_working_directory(clean: tuple[Path, bytes],
                                                                      tmp_path: Path) -> None:
    env = dict(os.environ, PPC_LLM_CACHE="rel", PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-m", "toolkit", *RUN], cwd=tmp_path, env=env, capture_output=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == clean[1]
    assert (tmp_path / "rel" / "models").is_dir() and (tmp_path / "rel" / "builds").is_dir()


def test_a_relative_xdg_cache_home_is_ignored_with_a_note(clean: tuple[Path, bytes], tmp_path: Path) -> None:
    copy_of(clean, tmp_path / "home" / ".cache" / "ppc-llm")
    env = {k: v for k, v in os.environ.items() if k != "PPC_LLM_CACHE"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME="xdg-rel", PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-m", "toolkit", *RUN], cwd=tmp_path, env=env, capture_output=True,
                            timeout=600, check=False)
    err = result.stderr.decode()
    assert result.returncode == 0 and result.stdout == clean[1], err
    assert len([line for line in err.splitlines() if "XDG_CACHE_HOME=xdg-rel" in line]) == 1, err
    assert not (tmp_path / "xdg-rel").exists() and "converting" not in err  # the entries under ~/.cache used


def _mounted(path: Path, options: str) -> bool:
    """A small tmpfs at ``path`` (root only: as the catalogue's full-disk row, else a fallback)."""
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          check=False).returncode == 0


@pytest.mark.parametrize("label", ["a-file", "name-too-long", "read-only", "full"])
def test_an_unusable_cache_is_one_line_and_exit_3(label: str, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    mount = tmp_path / "mnt"
    env: dict[str, str] | None = None
    if label == "a-file":
        root.write_text("a file")
    elif label == "name-too-long":
        root = tmp_path / ("c" * 300)
    elif _mounted(mount, "ro,size=1m" if label == "read-only" else "size=256k"):
        root = mount
    elif label == "read-only":  # not root: no mount, but permissions hold
        root.mkdir(mode=0o555)
    else:  # not root: a full disk simulated where the stamp is written (toolkit/interrupt.py)
        env = dict(os.environ, PPC_LLM_TEST_FAULT="write:ENOSPC")
    try:
        result = cli(*RUN, cache_dir=root, env=env)
        err = result.stderr.decode(errors="replace")
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("+ ", "converting "))]
        assert result.returncode == 3, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert 1 <= len(lines) <= 2 and lines[0].startswith("error: ") and str(root) in lines[0], err
        assert len(lines) == 1 or lines[1].startswith("hint: "), err
        if label == "full":
            assert [p.name for p in (root / "models").iterdir()] == [], "a staging folder was left behind"
    finally:
        if mount.is_dir():
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if label == "read-only" and root.is_dir():
            root.chmod(0o755)  # so pytest can remove it


def test_the_exchange_is_atomic_on_tmpfs(tmp_path: Path) -> None:
    """The publish swaps in one renameat2(RENAME_EXCHANGE) on tmpfs too (tmp_path's file system,
    ext4 here, overlayfs in a container, is the unit test's), so the fallback's missing-name
    moment does not happen there. Not root (no mount): /dev/shm, a tmpfs."""
    from toolkit.fsutil import exchange

    mount = tmp_path / "mnt"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True,
                             check=False).returncode == 0
    base = mount if mounted else Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        (base / "old").mkdir()
        (base / "old" / "f").write_text("old")
        (base / "new").mkdir()
        (base / "new" / "f").write_text("new")
        assert exchange(base / "new", base / "old")
        assert (base / "old" / "f").read_text() == "new" and (base / "new" / "f").read_text() == "old"
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        else:
            shutil.rmtree(base, ignore_errors=True)
