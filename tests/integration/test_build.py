"""Real cross-compiles: ELF facts, the AltiVec kernel in the binary, kernel vs scalar under QEMU."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from toolkit.buildplan import plan
from toolkit.elfcheck import check_header, disassemble
from toolkit.emulate import run_user
from toolkit.errors import BuildError
from toolkit.toolchain import Build

from .conftest import SIMD_TARGETS, TARGETS, cli, target


@pytest.mark.parametrize("name", TARGETS)
def test_build_command_writes_checked_binary_and_manifest(name: str, tmp_path: Path, builds: dict[str, Build]) -> None:
    out = tmp_path / "out"
    result = cli("build", "--target", name, "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert b"+ " in result.stderr  # every command is echoed
    manifest = json.loads((out / "manifest.json").read_text())
    profile = target(name)
    assert manifest["target"] == name and manifest["compiler"] == profile.toolchain.cc
    assert "-ffp-contract=off" in manifest["cflags"] and "-Werror" in manifest["cflags"]
    assert manifest["elf"]["endian"] == profile.elf.endian and manifest["elf"]["class"] == str(profile.elf.bits)
    assert (out / "ppcllm").is_file() and (out / "src" / "ppcllm.c").is_file()
    assert len(manifest["source_sha256"]) == 64
    # the same sources and compiler give the same binary as the cached build
    assert manifest["binaries"]["ppcllm"]["sha256"] == builds[name].manifest["binaries"]["ppcllm"]["sha256"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", SIMD_TARGETS)
def test_altivec_kernel_is_in_the_engine(name: str, builds: dict[str, Build]) -> None:
    listing = disassemble(builds[name].engine, target(name))
    kernel = listing["ppcllm_matmul_altivec"]
    assert "vmaddfp" in kernel and "vaddfp" in kernel and "lvx" in kernel
    assert "vmaddfp" not in listing.get("ppcllm_matmul_scalar", [])
    assert builds[name].manifest["engine_code"]["vmaddfp"] >= 4


def test_xenon_engine_code_has_no_vsx(builds: dict[str, Build]) -> None:
    listing = disassemble(builds["xenon"].engine, target("xenon"))
    own = [m for fn, ms in listing.items() if fn.startswith("ppcllm_") or fn == "main" for m in ms]
    assert own and not [m for m in own if re.match(r"(xs|xv|xx|lxv|stxv)", m)]


@pytest.mark.parametrize("name", SIMD_TARGETS)
def test_simd_kernel_matches_scalar_bit_for_bit_under_qemu(name: str, builds: dict[str, Build]) -> None:
    kerneltest = builds[name].kerneltest
    assert kerneltest is not None
    result = run_user(target(name), kerneltest, [], timeout=300)
    text = result.stdout.decode()
    assert result.returncode == 0, text
    assert "MISMATCH" not in text and re.search(r"kerneltest: all \d+ cases bit-identical", text)
    assert text.count("bit-identical") >= 17


def test_elf_check_rejects_a_binary_for_another_target(builds: dict[str, Build]) -> None:
    with pytest.raises(BuildError, match="does not fit target xenon"):
        check_header(builds["g4"].engine, target("xenon"))
    with pytest.raises(BuildError, match="does not fit target g4"):
        check_header(builds["host"].engine, target("g4"))


def test_generated_c_is_warning_free_with_extra_warnings(builds: dict[str, Build], tmp_path: Path) -> None:
    """Stricter than the build: -pedantic too, on the rendered sources of every target."""
    for name in TARGETS:
        profile = target(name)
        src = builds[name].directory / "src"
        built = plan(profile)
        assert sorted(s.name for s in built.c_sources) == sorted(p.name for p in src.glob("*.c"))
        for source in built.c_sources:  # each with the build plan's own flags (its SIMD flags too), and -pedantic
            cmd = [profile.toolchain.cc, *built.cflags(source), "-pedantic", "-c", source.name,
                   "-o", str(tmp_path / source.obj)]
            result = subprocess.run(cmd, capture_output=True, cwd=src, check=False)
            assert result.returncode == 0, f"{name} {source.name}: {result.stderr.decode()}"
