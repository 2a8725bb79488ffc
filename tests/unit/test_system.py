"""Full-system pieces that need no process: the initramfs writer, the kernel-config check, the
reading of /init's report and of the console, and the target's [system] table."""

from __future__ import annotations

import io
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.emulate import EngineArgs
from toolkit.errors import InputError, UsageError
from toolkit.system import diagnose, guest_entries, parse_report, program_stderr, qemu_argv
from toolkit.system import initramfs
from toolkit.system.kernel import dropped_options, kernel_key, parse_config, system_of
from toolkit.targets import load_target, load_target_file

CONSOLE = (b"[    0.000000] Linux version 6.1\r\n\r\nppcllm-init: start: /ppcllm/engine\r\n"
           b"achieved tok/s: 12.5\r\n\r\nppcllm-init: result exit=0 signal=0 maxrss_kib=2048 wall_ms=900 "
           b"mem_total_kib=1030000 boot_ms=1234\r\n")


def test_cpio_round_trip_and_layout(tmp_path: Path) -> None:
    host_file = tmp_path / "model.bin"
    host_file.write_bytes(b"x" * 5)
    entries = [initramfs.Entry.directory("dev"), initramfs.Entry.char_device("dev/console", 5, 1),
               initramfs.Entry.file("init", b"\x7fELF", executable=True), initramfs.Entry.file("m.bin", host_file)]
    out = io.BytesIO()
    initramfs.write(out, entries)
    archive = out.getvalue()
    assert len(archive) % 4 == 0
    members = initramfs.read_names(archive)
    assert [(n, d) for n, _, d in members] == [("dev", b""), ("dev/console", b""), ("init", b"\x7fELF"),
                                               ("m.bin", b"xxxxx")]
    modes = {n: m for n, m, _ in members}
    assert stat.S_ISDIR(modes["dev"]) and stat.S_ISCHR(modes["dev/console"])
    assert modes["init"] & 0o111 and not modes["m.bin"] & 0o111
    assert archive.endswith(b"TRAILER!!!\0\0\0\0")  # name, NUL, padding to 4 bytes


def test_cpio_header_fields() -> None:
    raw = initramfs.header(initramfs.Entry.char_device("dev/console", 5, 1), 7)
    assert raw[:6] == b"070701" and len(raw) % 4 == 0
    fields = [int(raw[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    assert fields[0] == 7 and fields[9:11] == [5, 1] and fields[11] == len(b"dev/console\0")


def test_guest_entries_carry_argv_and_channel(tmp_path: Path) -> None:
    files = {n: tmp_path / n for n in ("init", "engine", "model.bin")}
    for path in files.values():
        path.write_bytes(b"")
    entries = {e.name: e for e in guest_entries(files["init"], files["engine"], files["model.bin"],
                                                EngineArgs(prompt=b"Once upon a time\xff", seed=7), "hvc1")}
    assert entries["ppcllm/argv"].data == b"/ppcllm/engine\0/ppcllm/model/model.bin\0-s\x007\0-i\0Once upon a time\xff\0"
    assert entries["ppcllm/channel"].data == b"/dev/hvc1\n"
    assert stat.S_ISCHR(entries["dev/console"].mode)
    assert entries["ppcllm/model/model.bin"].data == files["model.bin"]
    assert not any(name.startswith("ppcllm/prompt") for name in entries)


def test_guest_entries_carry_the_prompt_file(tmp_path: Path) -> None:
    """-f: the file travels in the initramfs and the engine is given its guest path."""
    files = {n: tmp_path / n for n in ("init", "engine", "model.bin", "my prompt.txt")}
    for path in files.values():
        path.write_bytes(b"")
    args = EngineArgs(prompt_file=files["my prompt.txt"], steps=5)
    entries = {e.name: e for e in guest_entries(files["init"], files["engine"], files["model.bin"], args, "hvc1")}
    assert entries["ppcllm/argv"].data == b"/ppcllm/engine\0/ppcllm/model/model.bin\0-n\x005\0-f\0/ppcllm/prompt/prompt.txt\0"
    assert entries["ppcllm/prompt/prompt.txt"].data == files["my prompt.txt"]


def test_config_check_finds_dropped_options() -> None:
    fragment = "# comment\nCONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=\"x\"\n"
    final = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=\"x\"\n"
    assert parse_config(fragment) == {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n", "CONFIG_D": '"x"'}
    assert dropped_options(fragment, final) == ["CONFIG_B=y (now n)", "CONFIG_C=n (now y)"]
    assert dropped_options(fragment, fragment) == []


def test_kernel_key_follows_fragment_source_and_compiler() -> None:
    system = system_of(load_target("g4"))
    base = kernel_key(system, "a" * 64, "12.2.0")
    assert base == kernel_key(system, "a" * 64, "12.2.0")
    assert base != kernel_key(system, "b" * 64, "12.2.0")
    assert base != kernel_key(system, "a" * 64, "13.1.0")
    other = system_of(load_target("xenon"))
    assert base != kernel_key(other, "a" * 64, "12.2.0")


def test_report_and_program_stderr_from_console() -> None:
    code, sig, figures = parse_report(CONSOLE) or (None, None, None)
    assert (code, sig) == (0, 0)
    assert figures is not None
    assert (figures.peak_rss_kib, figures.program_ms, figures.mem_total_kib, figures.boot_ms) == (2048, 900, 1030000, 1234)
    assert program_stderr(CONSOLE) == b"achieved tok/s: 12.5\n"
    assert parse_report(b"no marker here") is None


@pytest.mark.parametrize(("console", "reason", "expected"), [
    (b"Kernel panic - not syncing: Attempted to kill init!\r\n", "guest-reset", "panicked on g4: Kernel panic"),
    (b"booting...", None, "timed out after 60 s on g4 (it did not power off)"),
    (b"booting...", "guest-shutdown", "before /init started"),
    (b"ppcllm-init: start: x\r\n", "guest-shutdown", "without /init's result line"),
    (b"\nppcllm-init: error: No such file or directory\r\n", "guest-shutdown", "/init failed on g4: No such"),
])
def test_diagnose_names_the_failure(console: bytes, reason: str | None, expected: str) -> None:
    assert expected in diagnose(load_target("g4"), console, reason, 60)


def test_qemu_argv_from_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("toolkit.system.require_tool", lambda command, package: f"/usr/bin/{command}")
    target = load_target("g4")
    argv = qemu_argv(target, system_of(target), tmp_path / "vmlinux", tmp_path / "i.cpio", tmp_path / "c.log",
                     tmp_path / "o.bin")
    assert argv[:5] == ["/usr/bin/qemu-system-ppc", "-M", "mac99", "-cpu", "7447a"]
    assert argv[argv.index("-m") + 1] == "1024"
    assert "console=ttyPZ0" in argv[argv.index("-append") + 1]
    assert argv.count("-serial") == 2 and "-no-reboot" in argv
    xenon = load_target("xenon")
    assert qemu_argv(xenon, system_of(xenon), tmp_path / "v", tmp_path / "i", tmp_path / "c",
                     tmp_path / "o")[argv.index("-m") + 1] == "512"


def test_host_has_no_system_machine() -> None:
    with pytest.raises(UsageError, match="no full-system machine"):
        system_of(load_target("host"))


def test_system_table_is_validated(tmp_path: Path) -> None:
    text = (Path(load_target("g4").source)).read_text(encoding="utf-8")
    bad_key = tmp_path / "g4.toml"
    bad_key.write_text(text.replace('console = "ttyPZ0"', 'console = "ttyPZ0"\nconsol = "x"'), encoding="utf-8")
    with pytest.raises(InputError, match=r"\[system\] unknown key 'consol'"):
        load_target_file(bad_key)
    bad_type = tmp_path / "g4.toml"
    bad_type.write_text(text.replace("cmdline = []", 'cmdline = "quiet"'), encoding="utf-8")
    with pytest.raises(InputError, match="key 'cmdline' must be list"):
        load_target_file(bad_type)
    no_fragment = tmp_path / "g4.toml"
    no_fragment.write_text(text, encoding="utf-8")  # kernel/mac99.config is not beside this copy
    with pytest.raises(InputError, match="kernel_config 'kernel/mac99.config' does not exist"):
        load_target_file(no_fragment)


def _fake_kernel_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calls: list[Path]) -> Path:
    """cached_kernel with its processes replaced: the needs found, the compiler's version fixed,
    the source tree a folder, and make writing an image and a .config into O=."""
    from toolkit.system import kernel

    tarball = tmp_path / "linux.tar.xz"
    tarball.write_bytes(b"not really a tarball")
    system = system_of(load_target("g4"))
    monkeypatch.setattr(kernel, "system_of", lambda target: replace(system, kernel_source=str(tarball)))
    monkeypatch.setattr(kernel, "kernel_needs", lambda s: [kernel.Need(str(tarball), "p", str(tarball)),
                                                           kernel.Need("cc", "p", "/usr/bin/cc")])
    monkeypatch.setattr(kernel, "compiler_version", lambda cc: "12.2.0")
    monkeypatch.setattr(kernel, "_source_tree", lambda cache, tb, sha, label: tmp_path / "tree")

    def make(system: object, tree: Path, obj: Path, label: str) -> int:
        calls.append(obj)
        obj.mkdir()
        (obj / "vmlinux").write_bytes(b"\x7fELF kernel")
        (obj / ".config").write_text("CONFIG_A=y\n")
        return 3

    monkeypatch.setattr(kernel, "_configure_and_make", make)
    return tmp_path / "cache"


def test_guest_kernel_is_a_checked_cache_entry_built_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from toolkit import cache as cache_mod
    from toolkit.system.kernel import MANIFEST, cached_kernel

    calls: list[Path] = []
    root = _fake_kernel_build(monkeypatch, tmp_path, calls)
    first = cached_kernel(load_target("g4"), root)
    assert first.build_s is not None and first.image.read_bytes() == b"\x7fELF kernel" and len(calls) == 1
    folder = first.image.parent
    assert folder.parent == root / "kernels" and folder.name == f"g4-{first.key[:16]}"
    assert cache_mod.check(folder, "kernels", folder.name) is None
    assert sorted(p.name for p in folder.iterdir()) == sorted([cache_mod.STAMP, MANIFEST, "config", "vmlinux"])
    assert calls[0].parent != folder  # built in a staging folder, published whole
    again = cached_kernel(load_target("g4"), root)
    assert again == replace(first, build_s=None) and len(calls) == 1
    first.image.write_bytes(b"damaged")
    rebuilt = cached_kernel(load_target("g4"), root)
    assert rebuilt.build_s is not None and len(calls) == 2 and rebuilt.image.read_bytes() == b"\x7fELF kernel"
    assert "damaged entry" in capsys.readouterr().err
    assert sorted(p.name for p in (root / "kernels").iterdir()) == [folder.name]  # no staging left


def test_kernel_source_is_unpacked_once_and_published_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from toolkit.errors import BuildError
    from toolkit.system import kernel

    tops = ["linux-source-6.1"]

    def tar(argv: list[object]) -> subprocess.CompletedProcess[bytes]:
        into = Path(str(argv[argv.index("-C") + 1]))
        for top in tops:
            (into / top / "kernel").mkdir(parents=True)
            (into / top / "Makefile").write_text("all:\n")
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr(kernel, "run", tar)
    tree = kernel._source_tree(tmp_path, tmp_path / "linux.tar.xz", "ab" * 32, "kernel g4")
    assert tree == tmp_path / "kernels" / f"source-{'ab' * 8}"
    assert sorted(p.name for p in tree.iterdir()) == ["Makefile", "kernel"]
    assert sorted(p.name for p in tree.parent.iterdir()) == [tree.name]  # no staging left beside it
    tops.append("another")
    assert kernel._source_tree(tmp_path, tmp_path / "linux.tar.xz", "ab" * 32, "kernel g4") == tree  # not again
    with pytest.raises(BuildError, match="does not hold one source folder"):
        kernel._source_tree(tmp_path, tmp_path / "linux.tar.xz", "cd" * 32, "kernel g4")
    assert sorted(p.name for p in tree.parent.iterdir()) == [tree.name]


def test_system_mode_returns_the_one_result_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SystemMode.run with the machine stubbed (it writes a console and a channel as a guest
    would): the same RunResult as user mode, the engine's argv in the initramfs, guest figures in it."""
    import dataclasses

    from toolkit.emulate import EngineArgs, RunResult
    from toolkit.system import SystemMode
    from toolkit.system.machine import Shutdown

    files = {n: tmp_path / n for n in ("init", "engine", "model.bin", "vmlinux")}
    for path in files.values():
        path.write_bytes(b"x")
    seen: dict[str, bytes] = {}

    class FakeMachine:
        def __init__(self, argv: list[str], name: str, parent: Path | None = None) -> None:
            self.argv, self.workdir = argv, tmp_path / "run"

        def __enter__(self) -> "FakeMachine":
            self.workdir.mkdir()
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def run(self, timeout: float, watch: object) -> Shutdown:
            seen["initrd"] = (self.workdir / "initramfs.cpio").read_bytes()
            (self.workdir / "console.log").write_bytes(CONSOLE)
            (self.workdir / "stdout.bin").write_bytes(b"Once upon a time")
            return Shutdown("guest-shutdown", 2.5)

    monkeypatch.setattr("toolkit.system.require_tool", lambda command, package: f"/usr/bin/{command}")
    monkeypatch.setattr("toolkit.system.preflight", lambda target: None)
    monkeypatch.setattr("toolkit.system.cached_kernel", lambda target, cache: type("K", (), {"image": files["vmlinux"]}))
    monkeypatch.setattr("toolkit.system.cached_init", lambda target, cache: files["init"])
    monkeypatch.setattr("toolkit.system.Machine", FakeMachine)
    outs: list[bytes] = []
    result = SystemMode(load_target("g4"), tmp_path).run(files["engine"], EngineArgs(files["model.bin"], steps=4),
                                                         60, out=outs.append)
    assert isinstance(result, RunResult) and result.returncode == 0 and result.wall_s == 0.9
    assert result.stdout == b"".join(outs) == b"Once upon a time" and result.stderr == b"achieved tok/s: 12.5\n"
    assert result.guest is not None and dataclasses.astuple(result.guest) == (2048, 900, 1030000, 1234, 2.5)
    assert b"/ppcllm/engine\0/ppcllm/model/model.bin\0-n\0004\0" in seen["initrd"]
