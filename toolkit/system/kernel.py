"""Guest kernels for full-system QEMU, built from Debian's linux-source tarball and cached.

    make ARCH=<arch> CROSS_COMPILE=<cross> allnoconfig KCONFIG_ALLCONFIG=<fragment>
    make ARCH=<arch> CROSS_COMPILE=<cross> -j<cores> vmlinux

The fragment (``targets/kernel/*.config``, named by the target's ``[system]`` table) is data.
Kconfig silently drops an option whose dependencies are missing, so after the build every option
in the fragment is checked against the final ``.config``. The cache key is the fragment, the
source tarball's content, the cross-compiler's version and the image name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..cmd import require_tool, run
from ..errors import BuildError, ToolMissingError, UsageError
from ..fsutil import replace_dir, sha256_bytes, sha256_file
from ..targets import System, Target
from ..toolchain import compiler_version

# host tools the kernel build needs, with the apt package of each
BUILD_TOOLS = (("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"),
               ("tar", "tar"), ("xz", "xz-utils"))
MANIFEST = "kernel.json"
_OPTION = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


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


def source_tarball(system: System) -> Path:
    path = Path(system.kernel_source)
    if not path.is_file():
        raise ToolMissingError(f"the kernel source {path} is not installed",
                               f"install it with: sudo apt-get install {system.kernel_package}")
    return path


def kernel_key(system: System, tarball_sha: str, cc_version: str) -> str:
    fragment = system.kernel_config.read_bytes()
    parts = [sha256_bytes(fragment), tarball_sha, system.kernel_arch, system.kernel_cross, cc_version,
             system.kernel_image]
    return sha256_bytes("\0".join(parts).encode())


def _tools(system: System) -> str:
    for command, package in BUILD_TOOLS:
        require_tool(command, package)
    return require_tool(system.kernel_cross + "gcc", f"gcc-{system.kernel_cross.rstrip('-')}")


def cached_kernel(target: Target, cache: Path) -> Kernel:
    """The guest kernel for ``target``, built first when its key is new."""
    system = system_of(target)
    cc = _tools(system)
    tarball = source_tarball(system)
    tarball_sha = sha256_file(tarball)
    key = kernel_key(system, tarball_sha, compiler_version(cc))
    directory = cache / "kernels" / f"{target.name}-{key[:16]}"
    if (directory / MANIFEST).is_file():
        return Kernel(directory / system.kernel_image, key, None)
    return _build(target, system, cache, directory, tarball, tarball_sha, key)


def _source_tree(cache: Path, tarball: Path, tarball_sha: str) -> Path:
    """The tarball unpacked once into the cache (into a temporary folder, then renamed)."""
    tree = cache / "kernels" / f"source-{tarball_sha[:16]}"
    if tree.is_dir():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".source.", dir=tree.parent))
    try:
        _check(run(["tar", "-xf", tarball, "-C", work]), f"unpacking {tarball}")
        tops = [p for p in work.iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise BuildError(f"{tarball} does not hold one source folder")
        try:
            tops[0].rename(tree)
        except OSError:
            if not tree.is_dir():  # else another process unpacked it meanwhile: use theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tree


def _build(target: Target, system: System, cache: Path, directory: Path, tarball: Path, tarball_sha: str,
           key: str) -> Kernel:
    print(f"building the guest kernel for {target.name} from {tarball.name} (a few minutes, once)",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    tree = _source_tree(cache, tarball, tarball_sha)
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        make: list[str | Path] = ["make", "-C", tree, f"O={work / 'obj'}", f"ARCH={system.kernel_arch}",
                f"CROSS_COMPILE={system.kernel_cross}"]
        _check(run([*make, "allnoconfig", f"KCONFIG_ALLCONFIG={system.kernel_config}"]), "configuring the kernel")
        _check(run([*make, f"-j{os.cpu_count() or 1}", system.kernel_image]), "building the kernel")
        final = (work / "obj" / ".config").read_text(encoding="utf-8")
        dropped = dropped_options(system.kernel_config.read_text(encoding="utf-8"), final)
        if dropped:
            raise BuildError(f"Kconfig dropped options of {system.kernel_config.name}: {', '.join(dropped)}",
                             "add the options they depend on to the fragment")
        shutil.copy2(work / "obj" / system.kernel_image, work / system.kernel_image)
        (work / "config").write_text(final, encoding="utf-8")
        shutil.rmtree(work / "obj")
        build_s = time.monotonic() - start
        manifest = {"target": target.name, "key": key, "source": str(tarball), "source_sha256": tarball_sha,
                    "fragment": system.kernel_config.name, "image": system.kernel_image,
                    "build_seconds": round(build_s, 1)}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        replace_dir(work, directory, 0o755)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"built the guest kernel for {target.name} in {build_s:.0f} s: {directory / system.kernel_image}",
          file=sys.stderr, flush=True)
    return Kernel(directory / system.kernel_image, key, build_s)


def _check(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        first = next((line for line in lines if "rror" in line), lines[-1] if lines else "no output")
        raise BuildError(f"{what} failed: {first.strip()}")
