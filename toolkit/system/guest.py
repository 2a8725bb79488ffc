"""The guest's /init (``guest_init.c``): built with the target's compiler, static, cached."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..cmd import require_tool, run
from ..errors import BuildError
from ..fsutil import replace_dir, sha256_bytes
from ..targets import Target
from ..toolchain import compiler_version

SOURCE = Path(__file__).resolve().parent / "guest_init.c"
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-static")


def cached_init(target: Target, cache: Path) -> Path:
    """The /init program for ``target``, compiled first when its source, compiler or flags changed."""
    tc = target.toolchain
    cc = require_tool(tc.cc, tc.packages[0])
    text = SOURCE.read_bytes()
    key = sha256_bytes(b"\0".join([text, tc.cc.encode(), compiler_version(cc).encode(),
                                   *(f.encode() for f in (*CFLAGS, *tc.cflags))]))
    directory = cache / "system" / f"init-{target.name}-{key[:16]}"
    program = directory / "init"
    if program.is_file():
        return program
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        result = run([cc, *CFLAGS, *tc.cflags, "-o", work / "init", SOURCE])
        if result.returncode != 0:
            first = result.stderr.decode(errors="replace").strip().splitlines()
            raise BuildError(f"compiling the guest's /init for {target.name} failed: {first[0] if first else ''}")
        (work / "build.json").write_text(json.dumps({"target": target.name, "key": key}) + "\n", encoding="utf-8")
        replace_dir(work, directory, 0o755)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return program
