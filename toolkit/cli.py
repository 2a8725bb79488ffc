"""The command line: typer commands that wire the stages, and the only place errors are caught.

Stdout carries only the generated program's text; everything the toolkit says goes to stderr.
Exit codes are documented in toolkit/errors.py and the README.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__, format as fmt
from .cache import cache_root
from .emulate import RunResult, run_user
from .errors import EXIT_CODES, ToolkitError, UsageError, VerifyError
from .fsutil import atomic_write_bytes
from .models import Model
from .pipeline import GenerateOptions, check_options, converted_for, load_model, program_failure
from .resources import default_checkpoint, default_tokenizer
from .targets import Target, available_targets, load_target
from .toolchain import build as build_target, cached_build

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build, convert, run and verify llama2.c-style LLM inference for big-endian PowerPC.")
_state = {"debug": False}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def targets() -> None:
    """List the target profiles."""
    for name in available_targets():
        target = load_target(name)
        say(f"{name:8} {target.description}")


@app.command()
def convert(
    checkpoint: Annotated[Path, typer.Argument(help="llama2.c checkpoint (.bin) or a converted file")],
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="llama2.c tokenizer.bin (embedded in the output)")] = None,
    endian: Annotated[str, typer.Option("--endian", help="byte order of the output: big or little")] = "big",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="output file (default: NAME.be.bin / NAME.le.bin here)")] = None,
) -> None:
    """Convert model weights (and tokenizer) to the target's byte order and alignment."""
    if endian not in fmt.ENDIANS:
        raise UsageError(f"--endian {endian}: must be 'big' or 'little'")
    model = load_model(checkpoint, tokenizer)
    out = output or Path(f"{checkpoint.stem}.{'be' if endian == 'big' else 'le'}.bin")
    if out.is_dir():
        raise UsageError(f"--output {out} is a directory", "give a file name")
    payload = fmt.encode(model, endian)
    atomic_write_bytes(out, payload)
    cfg = model.config
    say(f"wrote {out} ({len(payload):,} bytes, {endian}-endian, format v{fmt.FORMAT_VERSION}): dim {cfg.dim}, "
        f"{cfg.n_layers} layers, {cfg.n_heads} heads, vocab {cfg.vocab_size}, context {cfg.seq_len}")


@app.command()
def build(
    target: Annotated[str, typer.Option("--target", help="target profile (see `ppc-llm targets`)")] = "g4",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="build directory (default: build/TARGET)")] = None,
) -> None:
    """Render the C engine for a target, cross-compile it and check the ELF."""
    profile = load_target(target)
    result = build_target(profile, output or Path("build") / profile.name)
    code = result.engine_code
    say(f"built {result.engine} for {profile.name} ({profile.description})" +
        (f": {code.get('vmaddfp', 0)} vmaddfp in the engine's code, no VSX" if code else ""))


@app.command("run-qemu")
def run_qemu(
    target: Annotated[str, typer.Option("--target", help="target profile (see `ppc-llm targets`)")] = "g4",
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="llama2.c checkpoint or converted file (default: the bundled stories260K)")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="tokenizer.bin, needed with a llama2.c checkpoint")] = None,
    temperature: Annotated[float, typer.Option("-t", "--temperature", help="0 = greedy")] = 1.0,
    topp: Annotated[float, typer.Option("-p", "--topp", help="top-p (nucleus) in [0, 1]")] = 0.9,
    seed: Annotated[Optional[int], typer.Option("-s", "--seed", help="random seed; 0 or none: from the clock")] = None,
    steps: Annotated[int, typer.Option("-n", "--steps", help="positions incl. the prompt; 0 = whole context")] = 256,
    prompt: Annotated[Optional[str], typer.Option("-i", "--prompt", help="prompt text (default: empty)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="compare with the NumPy reference; exit 7 on mismatch")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds before the run is abandoned")] = 600.0,
    system: Annotated[bool, typer.Option("--system", help="boot the target's machine under full-system QEMU (RAM as the target's) instead of user mode")] = False,
) -> None:
    """Build and convert what is needed (cached), run the engine under QEMU, print its text."""
    options = check_options(temperature, topp, seed, steps, prompt, time.time())
    if checkpoint is None:
        checkpoint, tokenizer = default_checkpoint(), tokenizer or default_tokenizer()
    profile = load_target(target)
    if system and profile.system is None:
        raise UsageError(f"--system: target '{profile.name}' has no full-system machine",
                         "use a target whose profile has a [system] table, such as g4 or xenon")
    cache = cache_root()
    model_path, model = converted_for(profile, checkpoint, tokenizer, cache)
    engine = cached_build(profile, cache).engine
    guest = ""
    if system:
        result, guest = _run_system(profile, engine, model_path, options, timeout, cache)
    else:
        result = run_user(profile, engine, [str(model_path), *options.argv()], timeout)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.flush()
    if guest:
        say(guest)
    if result.returncode != 0:
        raise program_failure("the engine", profile, result.returncode, result.stderr)
    say(f"seed {options.seed}; {profile.name} run took {result.wall_s:.2f} s wall")
    if verify:
        _verify(model, options, result.stdout)


def _run_system(profile: Target, engine: Path, model_path: Path, options: GenerateOptions, timeout: float,
                cache: Path) -> tuple[RunResult, str]:
    """The run in full-system QEMU, and one line of the guest's figures for stderr."""
    from .system import run_system

    outcome = run_system(profile, engine, model_path, options.argv(), timeout, cache)
    fig = outcome.figures
    return outcome.run, (f"guest {profile.name}: peak memory {fig.peak_rss_kib / 1024:.1f} MiB of "
                         f"{fig.mem_total_kib / 1024:.0f} MiB, kernel boot {fig.boot_ms / 1000:.2f} s, "
                         f"program {fig.program_ms / 1000:.2f} s, "
                         f"machine {fig.machine_s:.2f} s wall (firmware, boot, run, power-off)")


@app.command()
def kernel(
    target: Annotated[str, typer.Option("--target", help="target profile (see `ppc-llm targets`)")] = "g4",
) -> None:
    """Build (or reuse, cached) the guest kernel for the target's full-system machine."""
    from .system.kernel import cached_kernel

    profile = load_target(target)
    built = cached_kernel(profile, cache_root())
    how = f"built in {built.build_s:.0f} s" if built.build_s is not None else "cached"
    say(f"guest kernel for {profile.name} ({how}): {built.image}")


def _verify(model: Model, options: GenerateOptions, stdout: bytes) -> None:
    from . import reference

    ref = reference.generate(model, options.prompt, options.temperature, options.topp, options.seed, options.steps)
    outcome = reference.compare(ref, stdout)
    if not outcome.ok:
        raise VerifyError(outcome.message)
    say(outcome.message)


def _click_exception_types() -> tuple[type[BaseException], ...]:
    """click's usage-error base, from typer's vendored copy and/or click itself."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def main() -> None:
    """Entry point: run the app, turning ToolkitErrors into one line and an exit code."""
    try:
        result = app(standalone_mode=False)
    except ToolkitError as exc:
        if _state["debug"]:
            traceback.print_exc()
        say(f"error: {exc.message}")
        if exc.hint:
            say(f"hint: {exc.hint}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    except _click_exception_types() as exc:
        say(f"error: {exc.format_message()}")  # type: ignore[attr-defined]
        sys.exit(UsageError.exit_code)
    except Exception as exc:
        if _state["debug"] or type(exc).__name__ in ("Exit", "Abort"):
            raise
        say(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback and please report it)")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["app", "main", "EXIT_CODES", "__version__"]
