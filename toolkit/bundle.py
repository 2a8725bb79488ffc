"""``build --emit-source DIR``: a self-contained source bundle (the rendered C, a Makefile and a
README) that compiles on the machine itself, e.g. with Apple's gcc 4.0 on Mac OS X 10.4."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2

from . import __version__
from .fsutil import staged_dir
from .outputs import check_output_dir, write_owner_manifest
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
    dest = Path(os.path.abspath(dest))
    check_output_dir(dest, "--emit-source")
    files = bundle_files(target)
    with staged_dir(dest) as work:
        for name, text in sorted(files.items()):
            (work / name).write_text(text, encoding="utf-8")
        write_owner_manifest(work, "source bundle")
    return sorted(files)
