"""The build plan (toolkit/buildplan.py) for every profile, and everything made from it: the
rendered files, the toolchain's commands, the bundle's Makefile, the fuzz and guest builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit import buildplan, fuzz, toolchain
from toolkit.bundle import bundle_files, makefile_context
from toolkit.buildplan import APPLE_GCC4, COMMON_CFLAGS, ENGINE_PROGRAM, KERNELTEST_PROGRAM, map_flags, plan
from toolkit.render import render
from toolkit.targets import available_targets, load_target

ALL_TARGETS = available_targets()  # derived from targets/*.toml


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_the_plan_is_what_render_and_the_programs_use(name: str) -> None:
    target = load_target(name)
    built, sources = plan(target), render(target)
    assert [f.name for f in sources.files] == [s.name for s in built.sources]
    assert [f.simd for f in sources.files] == [s.simd for s in built.sources]
    assert sources.programs == built.programs
    assert any(s.simd for s in built.sources) == target.has_simd
    names = {s.name for s in built.c_sources}
    for program in built.programs:
        assert set(program.sources) <= names and len(set(program.sources)) == len(program.sources)
    engine = built.program(ENGINE_PROGRAM)
    front = tuple(s.name for s in built.c_sources if s.group == "front")
    assert front == ("cli_chat.c",)
    assert engine.sources == (engine.entry, *front, *(s.name for s in built.library))  # main, its chat, the library
    assert engine.entry not in {s.name for s in built.library}
    assert (KERNELTEST_PROGRAM in {p.name for p in built.programs}) == target.has_simd


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_every_source_gets_the_c_policy_the_cpu_flags_and_its_simd_flags(name: str) -> None:
    target = load_target(name)
    built = plan(target)
    for source in built.c_sources:
        want = COMMON_CFLAGS + target.toolchain.cflags + (target.toolchain.simd_cflags if source.simd else ())
        assert built.cflags(source) == want
        argv = toolchain.compile_argv(built, "cc", source, Path("/s"), Path("/o.o"))
        assert argv == ["cc", *want, "-ffile-prefix-map=/s=.", "-c", source.name, "-o", Path("/o.o")]
    assert "-Wextra" in COMMON_CFLAGS and "-Werror" in COMMON_CFLAGS


def test_g3g4_kernel_file_is_built_for_the_7450_everywhere() -> None:
    """The bundle once compiled it with -mcpu=750 -mno-altivec -maltivec (no -mcpu=7450)."""
    built = plan(load_target("g3g4"))
    simd = next(s for s in built.c_sources if s.simd)
    flags = built.cflags(simd)
    assert flags[-3:] == ("-mcpu=7450", "-maltivec", "-mabi=altivec")
    assert map_flags(flags, APPLE_GCC4)[-2:] == ("-mcpu=7450", "-maltivec")
    makefile = bundle_files(load_target("g3g4"))["Makefile"]
    assert "SIMD_CFLAGS = -mcpu=7450 -maltivec -mabi=altivec" in makefile
    assert "SIMD_CFLAGS = -mcpu=7450 -maltivec\n" in makefile  # Darwin


def test_apple_gcc4_mapping_replaces_drops_and_keeps() -> None:
    flags = ("-std=c99", "-Werror", "-ffp-contract=off", "-mcpu=970", "-mno-vsx", "-maltivec", "-mabi=altivec")
    assert map_flags(flags, APPLE_GCC4) == ("-std=c99", "-mno-fused-madd", "-mcpu=970", "-maltivec")
    assert map_flags(("-static",), APPLE_GCC4) == ()
    assert all(m.reason for m in APPLE_GCC4) and len({m.flag for m in APPLE_GCC4}) == len(APPLE_GCC4)


@pytest.mark.parametrize("name", ALL_TARGETS)
def test_the_makefile_has_a_rule_per_object_and_program_of_the_plan(name: str) -> None:
    target = load_target(name)
    built, makefile = plan(target), bundle_files(target)["Makefile"]
    flags = makefile_context(target)["flags"]
    assert isinstance(flags, dict)
    assert flags["cflags"] == " ".join(buildplan.C_POLICY) and flags["fpflags"] == " ".join(buildplan.FP_POLICY)
    for source in built.c_sources:
        assert f"\n{source.obj}: {source.name} $(HEADERS)\n\t$(CC) $(" in makefile
    for program in built.programs:
        assert f"\n{program.name}: " in makefile
    assert "-Wextra" in makefile and "\t$(CC)" in makefile


def test_fuzz_builds_link_the_engine_library_with_the_plans_flags_first() -> None:
    built = plan(load_target(fuzz.FUZZ_TARGET))
    flags = fuzz.fuzz_cflags(built)
    assert flags[:len(built.base_cflags)] == built.base_cflags
    assert flags[len(built.base_cflags):] == fuzz.FUZZ_CFLAGS + fuzz.SANITIZE
    assert not any(s.simd for s in built.library)  # one command per harness: no file with flags of its own


@pytest.mark.parametrize("name", [n for n in ALL_TARGETS if load_target(n).system is not None])
def test_the_guest_init_is_built_with_the_c_policy_and_linked_static(name: str) -> None:
    target = load_target(name)
    flags = buildplan.standalone_flags(target)
    assert flags[:len(COMMON_CFLAGS)] == COMMON_CFLAGS and flags.count("-static") == 1
    assert set(target.toolchain.cflags) <= set(flags)
