"""The cache's entries (toolkit/cache.py) and the staged publish under them (toolkit/fsutil.py),
in-process: stamps, damage noticed and repaired, another process's entry used, stale stagings
swept while live ones stay, the exchange and its fallback, the cache root's paths."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from toolkit import cache, fsutil
from toolkit.errors import InputError

KIND, NAME = "things", "thing-0123456789abcdef"


def filler(calls: list[int], payload: bytes = b"x" * 5000) -> "object":
    def fill(folder: Path) -> None:
        calls.append(1)
        (folder / "data.bin").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "manifest.json").write_text('{"a": 1}\n', encoding="utf-8")
    return fill


def make(root: Path, calls: list[int]) -> Path:
    return cache.obtain(root, KIND, NAME, filler(calls), {"input_sha256": "ab" * 32})  # type: ignore[arg-type]


def test_an_entry_is_stamped_last_and_reused(tmp_path: Path) -> None:
    calls: list[int] = []
    entry = make(tmp_path, calls)
    stamp = json.loads((entry / cache.STAMP).read_text(encoding="utf-8"))
    assert entry == tmp_path / KIND / NAME and calls == [1]
    assert stamp["inputs"] == {"input_sha256": "ab" * 32} and stamp["kind"] == KIND and stamp["name"] == NAME
    assert set(stamp["files"]) == {"data.bin", "sub/manifest.json"}
    assert stamp["files"]["data.bin"]["bytes"] == 5000
    assert make(tmp_path, calls) == entry and calls == [1]
    assert sorted(p.name for p in (tmp_path / KIND).iterdir()) == [NAME]  # no staging or lock left


def _truncate(entry: Path) -> None:
    with (entry / "data.bin").open("r+b") as handle:
        handle.truncate(100)


def _flip(entry: Path) -> None:
    data = bytearray((entry / "data.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (entry / "data.bin").write_bytes(bytes(data))


DAMAGE = {
    "truncated": (_truncate, "data.bin has 100 bytes"),
    "flipped-byte": (_flip, "data.bin content changed"),
    "file-missing": (lambda e: (e / "sub" / "manifest.json").unlink(), "sub/manifest.json missing"),
    "manifest-corrupt": (lambda e: (e / "sub" / "manifest.json").write_text('{"a": 2}\n'), "content changed"),
    "stamp-missing": (lambda e: (e / cache.STAMP).unlink(), "no stamp"),
    "stamp-corrupt": (lambda e: (e / cache.STAMP).write_text('{"files": '), "stamp unreadable"),
    "stamp-of-another-entry": (lambda e: (e / cache.STAMP).write_text(
        (e / cache.STAMP).read_text().replace(NAME, "other")), "stamp malformed"),
}


@pytest.mark.parametrize("label", sorted(DAMAGE))
def test_a_damaged_entry_is_named_once_removed_and_rebuilt(label: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []
    entry = make(tmp_path, calls)
    damage, what = DAMAGE[label]
    damage(entry)
    capsys.readouterr()
    assert make(tmp_path, calls) == entry and calls == [1, 1]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"cache: damaged entry {entry} (") and what in err[0], err
    assert err[0].endswith("), rebuilding")
    assert cache.check(entry, KIND, NAME) is None and (entry / "data.bin").read_bytes() == b"x" * 5000
    assert sorted(p.name for p in (tmp_path / KIND).iterdir()) == [NAME]


def test_an_entry_published_first_by_another_process_is_used(tmp_path: Path) -> None:
    """While this process fills its staging folder, 'another' one publishes the same entry (here:
    a nested create, which is what a second process does): ours is dropped, theirs is used."""
    calls: list[int] = []
    theirs: list[Path] = []

    def fill(folder: Path) -> None:
        calls.append(1)
        theirs.append(cache.create(tmp_path, KIND, NAME, filler(calls), {}))  # type: ignore[arg-type]
        (folder / "data.bin").write_bytes(b"x" * 5000)

    entry = cache.create(tmp_path, KIND, NAME, fill, {})
    assert theirs == [entry] and len(calls) == 2
    assert cache.check(entry, KIND, NAME) is None and (entry / "sub" / "manifest.json").is_file()  # theirs kept
    assert sorted(p.name for p in (tmp_path / KIND).iterdir()) == [NAME]


def test_a_staging_folder_is_locked_for_its_life(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with fsutil.staging(dest) as stage:
        lock = stage.path.with_name(stage.path.name + fsutil.LOCK_SUFFIX)
        assert stage.path.is_dir() and lock.is_file() and stage.path.parent == tmp_path
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert fsutil.sweep(tmp_path) == [] and stage.path.is_dir()  # a live staging is never taken
        (stage.path / "f").write_text("new")
        stage.publish(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (dest / "f").read_text() == "new"
    assert dest.stat().st_mode & 0o777 == 0o755


def test_a_staging_whose_owner_died_is_swept(tmp_path: Path) -> None:
    """A dead owner's lock is free (the kernel drops a flock with its last descriptor): closing
    the descriptor without cleaning up is what SIGKILL leaves (tests/integration kills for real)."""
    stage = fsutil._make_stage(tmp_path / "out")
    (stage.path / "half").write_text("written")
    os.close(stage._lock_fd)
    assert fsutil.sweep(tmp_path) == [stage.path]
    assert list(tmp_path.iterdir()) == []


def test_the_fallback_side_name_is_restored_after_a_kill_between_the_two_renames(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    stage = fsutil._make_stage(dest)
    side = stage.path.with_name(stage.path.name + fsutil.OLD_SUFFIX)
    side.mkdir()
    (side / "f").write_text("old")  # the old dest, renamed aside; the new one never got in
    os.close(stage._lock_fd)
    fsutil.sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (dest / "f").read_text() == "old"


def test_staged_dir_without_an_exchange_falls_back_to_two_renames(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsutil, "exchange", lambda a, b: False)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "f").write_text("old")
    with fsutil.staged_dir(dest) as work:
        (work / "f").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (dest / "f").read_text() == "new"


def _fs_type(path: Path) -> str:
    """The file system type of the mount holding ``path`` (/proc/self/mountinfo)."""
    best, kind = "", "?"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mount, fstype = fields[4], fields[fields.index("-") + 1]
        if str(path).startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
            best, kind = mount, fstype
    return kind


def test_the_exchange_is_atomic_on_this_file_system(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "f").write_text("a")
    b.write_text("b")  # a folder and a file: one renameat2 swaps them
    assert fsutil.exchange(a, b), f"no RENAME_EXCHANGE on {_fs_type(tmp_path)}"
    assert a.read_text() == "b" and (b / "f").read_text() == "a"
    print(f"exchange used on {_fs_type(tmp_path)} ({tmp_path})")


def test_staged_dir_replaces_and_leaves_nothing_beside(tmp_path: Path) -> None:
    """The one staged publish (fsutil.replace_dir, its former twin, is gone): made, then replaced."""
    dest = tmp_path / "out"
    for text in ("one", "two"):
        with fsutil.staged_dir(dest, 0o755) as work:
            (work / "f").write_text(text)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (dest / "f").read_text() == text
        assert dest.stat().st_mode & 0o777 == 0o755
    assert not hasattr(fsutil, "replace_dir")


def test_a_relative_ppc_llm_cache_is_taken_from_the_working_directory(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PPC_LLM_CACHE", "rel/c")
    assert cache.cache_root() == tmp_path / "rel" / "c"


def test_a_relative_xdg_cache_home_is_ignored_with_one_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PPC_LLM_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-xdg")
    monkeypatch.setattr(cache, "_noted", set())
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "ppc-llm"
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "ppc-llm"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "XDG_CACHE_HOME=relative-xdg" in err[0] and "ignored" in err[0]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "ppc-llm" and capsys.readouterr().err == ""


@pytest.mark.parametrize("label", ["root-is-a-file", "name-too-long"])
def test_an_unusable_cache_is_an_input_error(label: str, tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a folder")
    if label == "name-too-long":
        root = tmp_path / ("n" * 300)
    with pytest.raises(InputError) as caught:
        make(root, [])
    assert caught.value.exit_code == 3 and str(root) in caught.value.message


def test_a_docker_build_is_keyed_by_the_image_id_and_a_hit_starts_no_container(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit import container, toolchain
    from toolkit.targets import load_target

    image = {"id": "sha256:" + "1" * 64}
    built: list[str] = []

    def fake_build(target: object, out_dir: Path, chosen: str, engine: object, sources: object = None) -> None:
        built.append(image["id"])
        out_dir.mkdir()
        (out_dir / "ppcllm").write_bytes(b"\x7fELF fake")
        (out_dir / toolchain.MANIFEST).write_text('{"toolchain": "docker"}\n')

    def no_container(self: object) -> None:
        raise AssertionError("a container was started")

    monkeypatch.setattr(container, "choose_engine", lambda engine=None: "docker")
    monkeypatch.setattr(container, "ensure_image", lambda engine, packages: "ppc-llm-toolchain:tag")
    monkeypatch.setattr(container, "image_id", lambda engine, tag: image["id"])
    monkeypatch.setattr(container.ContainerRunner, "__enter__", no_container)
    monkeypatch.setattr(toolchain, "build", fake_build)
    g4 = load_target("g4")
    first = toolchain.cached_build(g4, tmp_path, "docker")
    assert toolchain.cached_build(g4, tmp_path, "docker").directory == first.directory and len(built) == 1
    image["id"] = "sha256:" + "2" * 64  # another image: another entry
    assert toolchain.cached_build(g4, tmp_path, "docker").directory != first.directory and len(built) == 2
