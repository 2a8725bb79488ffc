"""--emit-source bundles compiled the way their README says (make), with gcc, clang and tcc at
-std=c99 -pedantic -Wall -Wextra -Werror, and run under QEMU (or natively) for the golden cases."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import GoldenCase
from toolkit.emulate import run_user
from toolkit.targets import Target

from .conftest import cli, target

STRICT = "-std=c99 -pedantic -Wall -Wextra -Werror -O2"

# (bundle's target, compiler): the make variables for it and the profile that runs the result.
# tcc (a small strict C compiler standing in for old ones) has no PowerPC back end: it builds the
# bundle natively with the scalar kernel (SIMD=0) and the result runs on the host.
CASES = {
    ("g4", "gcc"): ({"CC": "powerpc-linux-gnu-gcc", "LDFLAGS": "-static"}, "g4"),
    ("g4", "clang"): ({"CC": "clang --target=powerpc-linux-gnu", "LDFLAGS": "-static"}, "g4"),
    ("g4", "tcc"): ({"CC": "tcc", "SIMD": "0", "CPUFLAGS": "", "FPFLAGS": ""}, "host"),
    ("xenon", "gcc"): ({"CC": "powerpc64-linux-gnu-gcc", "LDFLAGS": "-static"}, "xenon"),
    ("g3", "clang"): ({"CC": "clang --target=powerpc-linux-gnu", "LDFLAGS": "-static"}, "g3"),
}
PACKAGES = {"gcc": "gcc", "clang": "clang", "tcc": "tcc"}


def _make(bundle: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    argv = ["make", "-C", str(bundle), f"CFLAGS={STRICT}", *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(argv, capture_output=True, timeout=600, check=False)


@pytest.mark.parametrize(("name", "compiler"), sorted(CASES))
def test_bundle_compiles_and_passes_golden(name: str, compiler: str, tmp_path: Path, models: dict[str, Path],
                                           golden: list[GoldenCase]) -> None:
    variables, runner_name = CASES[(name, compiler)]
    assert shutil.which(variables["CC"].split()[0]), f"{compiler} is missing: apt-get install {PACKAGES[compiler]}"
    bundle = tmp_path / name
    made = cli("build", "--target", name, "--emit-source", str(bundle))
    assert made.returncode == 0, made.stderr.decode()
    assert {"Makefile", "README", "ppcllm.c", "main.c"} <= {p.name for p in bundle.iterdir()}
    result = _make(bundle, variables)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-3000:]
    assert f"-std=c99 -pedantic".encode() in result.stdout
    runner: Target = target(runner_name)
    if (bundle / "ppcllm-kerneltest").exists():
        test = run_user(runner, bundle / "ppcllm-kerneltest", [], timeout=300)
        assert test.returncode == 0 and b"MISMATCH" not in test.stdout, test.stdout.decode()
    for case in golden:
        run = run_user(runner, bundle / "ppcllm", [str(models[runner_name]), *case.engine_args()], timeout=600)
        assert run.returncode == 0, run.stderr.decode()
        assert run.stdout == case.expected
        assert runner.name.encode() in run.stderr or name.encode() in run.stderr


def test_bundle_for_a_target_without_simd_has_no_altivec_rules(tmp_path: Path) -> None:
    made = cli("build", "--target", "g3", "--emit-source", str(tmp_path / "g3"))
    assert made.returncode == 0, made.stderr.decode()
    makefile = (tmp_path / "g3" / "Makefile").read_text()
    assert "maltivec" not in makefile and "-mcpu=750" in makefile
    assert not (tmp_path / "g3" / "kernels_altivec.c").exists()
