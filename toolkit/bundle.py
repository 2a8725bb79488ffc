"""``build --emit-source DIR``: a self-contained source bundle (the rendered C, a Makefile and a
README) that compiles on the machine itself, e.g. with Apple's gcc 4.0 on Mac OS X 10.4."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import jinja2

from . import __version__
from .errors import InputError
from .fsutil import replace_dir
from .render import render
from .resources import templates_dir
from .targets import Target

def bundle_files(target: Target) -> dict[str, str]:
    """File name -> text of the bundle for ``target``."""
    sources = render(target)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "bundle")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    context = {
        "version": __version__,
        "target": {"name": target.name, "description": target.description, "endian": target.endian},
        "simd": target.has_simd,
        "threads": target.hardware_threads,
        "cpuflags": " ".join(target.toolchain.cflags),
        "source_sha256": sources.digest(),
    }
    files = {f.name: f.text for f in sources.files}
    files["Makefile"] = env.get_template("Makefile.j2").render(context)
    files["README"] = env.get_template("README.j2").render(context)
    return files


def write_bundle(target: Target, dest: Path) -> list[str]:
    """Write the bundle to ``dest`` (replaced whole, never half-written); the file names."""
    files = bundle_files(target)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise InputError(f"cannot write to {dest.parent}: {exc.strerror}", "choose a writable directory") from None
    try:
        for name, text in sorted(files.items()):
            (work / name).write_text(text, encoding="utf-8")
        if dest.exists() and not dest.is_dir():
            raise InputError(f"--emit-source {dest} exists and is not a directory")
        replace_dir(work, dest, 0o755)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return sorted(files)
