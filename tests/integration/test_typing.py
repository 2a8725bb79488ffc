"""The toolkit is typed: mypy --strict passes on it (the project's Python rule, kept by CI)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_toolkit_passes_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "toolkit"],
                            cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
