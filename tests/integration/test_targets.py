"""The PowerPC target profiles and the ISA audit, with real cross-builds: the audit passes on every
target, fails on binaries built for the wrong CPU, and QEMU's CPU models agree with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from toolkit.elfcheck import check_engine_code
from toolkit.emulate import run_user
from toolkit.errors import BuildError
from toolkit.isa import CLASSES
from toolkit.targets import Target
from toolkit.toolchain import Build, build

from .conftest import PPC_TARGETS, target


def _variant(name: str, simd: str | None = None, **toolchain: tuple[str, ...]) -> Target:
    profile = target(name)
    profile = dataclasses.replace(profile, toolchain=dataclasses.replace(profile.toolchain, **toolchain))
    return dataclasses.replace(profile, simd=simd) if simd else profile


@pytest.mark.parametrize("name", PPC_TARGETS)
def test_audit_passes_and_counts_the_kernel(name: str, builds: dict[str, Build]) -> None:
    profile = target(name)
    assert profile.isa is not None
    code = builds[name].engine_code
    assert code["functions"] >= 15 and code["instructions"] > 1000
    for mnemonic in profile.isa.require:
        assert code[mnemonic] >= 1, mnemonic
    assert not [cls for cls in profile.isa.forbid if code.get(cls)]
    if profile.has_simd:
        assert code["altivec"] > 0
    else:
        assert "altivec" not in code
    if profile.word_bits == 64:
        assert code["ppc64"] > 0  # the audit sees 64-bit code where it is allowed


# Each case: a build for the wrong CPU, and the phrase the audit must fail with.
WRONG_CPU = {
    "g3-with-altivec-kernel": (lambda: _variant("g3", simd="altivec", simd_cflags=("-maltivec", "-mabi=altivec")),
                               CLASSES["altivec"]),
    "xenon-built-for-power8": (lambda: _variant("xenon", cflags=("-mcpu=power8",)), CLASSES["vsx"]),
    "g4-with-64-bit-instructions": (lambda: _variant("g4", cflags=("-mcpu=7450", "-mno-altivec", "-mpowerpc64")),
                                    CLASSES["ppc64"]),
    "g4-without-its-simd-kernel": (lambda: _variant("g4", simd="none"), "no vmaddfp"),
}


@pytest.mark.parametrize("case", sorted(WRONG_CPU))
def test_audit_fails_on_a_build_for_the_wrong_cpu(case: str, tmp_path: Path) -> None:
    make, phrase = WRONG_CPU[case]
    with pytest.raises(BuildError, match="ISA audit") as failure:
        build(make(), tmp_path / "out")
    assert phrase in failure.value.message
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_audit_fails_on_a_g4_binary_checked_as_g3(builds: dict[str, Build]) -> None:
    objects = sorted((builds["g4"].directory / "obj").glob("*.o"))
    with pytest.raises(BuildError, match="AltiVec"):
        check_engine_code(builds["g4"].engine, objects, target("g3"))
    check_engine_code(builds["g4"].engine, objects, target("g4dual"))  # same CPU family: passes


def test_qemu_g3_cpu_refuses_altivec_code(builds: dict[str, Build], models: dict[str, Path]) -> None:
    """What the audit protects against is real: the G4 binary dies on the emulated 750."""
    g3 = target("g3")
    kerneltest = builds["g4"].kerneltest
    assert kerneltest is not None
    result = run_user(g3, kerneltest, [], timeout=120)
    assert result.returncode != 0
    assert b"bit-identical" not in result.stdout
    ok = run_user(g3, builds["g3"].engine, [str(models["g3"]), "-t", "0", "-n", "8"], timeout=120)
    assert ok.returncode == 0, ok.stderr.decode()
