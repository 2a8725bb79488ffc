"""One binary for the G3 and the G4: the AltiVec kernels are chosen at run time (AT_HWCAP)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from toolkit.toolchain import Build, cached_build
from tests.helpers import GoldenCase, golden_params, require_case

from .conftest import target

CPUS = [("750", "scalar"), ("7447a", "altivec")]  # QEMU's G3 and G4


@pytest.fixture(scope="module")
def g3g4(cache: Path) -> Build:
    return cached_build(target("g3g4"), cache)


def qemu(cpu: str, binary: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    emulator = shutil.which("qemu-ppc")
    assert emulator, "qemu-ppc is missing: apt-get install qemu-user"
    return subprocess.run([emulator, "-cpu", cpu, str(binary), *args], capture_output=True, timeout=600, check=False)


@pytest.mark.parametrize("case", golden_params())
@pytest.mark.parametrize("cpu,kernel", CPUS)
def test_one_binary_gives_the_golden_text_on_g3_and_g4(cpu: str, kernel: str, case: GoldenCase | None, g3g4: Build,
                                                        models: dict[str, Path]) -> None:
    case = require_case(case)
    result = qemu(cpu, g3g4.engine, str(models["g4"]), *case.engine_args())
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
    assert f"({kernel} kernel".encode() in result.stderr


@pytest.mark.parametrize("cpu,kernel", CPUS)
def test_kernel_test_passes_with_the_kernels_each_cpu_gets(cpu: str, kernel: str, g3g4: Build) -> None:
    assert g3g4.kerneltest is not None
    result = qemu(cpu, g3g4.kerneltest)
    text = result.stdout.decode()
    assert result.returncode == 0 and "kerneltest: all" in text, text
    assert f"matmul {kernel} " in text


def test_the_g4_binary_really_needs_altivec(builds: dict[str, Build], models: dict[str, Path]) -> None:
    """The contrast: the G4-only build dies on the G3, the one-binary build does not."""
    assert qemu("750", builds["g4"].engine, str(models["g4"]), "-n", "3").returncode != 0
