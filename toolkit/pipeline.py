"""The stages wired together for the CLI: convert a model for a target, build, run, verify."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import format as fmt
from .errors import RunError, UsageError
from .fsutil import atomic_write_bytes, sha256_bytes
from .limits import LIMITS
from .models import Model, gguf
from .models.llama2c import read_bytes
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


def converted_for(target: Target, checkpoint: Path, tokenizer: Path | None, cache: Path,
                  quant: str | None = None) -> tuple[Path, Model]:
    """A converted file in the target's byte order and the asked quantization (None: the file's
    own, f32 for a llama2.c checkpoint): the checkpoint itself when it already is one, else a
    conversion into the cache keyed by the inputs' content. Also the model the file holds."""
    data = read_bytes(checkpoint, "checkpoint")
    if gguf.sniff(data):
        return _converted_gguf(target, checkpoint, data, cache, quant)
    source = fmt.decode(data, str(checkpoint)) if fmt.sniff(data) else None
    wanted = quant or (source.quant if source else "f32")
    if source is not None and fmt.file_endian(data, str(checkpoint)) == target.endian and source.quant == wanted:
        return checkpoint, source
    parts = [data, read_bytes(tokenizer, "tokenizer") if tokenizer and source is None else b"",
             target.endian.encode(), wanted.encode(), str(fmt.FORMAT_VERSION).encode()]
    key = sha256_bytes(b"\0".join(sha256_bytes(p).encode() for p in parts))
    path = cache / "models" / f"{checkpoint.stem}-{target.endian}-{wanted}-{key[:16]}.bin"
    model = source if source is not None else load_model(checkpoint, tokenizer)
    if not path.is_file():
        print(f"converting {checkpoint.name} to {target.endian}-endian {wanted}: {path}", file=sys.stderr)
        # the file's own blocks are kept as they are (q4_1 is a GGUF block, not a --quant choice)
        atomic_write_bytes(path, fmt.encode(model, target.endian, None if wanted == model.quant else wanted))
    return path, fmt.decode(path.read_bytes(), str(path)) if wanted != model.quant else model


def _converted_gguf(target: Target, checkpoint: Path, data: bytes, cache: Path,
                    quant: str | None) -> tuple[Path, Model]:
    """A GGUF file converted for the target (its blocks kept), cached by the file's content."""
    if quant is not None:
        raise UsageError(f"--quant {quant}: a GGUF model keeps its own quantization", "leave out --quant")
    key = sha256_bytes(b"\0".join([sha256_bytes(data).encode(), target.endian.encode(),
                                    str(fmt.FORMAT_VERSION).encode()]))
    path = cache / "models" / f"{checkpoint.stem}-{target.endian}-{key[:16]}.bin"
    if path.is_file():
        return path, fmt.decode(path.read_bytes(), str(path))
    model = gguf.read_gguf(checkpoint, data)
    print(f"converting {checkpoint.name} to {target.endian}-endian: {path}", file=sys.stderr)
    atomic_write_bytes(path, fmt.encode(model, target.endian))
    return path, model


def program_failure(name: str, target: Target, returncode: int, stderr: bytes) -> RunError:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no message"
    return RunError(f"{name} failed on {target.name} (exit status {returncode}): {last}")
