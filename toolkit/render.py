"""Render the C sources for a target from ``templates/`` (Jinja2, StrictUndefined).

Templates receive a small context built here; any decision is made in Python, not in a template.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from . import __version__, format as fmt
from .buildplan import ENGINE_PROGRAM, KERNELTEST_PROGRAM, Program, plan
from .limits import c_macros
from .fsutil import sha256_bytes
from .resources import templates_dir
from .targets import Target

__all__ = ["DEFAULT_CTX", "ENGINE_PROGRAM", "KERNELTEST_PROGRAM", "Program", "RenderedSources", "SourceFile",
           "render"]


@dataclass(frozen=True)
class SourceFile:
    name: str
    text: str
    simd: bool  # compiled with the target's SIMD flags


@dataclass(frozen=True)
class RenderedSources:
    files: tuple[SourceFile, ...]
    programs: tuple[Program, ...]

    def digest(self) -> str:
        """A hash of every rendered file, in name order."""
        payload = b"".join(f"{f.name}\0{int(f.simd)}\0{f.text}\0".encode() for f in sorted(self.files, key=lambda f: f.name))
        return sha256_bytes(payload)


DEFAULT_CTX = 2048  # KV-cache positions allocated by default (the engine's -c / run-qemu --ctx)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _context(target: Target) -> dict[str, object]:
    return {
        "version": __version__,
        "target": {"name": target.name, "description": target.description, "simd": target.simd,
                   "threads": target.hardware_threads, "simd_runtime": target.simd_runtime},
        "fmt": {"version": fmt.FORMAT_VERSION, "header_size": fmt.HEADER_SIZE, "entry_size": fmt.ENTRY_SIZE,
                "name_bytes": fmt.NAME_BYTES, "bom": fmt.BOM, "dtype_f32": fmt.DTYPE_F32,
                "dtype_bytes": fmt.DTYPE_BYTES, "dtype_q8_0": fmt.DTYPE_Q8_0, "dtype_q4_0": fmt.DTYPE_Q4_0,
                "dtype_f16": fmt.DTYPE_F16, "dtype_q4_1": fmt.DTYPE_Q4_1,
                "tokenizer_bpe": fmt.TOKENIZER_BPE, "flag_float_activations": fmt.FLAG_FLOAT_ACTIVATIONS,
                "flag_chatml": fmt.FLAG_CHATML, "default_ctx": DEFAULT_CTX},
        "limits": c_macros(target.hardware_threads),
    }


def render(target: Target) -> RenderedSources:
    """Every file of the target's build plan (toolkit/buildplan.py), rendered."""
    env = _environment()
    context = _context(target)
    built = plan(target)
    files = tuple(
        SourceFile(source.name, env.get_template(f"{source.name}.j2").render(context), source.simd)
        for source in built.sources
    )
    return RenderedSources(files, built.programs)
