"""The pipeline: the named stages that ``cli``, ``release``, ``bench`` and the tests all call.

    open_input(path, tokenizer) -> Input         the model file read once, its kind sniffed once
    convert(input, target, cache, quant) -> Converted
                                                 a converted file in the target's byte order (cached)
    build(target, cache, toolchain, engine) -> Build
                                                 the engine, rendered once and compiled (cached)
    emulator_for(target, system, cache) -> Emulator
        .run(engine, EngineArgs, timeout, out, err) -> RunResult
                                                 user-mode or full-system QEMU, one result shape
    verify                                       the NumPy reference against the run's text
                                                 (toolkit/reference/, wired by the CLI)

``check_options`` turns the llama2.c options into ``GenerateOptions``, whose ``engine_args`` is the
engine's command line (toolkit/emulate/args.py); ``toolkit.quant.requested`` resolves ``--quant``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import format as fmt
from . import cache as cache_mod
from .emulate import Emulator, EngineArgs, UserMode
from .errors import ContextFullError, InputError, RunError, UsageError
from .fsutil import sha256_bytes
from .limits import LIMITS
from .models import Model, gguf
from .sampling import Sampling
from .models.llama2c import (default_tokenizer_for, parse_checkpoint, parse_config, parse_tokenizer, read_bytes,
                             read_tokenizer_bytes)
from .targets import Target
from .toolchain import Build, cached_build


DEFAULT_STEPS = 256  # llama2.c's -n


@dataclass(frozen=True)
class GenerateOptions:
    """The checked run options: the sampling chain, the length (``steps``: -n, positions including
    the prompt, or per reply in chat; ``n_predict``: --n-predict, tokens to generate; one of the
    two is None), the prompt's bytes (from -i or the -f file; None: none given) and the file."""

    sampling: Sampling
    steps: int | None
    n_predict: int | None
    prompt: bytes | None
    prompt_file: Path | None = None

    @property
    def temperature(self) -> float:
        return self.sampling.temperature

    @property
    def topp(self) -> float:
        return self.sampling.topp

    @property
    def seed(self) -> int:
        return self.sampling.seed

    def engine_args(self, model: Path | None = None, *, threads: int | None = None, ctx: int | None = None,
                    chat: bool = False, system_prompt: str | None = None) -> EngineArgs:
        """The engine's command line for these options (the seed is always explicit; a prompt
        file is passed as a file, for the engine to read; in chat without a prompt the engine
        reads stdin or holds a conversation)."""
        extras = self.sampling.extras()
        prompt = None if self.prompt_file is not None else self.prompt if self.prompt is not None or chat else b""
        return EngineArgs(model, self.temperature, self.topp, self.seed, self.steps, prompt, threads, ctx,
                          "chat" if chat else None, system_prompt, self.n_predict, self.prompt_file,
                          _int(extras.get("top_k")), extras.get("min_p"), extras.get("repeat_penalty"),
                          _int(extras.get("repeat_last_n")))


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)


def check_options(temperature: float, topp: float, seed: int | None, steps: int | None, prompt: str | None,
                  clock: float, *, n_predict: int | None = None, top_k: int = 0, min_p: float = 0.0,
                  repeat_penalty: float = 1.0, repeat_last_n: int = 64,
                  prompt_file: Path | None = None) -> GenerateOptions:
    """Validate the run options against toolkit/limits.py (the engine's ranges too); where
    llama2.c silently adjusts a value, refuse it instead."""
    _check_sampling(temperature, topp, top_k, min_p, repeat_penalty, repeat_last_n)
    _check_length(steps, n_predict)
    if seed is not None and seed < 0:
        raise UsageError(f"-s {seed}: seed must be >= 0", "use -s 0 (or no -s) for a seed from the clock")
    if seed is not None and seed > LIMITS.max_seed:
        raise UsageError(f"-s {seed}: seed must be at most {LIMITS.max_seed} (2^31 - 1)")
    if prompt is not None and prompt_file is not None:
        raise UsageError("-i/--prompt and -f/--file both give the prompt", "give one of them")
    raw = read_prompt_file(prompt_file) if prompt_file is not None else \
        None if prompt is None else prompt.encode("utf-8", "surrogateescape")
    if raw is not None and b"\0" in raw:
        where = f"the prompt file {prompt_file}" if prompt_file is not None else "the prompt"
        raise UsageError(f"{where} contains a NUL byte", "remove it: prompts are C strings")
    chosen = seed if seed else int(clock) & 0x7FFFFFFF or 1  # llama2.c: time(NULL)
    sampling = Sampling(temperature, topp, chosen, top_k, min_p, repeat_penalty, repeat_last_n)
    if steps is None and n_predict is None:
        steps = DEFAULT_STEPS
    return GenerateOptions(sampling, steps, n_predict, raw, prompt_file)


def _check_sampling(temperature: float, topp: float, top_k: int, min_p: float, repeat_penalty: float,
                    repeat_last_n: int) -> None:
    if not LIMITS.temperature_ok(temperature):
        raise UsageError(f"-t {temperature}: temperature must be {LIMITS.temperature_rule()}",
                         "use -t 0 for greedy decoding")
    if not LIMITS.min_topp <= topp <= LIMITS.max_topp:
        raise UsageError(f"-p {topp}: top-p must be in [{LIMITS.min_topp:g}, {LIMITS.max_topp:g}]",
                         "use -p 0.9 (the default) or 1 to disable")
    if not 0 <= top_k <= LIMITS.max_top_k:
        raise UsageError(f"--top-k {top_k}: must be at least 0 and at most {LIMITS.max_top_k} (2^31 - 1)",
                         "use --top-k 0 (the default) to disable it")
    if not LIMITS.min_min_p <= min_p <= LIMITS.max_min_p:
        raise UsageError(f"--min-p {min_p}: must be in [{LIMITS.min_min_p:g}, {LIMITS.max_min_p:g}]",
                         "use --min-p 0 (the default) to disable it")
    if not LIMITS.min_repeat_penalty <= repeat_penalty <= LIMITS.max_repeat_penalty:
        raise UsageError(f"--repeat-penalty {repeat_penalty}: must be in [{LIMITS.min_repeat_penalty:g}, "
                         f"{LIMITS.max_repeat_penalty:g}]", "use --repeat-penalty 1 (the default) to disable it")
    if not LIMITS.min_repeat_last_n <= repeat_last_n <= LIMITS.max_repeat_last_n:
        raise UsageError(f"--repeat-last-n {repeat_last_n}: must be -1 (the whole context), 0 (off) or a count of "
                         f"positions up to {LIMITS.max_repeat_last_n} (2^31 - 1)")


def _check_length(steps: int | None, n_predict: int | None) -> None:
    if steps is not None and n_predict is not None:
        raise UsageError("-n/--steps and --n-predict both set the length",
                         "give one: -n counts positions including the prompt, --n-predict the tokens generated")
    if steps is not None and not 0 <= steps <= LIMITS.max_steps:
        raise UsageError(f"-n {steps}: steps must be >= 0 and at most {LIMITS.max_steps} (2^31 - 1)",
                         "use -n 0 for the whole context (so does any -n above it)" if steps >= 0 else
                         "use -n 0 for the whole context (llama.cpp's -n -1)")
    if n_predict is not None and not 0 <= n_predict <= LIMITS.max_n_predict:
        raise UsageError(f"--n-predict {n_predict}: must be >= 0 and at most {LIMITS.max_n_predict} (2^31 - 1)",
                         "use --n-predict 0 to generate until the context is full (llama.cpp's -1)")


MAX_PROMPT_FILE = 16 << 20  # the engine's limit too (main.c)


def read_prompt_file(path: Path) -> bytes:
    """-f: the file's bytes, one final newline dropped (as llama.cpp and the engine do)."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InputError(f"-f {path}: is a directory, not a prompt file")
        if size > MAX_PROMPT_FILE:
            raise UsageError(f"-f {path}: the prompt file is larger than 16 MiB ({size:,} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"-f {path}: cannot read the prompt file: {exc.strerror}") from None
    return data[:-1] if data.endswith(b"\n") else data


def load_model(checkpoint: Path, tokenizer: Path | None) -> Model:
    return fmt.read_any(checkpoint, tokenizer)


MODEL_FILE = "model.bin"
CONVERTED, GGUF, LLAMA2C = "converted", "gguf", "llama2c"  # the kinds of input file


@dataclass(frozen=True)
class Input:
    """A model file read once, its kind sniffed once; a llama2.c checkpoint with its tokenizer's
    bytes (the tokenizer given, or the one it defaults to)."""

    path: Path
    data: bytes
    kind: str  # CONVERTED, GGUF or LLAMA2C
    tokenizer: Path | None = None
    tokenizer_data: bytes = b""

    @cached_property
    def sha256(self) -> str:
        return sha256_bytes(self.data)

    def model(self, chat: bool = True, chat_kwargs: dict[str, Any] | None = None) -> Model:
        """The file's model, decoded from the bytes read; a GGUF's chat template rendered with
        ``chat_kwargs`` (``convert --chat-template-kwargs``), left out when not ``chat``."""
        if self.kind == CONVERTED:
            return fmt.decode(self.data, str(self.path))
        if self.kind == GGUF:
            return gguf.read_gguf(self.path, self.data, chat, chat_kwargs)
        return parse_checkpoint(self.data, str(self.path), parse_tokenizer(self.tokenizer_data, str(self.tokenizer)))


def open_input(path: Path, tokenizer: Path | None) -> Input:
    """Read ``path`` once and sniff it: a converted file, a GGUF file (a damaged one says so) or a
    llama2.c checkpoint, whose tokenizer's bytes are read too (``tokenizer``, else its default)."""
    data = read_bytes(path, "checkpoint")
    if fmt.sniff(data):
        return Input(path, data, CONVERTED)
    if gguf.sniff(data):
        return Input(path, data, GGUF)
    if path.suffix.lower() == ".gguf":
        gguf.read_gguf(path, data)  # a damaged GGUF file: its own message
        raise InputError(f"{path}: not a model file")  # (read_gguf raised already)
    config = parse_config(data, str(path))
    tokenizer = tokenizer or default_tokenizer_for(config, str(path))
    return Input(path, data, LLAMA2C, tokenizer, read_tokenizer_bytes(tokenizer, config.vocab_size))


@dataclass(frozen=True)
class Converted:
    """A converted file for a target, and its header (no tensor decoded: ``load_model`` of the
    path does that)."""

    path: Path
    header: fmt.Header


def convert(source: Input, target: Target, cache: Path, quant: str | None = None) -> Converted:
    """A converted file in the target's byte order and the asked quantization (None: the file's
    own, f32 for a llama2.c checkpoint): the input itself when it already is one, else a
    conversion into the cache (an entry keyed by the inputs' content, checked before use)."""
    if source.kind == GGUF:
        if quant is not None:
            raise UsageError(f"--quant {quant}: a GGUF model keeps its own quantization", "leave out --quant")
        return _cached_model(cache, source, target.endian, None)
    if source.kind == CONVERTED:
        header = fmt.read_header(source.data, len(source.data), str(source.path))
        wanted = quant or header.quant
        if header.endian == target.endian and header.quant == wanted:
            return Converted(source.path, header)
        return _cached_model(cache, source, target.endian, wanted)
    return _cached_model(cache, source, target.endian, quant or "f32")


def _cached_model(cache: Path, source: Input, endian: str, quant: str | None) -> Converted:
    """The cache entry of ``source`` (its bytes, and a llama2.c checkpoint's tokenizer's) converted
    to ``endian`` and ``quant`` (None: a GGUF model, its blocks kept); the model is read only when
    the entry must be made."""
    checkpoint = source.path
    hashes = [source.sha256, *([sha256_bytes(source.tokenizer_data)] if source.kind == LLAMA2C else [])]
    layout = [endian.encode(), *([quant.encode()] if quant is not None else []), str(fmt.FORMAT_VERSION).encode()]
    key = sha256_bytes(b"\0".join([h.encode() for h in hashes] + layout))
    name = f"{checkpoint.stem}-{endian}-{quant + '-' if quant else ''}{key[:16]}"
    inputs = {"source": checkpoint.name, "source_sha256": hashes[0], "endian": endian, "quant": quant or "as-is",
              "format_version": str(fmt.FORMAT_VERSION), **({"tokenizer_sha256": hashes[1]} if len(hashes) > 1 else {})}

    def fill(folder: Path) -> None:
        model = source.model()
        label = f"{endian}-endian {quant}" if quant else f"{endian}-endian"
        print(f"converting {checkpoint.name} to {label}: {cache / 'models' / name / MODEL_FILE}", file=sys.stderr)
        for note in model.notes:
            print(note, file=sys.stderr)
        # the file's own blocks are kept as they are (q4_1 is a GGUF block, not a --quant choice)
        (folder / MODEL_FILE).write_bytes(fmt.encode(model, endian, None if quant in (None, model.quant) else quant))

    path = cache_mod.obtain(cache, "models", name, fill, inputs) / MODEL_FILE
    return Converted(path, fmt.read_header_file(path))


def build(target: Target, cache: Path, toolchain: str | None = None, engine: str | None = None) -> Build:
    """The engine for ``target`` from the cache, or rendered once and compiled into it (a docker
    hit is keyed by the image's id and starts no container): toolkit/toolchain.py."""
    return cached_build(target, cache, toolchain, engine)


def emulator_for(target: Target, system: bool, cache: Path) -> Emulator:
    """Where the engine runs: the target's machine under full-system QEMU (its kernel in ``cache``),
    or user mode."""
    if not system:
        return UserMode(target)
    from .system import SystemMode

    return SystemMode(target, cache)


ENGINE_USAGE, ENGINE_CONTEXT_FULL = 2, 3  # the engine's exit codes (engine/cli.h)
CONTEXT_HINT = "allow more positions with --ctx N (the model's own context is the most)"


def program_failure(name: str, target: Target, returncode: int, stderr: bytes) -> RunError | UsageError:
    """The error for a program's failed run, from its exit status and the last line it wrote on
    stderr (b"" when that went to the terminal): the engine's exit 3 is ContextFullError, its
    exit 2 a UsageError, anything else a RunError."""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else None
    if returncode == ENGINE_CONTEXT_FULL:
        return ContextFullError(_engine_says(last, "the context is full"), CONTEXT_HINT)
    if returncode == ENGINE_USAGE:
        return UsageError(_engine_says(last, f"{name} refused its command line on {target.name}"))
    return RunError(f"{name} failed on {target.name} (exit status {returncode}): {last or 'no message'}")


def _engine_says(line: str | None, default: str) -> str:
    """The engine's own line, without its "error: " (the CLI adds its own)."""
    if line is None:
        return default
    return line[len("error: "):] if line.startswith("error: ") else line
