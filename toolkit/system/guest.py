"""The guest's /init (``guest_init.c``): built with the target's compiler, static, cached."""

from __future__ import annotations

from pathlib import Path

from .. import cache as entries
from ..buildplan import standalone_flags
from ..cmd import require_tool, run
from ..errors import BuildError
from ..fsutil import sha256_bytes
from ..targets import Target
from ..toolchain import compiler_version

SOURCE = Path(__file__).resolve().parent / "guest_init.c"


def cached_init(target: Target, cache: Path) -> Path:
    """The /init program for ``target`` (a cache entry, toolkit/cache.py), compiled first when its
    source, compiler or flags changed."""
    tc = target.toolchain
    cc = require_tool(tc.cc, tc.packages[0])
    flags = standalone_flags(target)
    inputs = {"target": target.name, "source_sha256": sha256_bytes(SOURCE.read_bytes()), "compiler": tc.cc,
              "compiler_version": compiler_version(cc), "flags": " ".join(flags)}
    key = sha256_bytes("\0".join(f"{k}={v}" for k, v in sorted(inputs.items())).encode())

    def fill(folder: Path) -> None:
        result = run([cc, *flags, "-o", folder / "init", SOURCE])
        if result.returncode != 0:
            first = result.stderr.decode(errors="replace").strip().splitlines()
            raise BuildError(f"compiling the guest's /init for {target.name} failed: {first[0] if first else ''}")

    return entries.obtain(cache, "system", f"init-{target.name}-{key[:16]}", fill, inputs) / "init"
