"""The C sources of a target's build plan (toolkit/buildplan.py): the engine's plain files from
``engine/`` as they are, and the one file that varies per target, ``ppcllm_config.h``, rendered
from ``templates/`` (Jinja2, StrictUndefined).

The template receives a small context built here; any decision is made in Python, not in a template.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from . import __version__, format as fmt
from .format.blobs import CHAT_FLAGS, CHAT_STRINGS, CHAT_SYSTEM_ROLE
from .models.bpe import PRE_DEFAULT, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2, PRE_SMOLLM
from .models.chat import MAX_STOPS
from .buildplan import ENGINE_PROGRAM, KERNELTEST_PROGRAM, Program, plan
from .limits import c_macros
from .fsutil import sha256_bytes
from .resources import engine_dir, templates_dir
from .targets import Target

__all__ = ["CONFIG_HEADER", "DEFAULT_CTX", "ENGINE_PROGRAM", "KERNELTEST_PROGRAM", "Program", "RenderedSources", "SourceFile",
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


CONFIG_HEADER = "ppcllm_config.h"  # the one rendered file (templates/ppcllm_config.h.j2)
DEFAULT_CTX = 2048  # KV-cache positions allocated by default (the engine's -c / run-qemu --ctx)


def template_environment(folder: str = "") -> jinja2.Environment:
    """The one Jinja2 set-up for every template (StrictUndefined): ``templates/`` or a folder in it."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / folder)),
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
                "max_tensors": fmt.MAX_TENSORS,
                "name_bytes": fmt.NAME_BYTES, "bom": fmt.BOM, "dtype_f32": fmt.DTYPE_F32,
                "dtype_bytes": fmt.DTYPE_BYTES, "dtype_q8_0": fmt.DTYPE_Q8_0, "dtype_q4_0": fmt.DTYPE_Q4_0,
                "dtype_f16": fmt.DTYPE_F16, "dtype_q4_1": fmt.DTYPE_Q4_1,
                "kept_dtypes": [(name.upper(), code) for name, code in fmt.KEPT_DTYPES.items()],
                "tokenizer_llama2c": fmt.TOKENIZER_LLAMA2C, "tokenizer_bpe": fmt.TOKENIZER_BPE,
                "tokenizer_spm": fmt.TOKENIZER_SPM, "flag_float_activations": fmt.FLAG_FLOAT_ACTIVATIONS,
                "flag_chatml": fmt.FLAG_CHATML, "flag_qkv_bias": fmt.FLAG_QKV_BIAS,
                "flag_rope_freqs": fmt.FLAG_ROPE_FREQS, "flag_qk_norm": fmt.FLAG_QK_NORM, "default_ctx": DEFAULT_CTX,
                "chat_strings": CHAT_STRINGS, "chat_max_stops": MAX_STOPS, "chat_flags": CHAT_FLAGS,
                "chat_system_role": CHAT_SYSTEM_ROLE,
                "pre_tokenizers": [("GPT2", PRE_GPT2), ("SMOLLM", PRE_SMOLLM), ("LLAMA3", PRE_LLAMA3),
                                   ("QWEN2", PRE_QWEN2), ("DEFAULT", PRE_DEFAULT)]},
        "limits": c_macros(target.hardware_threads),
    }


def render(target: Target) -> RenderedSources:
    """Every file of the target's build plan: the config header rendered, the rest read from engine/."""
    config = template_environment().get_template(f"{CONFIG_HEADER}.j2").render(_context(target))
    engine = engine_dir()
    built = plan(target)
    files = tuple(
        SourceFile(source.name, config if source.name == CONFIG_HEADER
                   else (engine / source.name).read_text(encoding="utf-8"), source.simd)
        for source in built.sources
    )
    return RenderedSources(files, built.programs)
