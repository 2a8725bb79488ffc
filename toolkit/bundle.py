"""``build --emit-source DIR``: a self-contained source bundle (the rendered C, a Makefile and a
README) that compiles on the machine itself, e.g. with Apple's gcc 4.0 on Mac OS X 10.4."""

from __future__ import annotations

import os
from pathlib import Path


from . import __version__
from .buildplan import (APPLE_GCC4, BUNDLE_LINK, C_POLICY, FP_POLICY, THREAD_LIBS, BuildPlan, FlagMap, Program,
                        map_flags, plan)
from .fsutil import staged_dir
from .outputs import check_output_dir, write_owner_manifest
from .render import render, template_environment
from .targets import Target


def _flags(built: BuildPlan, mapping: tuple[FlagMap, ...]) -> dict[str, str]:
    """The Makefile's flag variables, each spelled through ``mapping``."""
    threads = THREAD_LIBS if built.target.hardware_threads > 1 else ()
    spelled = {"cflags": C_POLICY, "fpflags": FP_POLICY, "cpuflags": built.target.toolchain.cflags,
               "simd_cflags": built.simd_cflags, "ldflags": map_flags(built.ldflags, BUNDLE_LINK),
               "libs": built.libs + threads}
    return {name: " ".join(map_flags(flags, mapping)) for name, flags in spelled.items()}


def _program_objects(built: BuildPlan, program: Program) -> list[str]:
    """The objects ``program`` links, in the plan's order, its SIMD ones as $(SIMD_OBJS) (empty with SIMD=0)."""
    objects: list[str] = []
    for name in program.sources:
        source = built.source(name)
        spelled = "$(SIMD_OBJS)" if source.simd else source.obj
        if spelled not in objects:
            objects.append(spelled)
    return objects


def makefile_context(target: Target) -> dict[str, object]:
    """What Makefile.j2 is rendered from: the target's build plan."""
    built = plan(target)
    flags = _flags(built, ())
    used = " ".join(flags.values()).split()
    return {
        "flags": flags,
        "darwin": _flags(built, APPLE_GCC4),
        "mapping": [m for m in APPLE_GCC4 if m.flag in used],  # the entries that apply, listed in the Makefile
        "warnings_not_fatal": " ".join(f for f in C_POLICY if f != "-Werror"),
        "headers": built.headers,
        "objects": [{"o": s.obj, "c": s.name, "simd": s.simd, "var": s.name[:-2].upper() + "_CFLAGS"}
                    for s in built.c_sources],
        "simd_objects": [s.obj for s in built.c_sources if s.simd],
        "programs": [{"name": p.name, "objects": _program_objects(built, p)} for p in built.programs],
        "all_programs": [p.name for p in built.programs],
        "scalar_programs": [p.name for p in built.programs if not p.simd_only],
        "static": "-static" in built.ldflags,
        "scalar_defs": f"-DPPCLLM_SIMD_{target.simd.upper()}=0",
    }


def bundle_files(target: Target) -> dict[str, str]:
    """File name -> text of the bundle for ``target``."""
    sources = render(target)
    env = template_environment("bundle")
    context = {
        "version": __version__,
        "target": {"name": target.name, "description": target.description, "endian": target.endian},
        "simd": target.has_simd,
        "source_sha256": sources.digest(),
        **makefile_context(target),
    }
    files = {f.name: f.text for f in sources.files}
    files["Makefile"] = env.get_template("Makefile.j2").render(context)
    files["README"] = env.get_template("README.j2").render(context)
    return files


def write_bundle(target: Target, dest: Path) -> list[str]:
    """Write the bundle to ``dest`` (replaced whole, never half-written); the file names."""
    dest = Path(os.path.abspath(dest))
    check_output_dir(dest, "--emit-source")
    files = bundle_files(target)
    with staged_dir(dest) as work:
        for name, text in sorted(files.items()):
            (work / name).write_text(text, encoding="utf-8")
        write_owner_manifest(work, "source bundle")
    return sorted(files)
