"""Target profiles: the shipped ones load, and bad profiles give errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import InputError, UsageError
from toolkit.targets import available_targets, load_target, load_target_file

GOOD = """
name = "{name}"
description = "test"
word_bits = 32
endian = "big"
simd = "altivec"
ram_mib = 64
hardware_threads = 1
[toolchain]
cc = "cc"
objdump = "objdump"
packages = ["gcc"]
cflags = []
simd_cflags = []
ldflags = []
[elf]
machine = "EM_PPC"
bits = 32
endian = "big"
static = true
"""


def write(tmp_path: Path, text: str, name: str = "t") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(name=name))
    return path


def test_shipped_targets_load() -> None:
    names = available_targets()
    assert {"g4", "xenon", "host"} <= set(names)
    for name in names:
        target = load_target(name)
        assert target.name == name
        assert target.endian in ("big", "little")


def test_g4_and_xenon_profiles_say_what_the_machines_are() -> None:
    g4, xenon = load_target("g4"), load_target("xenon")
    assert (g4.word_bits, g4.endian, g4.simd, g4.ram_mib) == (32, "big", "altivec", 1024)
    assert g4.emulator is not None and g4.emulator.args == ("-cpu", "7447a")
    assert (xenon.word_bits, xenon.hardware_threads, xenon.ram_mib) == (64, 6, 512)
    assert xenon.emulator is not None and "power7" in xenon.emulator.args


def test_targets_are_frozen() -> None:
    target = load_target("g4")
    with pytest.raises(AttributeError):
        target.simd = "none"  # type: ignore[misc]


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "colour = 'blue'\n")
    with pytest.raises(InputError, match=r"t\.toml: .*unknown key 'colour'"):
        load_target_file(path)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("ram_mib = 64", "ram_mib = '64'"))
    with pytest.raises(InputError, match="key 'ram_mib' must be int, not str"):
        load_target_file(path)


def test_nested_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('cc = "cc"', 'cc = "cc"\nccc = "x"'))
    with pytest.raises(InputError, match=r"\[toolchain\] unknown key 'ccc'"):
        load_target_file(path)


def test_missing_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('simd = "altivec"\n', ""))
    with pytest.raises(InputError, match="missing key 'simd'"):
        load_target_file(path)


def test_bad_simd_kind(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('simd = "altivec"', 'simd = "sse"'))
    with pytest.raises(InputError, match="'simd' must be one of"):
        load_target_file(path)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "name = \n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_target_file(path)


def test_unknown_target_lists_available() -> None:
    with pytest.raises(UsageError, match="unknown target 'g9'") as info:
        load_target("g9")
    assert "g4" in (info.value.hint or "")


def test_portability_targets_are_marked_test_only() -> None:
    for name in ("s390x", "mips", "sparc64"):
        profile = load_target(name)
        assert profile.test_only and profile.endian == "big" and profile.simd == "none"
        assert profile.isa is None and profile.emulator is not None and profile.elf.static
    assert not load_target("g4").test_only
