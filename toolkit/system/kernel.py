"""Guest kernels for full-system QEMU, built from Debian's linux-source tarball and cached.

    make ARCH=<arch> CROSS_COMPILE=<cross> allnoconfig KCONFIG_ALLCONFIG=<fragment>
    make ARCH=<arch> CROSS_COMPILE=<cross> -j<cores> vmlinux

The fragment (``targets/kernel/*.config``, named by the target's ``[system]`` table) is data.
Kconfig silently drops an option whose dependencies are missing, so after the build every option
in the fragment is checked against the final ``.config``. The cache key is the fragment, the
source tarball's content, the cross-compiler's version and the image name; the kernel is a checked
cache entry (toolkit/cache.py), the unpacked source a folder published whole (toolkit/fsutil.py).

Before anything starts, every missing piece (the source tarball, the cross-compiler, a host tool)
is named at once with its apt package. The build (many minutes) reports on stderr: a line per
stage (unpack, configure, build) and, instead of make's own output, a line every PROGRESS_S
seconds with the number of files compiled so far.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..cmd import echo, run
from ..emulate.stream import pump
from ..errors import BuildError, ToolMissingError, UsageError
from .. import cache as entries
from ..fsutil import sha256_bytes, sha256_file, staging
from ..targets import System, Target
from ..toolchain import compiler_version

# host tools the kernel build needs, with the apt package of each
BUILD_TOOLS = (("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"),
               ("tar", "tar"), ("xz", "xz-utils"))
MANIFEST = "kernel.json"
_OPTION = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_COMPILED = re.compile(rb"^\s+(CC|AS)\b")  # kbuild's short log: "  CC      kernel/fork.o"
PROGRESS_S = 30.0
BUILD_TIMEOUT_S = 4 * 3600.0


@dataclass(frozen=True)
class Need:
    """One thing a guest kernel build or ``--system`` needs on this machine."""

    what: str          # a command, or "the kernel source PATH"
    package: str       # the apt package that installs it
    path: str | None   # where it is; None: missing
    label: str = ""    # a short name for a table (``ppc-llm doctor``); default: ``what``

    @property
    def name(self) -> str:
        return self.label or self.what


@dataclass(frozen=True)
class Kernel:
    image: Path
    key: str
    build_s: float | None  # seconds it took when this call built it; None when it came from the cache


def system_of(target: Target) -> System:
    if target.system is None:
        raise UsageError(f"target '{target.name}' has no full-system machine", "use a target with a [system] table")
    return target.system


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value ('n' for '# CONFIG_X is not set'), from a .config or a fragment."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        match = _OPTION.match(line)
        if match:
            options[match.group(1)] = match.group(2)
            continue
        unset = _UNSET.match(line)
        if unset:
            options[unset.group(1)] = "n"
    return options


def dropped_options(fragment: str, final: str) -> list[str]:
    """Options of the fragment that the final .config does not have as written ('X=y (now n)')."""
    want, have = parse_config(fragment), parse_config(final)
    return [f"{name}={value} (now {have.get(name, 'n')})" for name, value in want.items()
            if have.get(name, "n") != value]


def kernel_needs(system: System) -> list[Need]:
    """The kernel build's needs: the source tarball, the cross-compiler, the host tools."""
    source = Path(system.kernel_source)
    cross = system.kernel_cross + "gcc"
    return [Need(f"the kernel source {source}", system.kernel_package, str(source) if source.is_file() else None,
                 "kernel source"),
            Need(cross, f"gcc-{system.kernel_cross.rstrip('-')}", shutil.which(cross)),
            *(Need(command, package, shutil.which(command)) for command, package in BUILD_TOOLS)]


def require_needs(needs: list[Need], purpose: str) -> None:
    """ToolMissingError naming every missing need and one apt-get line for all of them."""
    missing = [need for need in needs if need.path is None]
    if missing:
        packages = " ".join(dict.fromkeys(need.package for need in missing))
        raise ToolMissingError(f"{purpose} needs {', '.join(need.what for need in missing)}: not installed",
                               f"install {'them' if len(missing) > 1 else 'it'} with: sudo apt-get install {packages}")


def kernel_key(system: System, tarball_sha: str, cc_version: str) -> str:
    fragment = system.kernel_config.read_bytes()
    parts = [sha256_bytes(fragment), tarball_sha, system.kernel_arch, system.kernel_cross, cc_version,
             system.kernel_image]
    return sha256_bytes("\0".join(parts).encode())


def cached_kernel(target: Target, cache: Path) -> Kernel:
    """The guest kernel for ``target`` (a cache entry, toolkit/cache.py), built first when its key
    is new or the entry is damaged."""
    system = system_of(target)
    needs = kernel_needs(system)
    require_needs(needs, f"the guest kernel for {target.name}")
    tarball, cc = Path(system.kernel_source), str(needs[1].path)
    tarball_sha = sha256_file(tarball)
    key = kernel_key(system, tarball_sha, compiler_version(cc))
    name = f"{target.name}-{key[:16]}"
    found = entries.lookup(cache, "kernels", name)
    if found is not None:
        return Kernel(found / system.kernel_image, key, None)
    return _build(target, system, cache, cache / "kernels" / name, tarball, tarball_sha, key)


def _source_tree(cache: Path, tarball: Path, tarball_sha: str, label: str) -> Path:
    """The tarball unpacked once into the cache (staged, then published whole: toolkit/fsutil.py).
    Not a checked cache entry: hashing a kernel tree on every use would cost more than unpacking."""
    tree = cache / "kernels" / f"source-{tarball_sha[:16]}"
    if tree.is_dir():
        _say(f"{label} 1/3: the source is unpacked already ({tree})")
        return tree
    _say(f"{label} 1/3: unpacking {tarball.name}")
    with staging(tree) as stage:
        unpacked = stage.path / "unpacked"
        unpacked.mkdir()
        _check(run(["tar", "-xf", tarball, "-C", unpacked]), f"unpacking {tarball}")
        tops = list(unpacked.iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise BuildError(f"{tarball} does not hold one source folder")
        for child in tops[0].iterdir():  # the source folder's contents become the staged folder's
            child.rename(stage.path / child.name)
        shutil.rmtree(unpacked)
        stage.publish(0o755, replace=False)  # else another process unpacked it meanwhile: use theirs
    return tree


def _build(target: Target, system: System, cache: Path, directory: Path, tarball: Path, tarball_sha: str,
           key: str) -> Kernel:
    """Build the kernel into the cache entry at ``directory`` (CACHE/kernels/NAME)."""
    _say(f"building the guest kernel for {target.name} from {tarball.name} (a few minutes, once)")
    start = time.monotonic()
    label = f"kernel {target.name}"
    tree = _source_tree(cache, tarball, tarball_sha, label)
    files = 0

    def fill(work: Path) -> None:
        nonlocal files
        files = _configure_and_make(system, tree, work / "obj", label)
        final = (work / "obj" / ".config").read_text(encoding="utf-8")
        shutil.copy2(work / "obj" / system.kernel_image, work / system.kernel_image)
        (work / "config").write_text(final, encoding="utf-8")
        shutil.rmtree(work / "obj")
        manifest = {"target": target.name, "key": key, "source": str(tarball), "source_sha256": tarball_sha,
                    "fragment": system.kernel_config.name, "image": system.kernel_image,
                    "build_seconds": round(time.monotonic() - start, 1)}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    inputs = {"target": target.name, "key": key, "source_sha256": tarball_sha, "fragment": system.kernel_config.name}
    entries.create(cache, "kernels", directory.name, fill, inputs)
    build_s = time.monotonic() - start
    _say(f"built the guest kernel for {target.name} in {build_s:.0f} s ({files} files compiled): "
         f"{directory / system.kernel_image}")
    return Kernel(directory / system.kernel_image, key, build_s)


def _configure_and_make(system: System, tree: Path, obj: Path, label: str) -> int:
    """allnoconfig with the fragment, then the image, in ``obj``; every fragment option checked
    against the final .config. The number of files compiled."""
    make: list[str | Path] = ["make", "-C", tree, f"O={obj}", f"ARCH={system.kernel_arch}",
                              f"CROSS_COMPILE={system.kernel_cross}"]
    _say(f"{label} 2/3: configuring (allnoconfig + {system.kernel_config.name})")
    _check(run([*make, "allnoconfig", f"KCONFIG_ALLCONFIG={system.kernel_config}"]), "configuring the kernel")
    jobs = os.cpu_count() or 1
    _say(f"{label} 3/3: building {system.kernel_image} (make -j{jobs}; a progress line every {PROGRESS_S:.0f} s)")
    files = _make_with_progress([*make, f"-j{jobs}", system.kernel_image], label)
    final = (obj / ".config").read_text(encoding="utf-8")
    dropped = dropped_options(system.kernel_config.read_text(encoding="utf-8"), final)
    if dropped:
        raise BuildError(f"Kconfig dropped options of {system.kernel_config.name}: {', '.join(dropped)}",
                         "add the options they depend on to the fragment")
    return files


class MakeProgress:
    """Condenses kbuild's short log ("  CC      kernel/fork.o" lines on stdout) into one line every
    ``every_s`` seconds: how many files are compiled and how long it has run."""

    def __init__(self, label: str, every_s: float = PROGRESS_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.every_s, self.clock = label, every_s, clock
        self.files = 0
        self.start = self._last = clock()
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        self.files += sum(1 for line in lines if _COMPILED.match(line))
        now = self.clock()
        if now - self._last >= self.every_s:
            self._last = now
            _say(f"{self.label}: still building, {self.files} files compiled, {now - self.start:.0f} s")


def _make_with_progress(argv: list[str | Path], label: str) -> int:
    """Run the build's make with its output condensed; the number of files it compiled."""
    echo(argv)
    progress = MakeProgress(label)
    ran = pump([str(a) for a in argv], BUILD_TIMEOUT_S, out=progress.feed)
    if ran.returncode is None:
        raise BuildError(f"building the kernel took more than {BUILD_TIMEOUT_S / 3600:.0f} hours and was stopped")
    _check(subprocess.CompletedProcess(argv, ran.returncode, ran.stdout, ran.stderr), "building the kernel")
    return progress.files


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        first = next((line for line in lines if "rror" in line), lines[-1] if lines else "no output")
        raise BuildError(f"{what} failed: {first.strip()}")
