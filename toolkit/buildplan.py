"""The build plan: which files make the engine, which programs link them, and the exact compiler
flags of every source for a target.

Everything that compiles the engine is made from this one description: the host and docker
toolchains (toolkit/toolchain.py), the source bundle's Makefile (toolkit/bundle.py), the fuzz
builds (toolkit/fuzz/) and the guest's /init (toolkit/system/guest.py). A source's flags are the
project's C policy, then the target's ``cflags``, then (a SIMD source only) its ``simd_cflags``;
a program links with the target's ``ldflags`` and ``LIBS``.

For compilers the toolchain does not run (Apple's gcc 4.0 / 4.2 on Mac OS X) the bundle spells the
same flags through ``APPLE_GCC4``, a documented mapping (flag -> replacement, and why).
"""

from __future__ import annotations

from dataclasses import dataclass

from .targets import Target

ENGINE_PROGRAM = "ppcllm"
KERNELTEST_PROGRAM = "ppcllm-kerneltest"

# The project's C policy, the same on every target: C99, warning-free, and no fused multiply-add
# in scalar code, so results are bit-identical across targets.
C_POLICY = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
FP_POLICY = ("-ffp-contract=off",)
COMMON_CFLAGS = C_POLICY + FP_POLICY
LIBS = ("-lm",)
THREAD_LIBS = ("-lpthread",)  # the bundle, where the C library keeps threads apart (glibc < 2.34)

# Groups of rows: headers; the engine library (every engine .c but the programs' own files:
# what fuzz harnesses and other programs link); the kernels (part of the library, and all that
# the kernel test links); the programs' entry files (main.c, kerneltest.c); the command-line
# program's other files (cli_chat.c: over the public API only, like main.c).
HEADER, ENGINE, KERNELS, ENTRY, FRONT = "header", "engine", "kernels", "entry", "front"
LIBRARY = (ENGINE, KERNELS)


@dataclass(frozen=True)
class FileSpec:
    """One row of the file table. ``{simd}`` in the name is the target's SIMD kind."""

    name: str
    group: str
    simd: bool = False       # compiled with the target's simd_cflags (present only with SIMD)
    simd_only: bool = False  # present only on a target with SIMD


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    entry: str                # its main()
    links: tuple[str, ...]    # the groups linked after the entry, in table order
    simd_only: bool = False   # built only on a target with SIMD


# Every file, in link order within a group: ppcllm_config.h rendered per target from
# templates/ppcllm_config.h.j2, the others plain C from engine/ (internal.h maps the modules).
FILES = (
    FileSpec("ppcllm_config.h", HEADER),
    FileSpec("ppcllm.h", HEADER),
    FileSpec("internal.h", HEADER),
    FileSpec("load.h", HEADER),
    FileSpec("tokenizer.h", HEADER),
    FileSpec("kernels.h", HEADER),
    FileSpec("pool.h", HEADER),
    FileSpec("cli.h", HEADER),
    FileSpec("main.c", ENTRY),
    FileSpec("cli_chat.c", FRONT),
    FileSpec("util.c", ENGINE),
    FileSpec("load.c", ENGINE),
    FileSpec("load_wants.c", ENGINE),
    FileSpec("forward.c", ENGINE),
    FileSpec("tokenizer.c", ENGINE),
    FileSpec("tok_llama2c.c", ENGINE),
    FileSpec("tok_bpe.c", ENGINE),
    FileSpec("tok_bpe_pre.c", ENGINE),
    FileSpec("tok_spm.c", ENGINE),
    FileSpec("sampler.c", ENGINE),
    FileSpec("generate.c", ENGINE),
    FileSpec("ppcllm.c", ENGINE),
    FileSpec("pool.c", ENGINE),
    FileSpec("kernels_select.c", KERNELS),
    FileSpec("kernels_scalar.c", KERNELS),
    FileSpec("kernels_{simd}.c", KERNELS, simd=True),
    FileSpec("kerneltest.c", ENTRY, simd_only=True),
)
PROGRAMS = (
    ProgramSpec(ENGINE_PROGRAM, "main.c", (FRONT, *LIBRARY)),
    ProgramSpec(KERNELTEST_PROGRAM, "kerneltest.c", (KERNELS,), simd_only=True),
)


@dataclass(frozen=True)
class Source:
    name: str
    group: str
    simd: bool  # compiled with the target's SIMD flags

    @property
    def is_c(self) -> bool:
        return self.name.endswith(".c")

    @property
    def obj(self) -> str:
        return self.name[:-2] + ".o"


@dataclass(frozen=True)
class Program:
    name: str
    sources: tuple[str, ...]  # names of the .c files linked into it, in link order: its entry first
    simd_only: bool = False

    @property
    def entry(self) -> str:
        return self.sources[0]


@dataclass(frozen=True)
class BuildPlan:
    """The sources, programs and flags of the engine for one target."""

    target: Target
    sources: tuple[Source, ...]
    programs: tuple[Program, ...]

    @property
    def c_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.is_c)

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources if not s.is_c)

    @property
    def library(self) -> tuple[Source, ...]:
        """The engine library: every engine .c file but the programs' entry files."""
        return tuple(s for s in self.c_sources if s.group in LIBRARY)

    @property
    def base_cflags(self) -> tuple[str, ...]:
        """The flags of every source: the C policy and the target's CPU flags."""
        return COMMON_CFLAGS + self.target.toolchain.cflags

    @property
    def simd_cflags(self) -> tuple[str, ...]:
        return self.target.toolchain.simd_cflags

    def cflags(self, source: Source) -> tuple[str, ...]:
        """The exact flags ``source`` is compiled with (the toolchain adds only a prefix map)."""
        return self.base_cflags + (self.simd_cflags if source.simd else ())

    @property
    def ldflags(self) -> tuple[str, ...]:
        return self.target.toolchain.ldflags

    @property
    def libs(self) -> tuple[str, ...]:
        return LIBS

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    def program(self, name: str) -> Program:
        return next(p for p in self.programs if p.name == name)


def _present(simd_only: bool, target: Target) -> bool:
    return target.has_simd or not simd_only


def plan(target: Target) -> BuildPlan:
    """The build plan of ``target``: the table's rows it has, names resolved."""
    rows = [row for row in FILES if _present(row.simd or row.simd_only, target)]
    sources = tuple(Source(row.name.format(simd=target.simd), row.group, row.simd) for row in rows)
    programs = []
    for spec in PROGRAMS:
        if _present(spec.simd_only, target):
            linked = tuple(s.name for s in sources if s.is_c and s.group in spec.links)
            programs.append(Program(spec.name, (spec.entry,) + linked, spec.simd_only))
    return BuildPlan(target, sources, tuple(programs))


def standalone_flags(target: Target) -> tuple[str, ...]:
    """Compile-and-link flags of a small static program of the target's own (the guest's /init):
    the C policy, the target's CPU flags and a static link."""
    static = () if "-static" in target.toolchain.ldflags else ("-static",)
    return COMMON_CFLAGS + target.toolchain.cflags + target.toolchain.ldflags + static


# --------------------------------------------------------------------------- other compilers

@dataclass(frozen=True)
class FlagMap:
    """How a flag of the plan is spelled for a compiler the toolchain does not run."""

    flag: str
    replacement: tuple[str, ...]  # empty: dropped
    reason: str


# The source bundle's link, on the machine itself (any compiler): a dynamic program is the norm there.
BUNDLE_LINK = (
    FlagMap("-static", (), "a program built on the machine itself links dynamically (make LDFLAGS=-static "
                           "links it as the toolchain does)"),
)
# Apple's gcc 4.0 / 4.2 (Xcode 2.x on Mac OS X 10.4, 3.x on 10.5), which the bundle's Makefile
# uses on Darwin.
APPLE_GCC4 = (
    FlagMap("-ffp-contract=off", ("-mno-fused-madd",), "gcc before 4.6 has no -ffp-contract; Apple's gcc "
                                                      "turns fused multiply-add off with -mno-fused-madd"),
    FlagMap("-Werror", (), "a compiler this project does not test may warn where gcc 12 does not: "
                           "its warnings are shown, not fatal"),
    FlagMap("-mabi=altivec", (), "the Darwin ABI is AltiVec-aware already (-maltivec alone, with <altivec.h>)"),
    FlagMap("-mno-vsx", (), "gcc before 4.5 knows no VSX"),
    FlagMap("-static", (), "Mac OS X has no static C library"),
)


def map_flags(flags: tuple[str, ...], mapping: tuple[FlagMap, ...]) -> tuple[str, ...]:
    """``flags`` spelled through ``mapping`` (flags it does not name are kept as they are)."""
    table = {m.flag: m.replacement for m in mapping}
    return tuple(out for flag in flags for out in table.get(flag, (flag,)))
