"""Where the engine sources, templates, target profiles and bundled models live (source tree or installed wheel)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _resource_dir(name: str) -> Path:
    installed = _PACKAGE / "_resources" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def templates_dir() -> Path:
    return _resource_dir("templates")


def engine_dir() -> Path:
    """The engine's plain C sources (``engine/``)."""
    return _resource_dir("engine")


def targets_dir() -> Path:
    return _resource_dir("targets")


def default_checkpoint() -> Path:
    return _PACKAGE / "data" / "models" / "stories260K.bin"


def default_tokenizer() -> Path:
    return _PACKAGE / "data" / "models" / "tok512.bin"


def llama2_tokenizer() -> Path:
    """llama2.c's tokenizer.bin: the Llama 2 vocabulary (32000 tokens) of stories15M/42M/110M."""
    return _PACKAGE / "data" / "models" / "tokenizer.bin"


def docker_dir() -> Path:
    return _resource_dir("docker")
