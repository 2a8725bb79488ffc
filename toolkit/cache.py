"""The toolkit's cache directory (builds and converted models, keyed by content)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$PPC_LLM_CACHE, else $XDG_CACHE_HOME/ppc-llm, else ~/.cache/ppc-llm."""
    explicit = os.environ.get("PPC_LLM_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ppc-llm"
