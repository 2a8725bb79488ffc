"""--emit-source bundles compiled the way their README says (make), with gcc, clang and tcc at
-std=c99 -pedantic -Wall -Wextra -Werror, and run under QEMU (or natively) for the golden cases."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import GoldenCase
from toolkit.buildplan import APPLE_GCC4, BUNDLE_LINK, THREAD_LIBS, BuildPlan, FlagMap, map_flags, plan
from toolkit.bundle import bundle_files
from toolkit.emulate import run_user
from toolkit.targets import Target, available_targets, load_target
from toolkit.toolchain import compile_argv, link_argv, prefix_map

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


# ----------------------------------------------------------------------- the bundle's flags = the plan's

ALL_TARGETS = available_targets()  # every profile in targets/: a new one is checked without editing a list


def _dry_run(bundle: Path, *variables: str) -> list[list[str]]:
    """The commands `make -n` would run in ``bundle`` (every rule, as if nothing were built), split."""
    result = subprocess.run(["make", "-n", "-B", "-C", str(bundle), *variables], capture_output=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr.decode()
    return [shlex.split(line) for line in result.stdout.decode().splitlines() if line and not line.startswith("make")]


def _write_bundle(target_name: str, dest: Path) -> Path:
    for name, text in bundle_files(load_target(target_name)).items():
        (dest / name).write_text(text, encoding="utf-8")
    return dest


def _compiles(commands: list[list[str]], cc: str) -> dict[str, list[str]]:
    """Object -> the flags of the command that compiles it (between the compiler and ``-c``)."""
    found: dict[str, list[str]] = {}
    for argv in commands:
        if argv[0] == cc and "-c" in argv:
            at = argv.index("-c")
            assert argv[at + 2] == "-o" and argv[at + 3] not in found, argv
            found[argv[at + 3]] = argv[1:at]
    return found


def _links(commands: list[list[str]], cc: str) -> dict[str, list[str]]:
    return {argv[argv.index("-o") + 1]: argv for argv in commands if argv[0] == cc and "-c" not in argv}


def _toolchain_compiles(built: BuildPlan, cc: str, src: Path, mapping: tuple[FlagMap, ...] = ()) -> dict[str, list[str]]:
    """Object -> the flags toolchain.compile_argv gives it, less the prefix map, spelled through ``mapping``."""
    flags = {}
    for source in built.c_sources:
        argv = [str(a) for a in compile_argv(built, cc, source, src, src / source.obj)]
        assert argv[-4:] == ["-c", source.name, "-o", str(src / source.obj)] and prefix_map(src) in argv
        plain = tuple(a for a in argv[1:-4] if a != prefix_map(src))
        flags[source.obj] = list(map_flags(plain, mapping))
    return flags


def _toolchain_links(built: BuildPlan, cc: str, work: Path, mapping: tuple[FlagMap, ...]) -> dict[str, list[str]]:
    """Program -> toolchain.link_argv in the bundle's terms: objects by name, the bundle's link mapping."""
    threads = list(THREAD_LIBS) if built.target.hardware_threads > 1 else []
    links = {}
    for program in built.programs:
        argv = [str(a) for a in link_argv(built, cc, program, work)]
        objects = [Path(a).name if a.startswith(str(work / "obj")) else a for a in argv]
        out = objects.index("-o")
        objects[out + 1] = program.name
        links[program.name] = [cc, *map_flags(tuple(objects[1:out]), BUNDLE_LINK + mapping), *objects[out:],
                               *threads]
    return links


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_bundle_compiles_each_object_with_the_toolchains_flags(name: str, tmp_path: Path) -> None:
    """`make -n` with the target's cross-gcc runs, for each object, exactly the compiler flags the
    toolchain runs (the toolchain adds only its -ffile-prefix-map); links as the toolchain does
    but dynamically (BUNDLE_LINK) and, threaded, with -lpthread."""
    built, cc = plan(load_target(name)), load_target(name).toolchain.cc
    bundle = _write_bundle(name, tmp_path)
    commands = _dry_run(bundle, f"CC={cc}")
    assert _compiles(commands, cc) == _toolchain_compiles(built, cc, tmp_path / "src")
    assert _links(commands, cc) == _toolchain_links(built, cc, tmp_path / "work", ())
    assert any("kernels_" in obj for obj in _compiles(commands, cc))  # the rules were found at all


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_bundle_on_darwin_uses_the_documented_apple_gcc_mapping(name: str, tmp_path: Path) -> None:
    """On Mac OS X (UNAME_S=Darwin), the same plan spelled through buildplan.APPLE_GCC4, and every
    entry of the mapping that applies is listed in the Makefile with its reason."""
    built, cc = plan(load_target(name)), "gcc-4.0"
    bundle = _write_bundle(name, tmp_path)
    commands = _dry_run(bundle, f"CC={cc}", "UNAME_S=Darwin")
    compiles = _compiles(commands, cc)
    assert compiles == _toolchain_compiles(built, cc, tmp_path / "src", APPLE_GCC4)
    assert _links(commands, cc) == _toolchain_links(built, cc, tmp_path / "work", APPLE_GCC4)
    assert not {m.flag for m in APPLE_GCC4} & {flag for flags in compiles.values() for flag in flags}
    makefile = (bundle / "Makefile").read_text()
    for m in APPLE_GCC4:
        if m.flag in built.base_cflags + built.simd_cflags:
            assert f"#   {m.flag} -> " in makefile and m.reason in makefile


@pytest.mark.parametrize("name", [n for n in ALL_TARGETS if load_target(n).has_simd])
def test_bundle_simd_0_drops_the_simd_objects_and_programs(name: str, tmp_path: Path) -> None:
    built, cc = plan(load_target(name)), load_target(name).toolchain.cc
    commands = _dry_run(_write_bundle(name, tmp_path), f"CC={cc}", "SIMD=0")
    compiles = _compiles(commands, cc)
    scalar = [p for p in built.programs if not p.simd_only]
    assert set(compiles) == {built.source(n).obj for p in scalar for n in p.sources if not built.source(n).simd}
    assert set(_links(commands, cc)) == {p.name for p in scalar}
    define = f"-DPPCLLM_SIMD_{load_target(name).simd.upper()}=0"
    assert all(flags[-1] == define for flags in compiles.values())


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_bundle_builds_warning_free_with_its_own_flags(name: str, tmp_path: Path) -> None:
    """`make CC=<the target's cross-gcc>` with the Makefile's own flags (-Wall -Wextra -Werror, the
    plan's): it builds, and the compiler says nothing."""
    cc = load_target(name).toolchain.cc
    assert shutil.which(cc), f"{cc} is missing: apt-get install {load_target(name).toolchain.packages[0]}"
    bundle = _write_bundle(name, tmp_path)
    result = subprocess.run(["make", "-C", str(bundle), f"-j{os.cpu_count() or 1}", f"CC={cc}"], capture_output=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"-Wextra" in result.stdout and b"warning" not in result.stderr.lower(), result.stderr.decode()[-3000:]
    assert all((bundle / p.name).is_file() for p in plan(load_target(name)).programs)
