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
