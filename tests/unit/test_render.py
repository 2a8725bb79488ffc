"""Rendering: every target renders with StrictUndefined, SIMD files only where the profile says."""

from __future__ import annotations

import re

import jinja2
import pytest

from toolkit import __version__, format as fmt, render as render_mod
from toolkit.buildplan import plan
from toolkit.render import CONFIG_HEADER, ENGINE_PROGRAM, KERNELTEST_PROGRAM, render
from toolkit.resources import engine_dir, templates_dir
from toolkit.targets import available_targets, load_target

# the engine library of a target without SIMD: every engine .c file but the programs' entry files
ENGINE_SOURCES = tuple(s.name for s in plan(load_target("host")).library)


@pytest.mark.parametrize("name", available_targets())
def test_every_target_renders(name: str) -> None:
    target = load_target(name)
    sources = render(target)
    names = {f.name for f in sources.files}
    assert {"ppcllm.c", "ppcllm.h", "main.c", "kernels_scalar.c", "ppcllm_config.h"} <= names
    assert set(ENGINE_SOURCES) <= names
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
    checked = set()
    for f in render(load_target("xenon")).files:
        if f.name.endswith(".c") and f.name not in ("main.c", "cli_chat.c", "kerneltest.c"):
            assert not re.search(r"\bexit\s*\(", f.text), f.name
            assert "__attribute__" not in f.text and "#pragma" not in f.text
            checked.add(f.name)
    assert set(ENGINE_SOURCES) | {"kernels_altivec.c"} == checked


def test_engine_files_are_plain_c_and_all_used() -> None:
    """engine/ holds plain C (no template syntax, no per-target stamp), no file over ~700 lines,
    and every file in it is part of some target's sources; only the config header is rendered."""
    on_disk = {p.name for p in engine_dir().iterdir() if p.suffix in (".c", ".h")}
    used = {f.name for name in ("xenon", "g4", "host") for f in render(load_target(name)).files}
    assert on_disk == used - {CONFIG_HEADER}
    for name in on_disk:
        text = (engine_dir() / name).read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "Generated" not in text, name
        assert text.count("\n") <= 700, name
    assert sorted(p.name for p in templates_dir().glob("*.j2")) == [f"{CONFIG_HEADER}.j2"]


def test_main_uses_only_the_public_header() -> None:
    """The command-line program (main.c, cli_chat.c, their cli.h) is a user of the public API."""
    for name in ("main.c", "cli_chat.c"):
        text = (engine_dir() / name).read_text(encoding="utf-8")
        assert re.findall(r'#include "([^"]+)"', text) == ["cli.h"], name
    header = (engine_dir() / "cli.h").read_text(encoding="utf-8")
    assert re.findall(r'#include "([^"]+)"', header) == ["ppcllm.h"]


def test_config_header_carries_the_stamp() -> None:
    text = {f.name: f.text for f in render(load_target("g3")).files}[CONFIG_HEADER]
    assert f'#define PPCLLM_ENGINE_VERSION "{__version__}"' in text and '#define PPCLLM_TARGET_NAME "g3"' in text


def test_tokenizer_kind_is_tested_in_one_place() -> None:
    """The header's tokenizer kind picks the operations in tokenizer.c; no other file asks it."""
    for name in ENGINE_SOURCES:
        text = (engine_dir() / name).read_text(encoding="utf-8")
        if name not in ("tokenizer.c", "load.c"):
            assert "PPCLLM_TOKENIZER_" not in text and "tok_kind" not in text, name


def test_rendering_is_reproducible() -> None:
    target = load_target("g4")
    assert render(target).digest() == render(target).digest()


def test_undefined_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_mod, "_context", lambda target: {"version": "x"})
    with pytest.raises(jinja2.UndefinedError):
        render(load_target("g4"))
