"""Fixtures shared by every tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import GOLDEN, GoldenCase, shared_dir


@pytest.fixture(scope="session")
def golden() -> list[GoldenCase]:
    if not GOLDEN:
        pytest.fail(f"no golden cases found in {shared_dir() / 'golden'}: set PPC_LLM_SHARED to the shared/ folder")
    return GOLDEN


@pytest.fixture(scope="session")
def bundled_model_paths() -> tuple[Path, Path]:
    from toolkit.resources import default_checkpoint, default_tokenizer

    return default_checkpoint(), default_tokenizer()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long tier (``@pytest.mark.long``: real models x mixes x targets, minutes each) runs only
    when asked for by name (``-m long``, README "The long tier"); otherwise it is deselected, so
    CI's plain ``pytest`` neither runs nor skips it."""
    if "long" in (config.getoption("markexpr") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("long") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("long")])
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the bad-input catalogue's count and the fuzzing figures (CI's log keeps them)."""
    from tests.helpers import CATALOGUE, RELIABILITY_LINES

    if not CATALOGUE and not RELIABILITY_LINES:
        return
    terminalreporter.section("reliability")
    if CATALOGUE:
        passed = sum(CATALOGUE.values())
        terminalreporter.write_line(f"bad-input catalogue: {len(CATALOGUE)} cases tried, {passed} passed")
        for label in sorted(label for label, ok in CATALOGUE.items() if not ok):
            terminalreporter.write_line(f"  failed: {label}")
    for line in RELIABILITY_LINES:
        terminalreporter.write_line(line)
