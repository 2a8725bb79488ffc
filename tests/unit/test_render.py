"""Rendering: every target renders with StrictUndefined, SIMD files only where the profile says."""

from __future__ import annotations

import re

import jinja2
import pytest

from toolkit import format as fmt, render as render_mod
from toolkit.render import ENGINE_PROGRAM, KERNELTEST_PROGRAM, render
from toolkit.targets import available_targets, load_target


@pytest.mark.parametrize("name", available_targets())
def test_every_target_renders(name: str) -> None:
    target = load_target(name)
    sources = render(target)
    names = {f.name for f in sources.files}
    assert {"ppcllm.c", "ppcllm.h", "main.c", "kernels_scalar.c", "ppcllm_config.h"} <= names
    assert ("kernels_altivec.c" in names) == (target.simd == "altivec")
    programs = {p.name for p in sources.programs}
    assert ENGINE_PROGRAM in programs and (KERNELTEST_PROGRAM in programs) == target.has_simd
    for f in sources.files:
        assert "{{" not in f.text and "{%" not in f.text
        assert f.simd == f.name.startswith("kernels_altivec")


def test_config_header_carries_format_constants() -> None:
    text = {f.name: f.text for f in render(load_target("g4")).files}["ppcllm_config.h"]
    assert f"#define PPCLLM_FORMAT_VERSION {fmt.FORMAT_VERSION}u" in text
    assert "#define PPCLLM_SIMD_ALTIVEC 1" in text
    assert f"0x{fmt.BOM:08X}u" in text


def test_engine_has_no_exit_and_no_unguarded_extensions() -> None:
    for f in render(load_target("xenon")).files:
        if f.name in ("ppcllm.c", "kernels_scalar.c", "kernels_altivec.c"):
            assert not re.search(r"\bexit\s*\(", f.text), f.name
            assert "__attribute__" not in f.text and "#pragma" not in f.text


def test_rendering_is_reproducible() -> None:
    target = load_target("g4")
    assert render(target).digest() == render(target).digest()


def test_undefined_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_mod, "_context", lambda target: {"version": "x"})
    with pytest.raises(jinja2.UndefinedError):
        render(load_target("g4"))
