"""The stages wired together for the CLI: convert a model for a target, build, run, verify."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import format as fmt
from . import cache as cache_mod
from .errors import InputError, RunError, UsageError
from .fsutil import sha256_bytes
from .limits import LIMITS
from .models import Model, gguf
from .models.llama2c import (default_tokenizer_for, parse_checkpoint, parse_config, parse_tokenizer, read_bytes,
                             read_tokenizer_bytes)
from .targets import Target


@dataclass(frozen=True)
class GenerateOptions:
    temperature: float
    topp: float
    seed: int
    steps: int
    prompt: bytes

    def argv(self, with_prompt: bool = True) -> list[str | bytes]:
        """The engine's llama2.c-style options (the seed is always explicit)."""
        prompt: list[str | bytes] = ["-i", self.prompt] if with_prompt else []
        return ["-t", repr(self.temperature), "-p", repr(self.topp), "-s", str(self.seed),
                "-n", str(self.steps), *prompt]


def check_options(temperature: float, topp: float, seed: int | None, steps: int, prompt: str | None,
                  clock: float) -> GenerateOptions:
    """Validate the llama2.c options against toolkit/limits.py (the engine's ranges too); where
    llama2.c silently adjusts a value, refuse it instead."""
    if not LIMITS.temperature_ok(temperature):
        raise UsageError(f"-t {temperature}: temperature must be {LIMITS.temperature_rule()}",
                         "use -t 0 for greedy decoding")
    if not LIMITS.min_topp <= topp <= LIMITS.max_topp:
        raise UsageError(f"-p {topp}: top-p must be in [{LIMITS.min_topp:g}, {LIMITS.max_topp:g}]",
                         "use -p 0.9 (the default) or 1 to disable")
    if not 0 <= steps <= LIMITS.max_steps:
        raise UsageError(f"-n {steps}: steps must be >= 0 and at most {LIMITS.max_steps} (2^31 - 1)",
                         "use -n 0 for the whole context (so does any -n above it)")
    if seed is not None and seed < 0:
        raise UsageError(f"-s {seed}: seed must be >= 0", "use -s 0 (or no -s) for a seed from the clock")
    if seed is not None and seed > LIMITS.max_seed:
        raise UsageError(f"-s {seed}: seed must be at most {LIMITS.max_seed} (2^31 - 1)")
    raw = (prompt or "").encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise UsageError("the prompt contains a NUL byte", "remove it: prompts are C strings")
    chosen = seed if seed else int(clock) & 0x7FFFFFFF or 1  # llama2.c: time(NULL)
    return GenerateOptions(temperature, topp, chosen, steps, raw)


def load_model(checkpoint: Path, tokenizer: Path | None) -> Model:
    return fmt.read_any(checkpoint, tokenizer)


MODEL_FILE = "model.bin"


def converted_for(target: Target, checkpoint: Path, tokenizer: Path | None, cache: Path,
                  quant: str | None = None) -> tuple[Path, fmt.Header]:
    """A converted file in the target's byte order and the asked quantization (None: the file's
    own, f32 for a llama2.c checkpoint): the checkpoint itself when it already is one, else a
    conversion into the cache (an entry keyed by the inputs' content, checked before use). Also
    the file's header: no tensor is decoded here (``load_model`` of the path does that)."""
    data = read_bytes(checkpoint, "checkpoint")
    if gguf.sniff(data):
        if quant is not None:
            raise UsageError(f"--quant {quant}: a GGUF model keeps its own quantization", "leave out --quant")
        return _cached_model(cache, checkpoint, [data], target.endian, None, lambda: gguf.read_gguf(checkpoint, data))
    if fmt.sniff(data):
        header = fmt.read_header(data, len(data), str(checkpoint))
        wanted = quant or header.quant
        if header.endian == target.endian and header.quant == wanted:
            return checkpoint, header
        return _cached_model(cache, checkpoint, [data], target.endian, wanted,
                             lambda: fmt.decode(data, str(checkpoint)))
    if checkpoint.suffix.lower() == ".gguf":
        fmt.parse_any(data, checkpoint, tokenizer)  # a damaged GGUF file: its own message
        raise InputError(f"{checkpoint}: not a model file")  # (parse_any raised already)
    config = parse_config(data, str(checkpoint))
    tokenizer = tokenizer or default_tokenizer_for(config, str(checkpoint))
    tok = read_tokenizer_bytes(tokenizer, config.vocab_size)
    return _cached_model(cache, checkpoint, [data, tok], target.endian, quant or "f32",
                         lambda: parse_checkpoint(data, str(checkpoint), parse_tokenizer(tok, str(tokenizer))))


def _cached_model(cache: Path, checkpoint: Path, parts: list[bytes], endian: str, quant: str | None,
                  load: Callable[[], Model]) -> tuple[Path, fmt.Header]:
    """The cache entry of ``checkpoint`` (``parts``: its bytes, and the tokenizer's) converted to
    ``endian`` and ``quant`` (None: a GGUF model, its blocks kept); ``load`` reads the model when
    the entry must be made."""
    hashes = [sha256_bytes(p) for p in parts]
    layout = [endian.encode(), *([quant.encode()] if quant is not None else []), str(fmt.FORMAT_VERSION).encode()]
    key = sha256_bytes(b"\0".join([h.encode() for h in hashes] + layout))
    name = f"{checkpoint.stem}-{endian}-{quant + '-' if quant else ''}{key[:16]}"
    inputs = {"source": checkpoint.name, "source_sha256": hashes[0], "endian": endian, "quant": quant or "as-is",
              "format_version": str(fmt.FORMAT_VERSION), **({"tokenizer_sha256": hashes[1]} if len(hashes) > 1 else {})}

    def fill(folder: Path) -> None:
        model = load()
        label = f"{endian}-endian {quant}" if quant else f"{endian}-endian"
        print(f"converting {checkpoint.name} to {label}: {cache / 'models' / name / MODEL_FILE}", file=sys.stderr)
        # the file's own blocks are kept as they are (q4_1 is a GGUF block, not a --quant choice)
        (folder / MODEL_FILE).write_bytes(fmt.encode(model, endian, None if quant in (None, model.quant) else quant))

    path = cache_mod.obtain(cache, "models", name, fill, inputs) / MODEL_FILE
    return path, fmt.read_header_file(path)


def program_failure(name: str, target: Target, returncode: int, stderr: bytes) -> RunError:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no message"
    return RunError(f"{name} failed on {target.name} (exit status {returncode}): {last}")
