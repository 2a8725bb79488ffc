"""Compile rendered sources for a target and produce a checked build with a manifest.

Two toolchains run the same commands on the same files: ``host`` runs the target's cross-gcc
from PATH, ``docker`` runs it in a container of an image built from docker/ (toolkit/container.py).
The default is $PPC_LLM_TOOLCHAIN, else host. Every command is echoed on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import __version__, cache
from .buildplan import BuildPlan, Program, Source, plan
from .elfcheck import check_engine_code, check_header
from .errors import BuildError, UsageError
from .fsutil import sha256_bytes, sha256_file, staged_dir
from .outputs import check_output_dir, write_owner_manifest
from .render import ENGINE_PROGRAM, KERNELTEST_PROGRAM, RenderedSources, render
from .runner import HOST_RUNNER, TOOLCHAINS, Runner
from .targets import Target

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Build:
    directory: Path
    target: Target
    manifest: dict[str, object]

    @property
    def engine(self) -> Path:
        return self.directory / ENGINE_PROGRAM

    @property
    def engine_code(self) -> dict[str, int]:
        """Instruction counts from the ISA audit (empty for targets without an [isa] policy)."""
        code = self.manifest.get("engine_code")
        return {str(k): int(v) for k, v in code.items()} if isinstance(code, dict) else {}

    @property
    def kerneltest(self) -> Path | None:
        path = self.directory / KERNELTEST_PROGRAM
        return path if path.exists() else None


def compiler_version(cc: str, runner: Runner = HOST_RUNNER) -> str:
    result = runner.run([cc, "-dumpfullversion"], cwd=Path("/"), quiet=True)
    return result.stdout.decode().strip() or "unknown"


def choose_toolchain(toolchain: str | None) -> str:
    """``toolchain``, else $PPC_LLM_TOOLCHAIN, else host."""
    choice = toolchain or os.environ.get("PPC_LLM_TOOLCHAIN") or "host"
    if choice not in TOOLCHAINS:
        raise UsageError(f"toolchain '{choice}': must be one of {', '.join(TOOLCHAINS)}",
                         "use --toolchain host or --toolchain docker (or set PPC_LLM_TOOLCHAIN)")
    return choice


@contextmanager
def open_toolchain(target: Target, toolchain: str, engine: str | None = None,
                   mounts: tuple[Path, ...] = ()) -> Iterator[Runner]:
    """A Runner for ``toolchain``: the host, or a container that sees ``mounts`` (always removed)."""
    if toolchain == "host":
        yield HOST_RUNNER
        return
    from .container import ContainerRunner, choose_engine, ensure_image

    chosen = choose_engine(engine)
    with ContainerRunner(chosen, ensure_image(chosen, target.toolchain.packages), mounts) as runner:
        yield runner


def prefix_map(src_dir: Path) -> str:
    """The one flag the toolchain adds to the plan's: paths in the objects' debug data and
    ``__FILE__`` read ``./NAME``, not this machine's staging folder (reproducible builds)."""
    return f"-ffile-prefix-map={src_dir}=."


def compile_argv(built: BuildPlan, cc: str, source: Source, src_dir: Path, obj: Path) -> list[str | Path]:
    """The command that compiles ``source`` (run in ``src_dir``): the plan's flags and the prefix map."""
    return [cc, *built.cflags(source), prefix_map(src_dir), "-c", source.name, "-o", obj]


def link_argv(built: BuildPlan, cc: str, program: Program, work: Path) -> list[str | Path]:
    """The command that links ``program`` from its objects under ``work/obj``."""
    objs = [work / "obj" / built.source(name).obj for name in program.sources]
    return [cc, *built.ldflags, "-o", work / program.name, *objs, *built.libs]


def build_key(target: Target, sources: RenderedSources, version: str, toolchain: str = "host") -> str:
    """A content key for a build: sources, compiler, its version, every flag (and the toolchain
    when it is not the host's)."""
    built = plan(target)
    parts = [sources.digest(), target.toolchain.cc, version, *built.base_cflags, "|", *built.simd_cflags, "|",
             *built.ldflags]
    if toolchain != "host":
        parts += ["|", toolchain]
    return sha256_bytes("\0".join(parts).encode())


def _compile(built: BuildPlan, sources: RenderedSources, work: Path, cc: str, runner: Runner) -> list[Path]:
    src_dir = work / "src"
    src_dir.mkdir()
    for file in sources.files:
        (src_dir / file.name).write_text(file.text, encoding="utf-8")
    objects = []
    for source in built.c_sources:
        obj = work / "obj" / source.obj
        obj.parent.mkdir(exist_ok=True)
        argv = compile_argv(built, cc, source, src_dir, obj)
        _check(runner.run(argv, cwd=src_dir), f"compiling {source.name} for {built.target.name}")
        objects.append(obj)
    return objects


def _link(built: BuildPlan, work: Path, cc: str, runner: Runner) -> None:
    for program in built.programs:
        _check(runner.run(link_argv(built, cc, program, work), cwd=work),
               f"linking {program.name} for {built.target.name}")


def _check(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip().splitlines()
        first = next((line for line in stderr if "error" in line), stderr[0] if stderr else "no output")
        raise BuildError(f"{what} failed: {first.strip()}", "this is a bug in the generated C: please report it")


def _manifest(built: BuildPlan, sources: RenderedSources, work: Path, version: str,
              facts: dict[str, str], code: dict[str, int], toolchain: str) -> dict[str, object]:
    target = built.target
    return {
        "ppc_llm_version": __version__,
        "target": target.name,
        "toolchain": toolchain,
        "compiler": target.toolchain.cc,
        "compiler_version": version,
        "cflags": list(built.base_cflags),
        "simd_cflags": list(built.simd_cflags),
        "ldflags": list(built.ldflags) + list(built.libs),
        "source_sha256": sources.digest(),
        "binaries": {p.name: {"sha256": sha256_file(work / p.name), "bytes": (work / p.name).stat().st_size}
                     for p in sources.programs},
        "elf": facts,
        "engine_code": code,
    }


def build(target: Target, out_dir: Path, toolchain: str | None = None, engine: str | None = None,
          sources: RenderedSources | None = None) -> Build:
    """Render (unless ``sources`` are given, already rendered), compile, link and audit for
    ``target``; the result replaces ``out_dir`` whole. ``toolchain``: host or docker (default:
    $PPC_LLM_TOOLCHAIN, else host); ``engine``: the container engine for docker (default:
    $PPC_LLM_ENGINE, else whichever answers)."""
    chosen = choose_toolchain(toolchain)
    out_dir = Path(os.path.abspath(out_dir))  # the compiler runs in src/: every path it sees is absolute
    check_output_dir(out_dir)
    sources = render(target) if sources is None else sources
    built = plan(target)
    with staged_dir(out_dir) as work:
        with open_toolchain(target, chosen, engine, (work,)) as runner:
            cc = runner.which(target.toolchain.cc, target.toolchain.packages[0])
            version = compiler_version(cc, runner)
            objects = _compile(built, sources, work, cc, runner)
            _link(built, work, cc, runner)
            facts = check_header(work / ENGINE_PROGRAM, target)
            code = check_engine_code(work / ENGINE_PROGRAM, objects, target, runner) if target.isa else {}
        manifest = _manifest(built, sources, work, version, facts, code, chosen)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_owner_manifest(work, "build")
    return Build(out_dir, target, manifest)


def cached_build(target: Target, cache_root: Path, toolchain: str | None = None, engine: str | None = None) -> Build:
    """The build for ``target`` from the cache (a checked entry, toolkit/cache.py), building it
    first when its key is new or the entry is damaged. The key holds the compiler's version (host)
    or the toolchain image's id (docker: no container is started on a hit)."""
    chosen = choose_toolchain(toolchain)
    sources = render(target)
    if chosen == "host":
        version = compiler_version(HOST_RUNNER.which(target.toolchain.cc, target.toolchain.packages[0]))
    else:
        version = _docker_image_id(target, engine)
    key = build_key(target, sources, version, chosen)
    name = f"{target.name}-{sha256_bytes(f'{key} entry-v{cache.STAMP_VERSION}'.encode())[:16]}"
    inputs = {"target": target.name, "toolchain": chosen, "compiler": target.toolchain.cc,
              "compiler_version_or_image": version, "source_sha256": sources.digest(), "build_key": key}

    def fill(folder: Path) -> None:
        folder.rmdir()  # build() makes its output folder itself
        build(target, folder, chosen, engine, sources)  # the sources rendered for the key: rendered once

    directory = cache.obtain(cache_root, "builds", name, fill, inputs)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"the cached build {directory} has no readable {MANIFEST}: {exc}") from None
    return Build(directory, target, manifest)


def _docker_image_id(target: Target, engine: str | None) -> str:
    from .container import choose_engine, ensure_image, image_id

    chosen = choose_engine(engine)
    return image_id(chosen, ensure_image(chosen, target.toolchain.packages))
