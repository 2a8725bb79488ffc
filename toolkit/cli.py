"""The command line: typer commands that wire the stages, and the only place errors are caught.

Stdout carries only the generated program's text; everything the toolkit says goes to stderr.
Exit codes are documented in toolkit/errors.py and the README.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, BinaryIO, Optional, TextIO

import typer

from . import __version__, format as fmt, pipeline
from .cache import cache_root
from .emulate import GuestFigures, UserMode
from .errors import EXIT_CODES, InputError, RunError, ToolkitError, UsageError, VerifyError
from .fsutil import atomic_write_bytes
from .interrupt import install as install_interrupts
from .limits import LIMITS
from .models import Model
from .models.chat import chat_kwargs
from .outputs import check_inputs_outside, check_output_file
from .render import DEFAULT_CTX
from .pipeline import GenerateOptions, check_options, load_model, program_failure
from .quant import requested, requested_list
from .resources import default_checkpoint, default_tokenizer
from .targets import Target, available_targets, load_target
from .toolchain import build as build_target, choose_toolchain

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build, convert, run and verify llama2.c-style LLM inference for big-endian PowerPC.")
_state = {"debug": False}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"ppc-llm {__version__} (model format v{fmt.FORMAT_VERSION})", flush=True)
        raise typer.Exit(0)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False,
          version: Annotated[bool, typer.Option("--version", help="Print the toolkit's and the model format's version.",
                                                callback=_print_version, is_eager=True)] = False) -> None:
    _state["debug"] = debug


@app.command()
def targets() -> None:
    """List the target profiles."""
    for name in available_targets():
        target = load_target(name)
        say(f"{name:8} {target.description}" + ("  [test target]" if target.test_only else ""))


@app.command()
def convert(
    checkpoint: Annotated[Path, typer.Argument(help="llama2.c checkpoint (.bin), GGUF file (.gguf) or a converted file")],
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="llama2.c tokenizer.bin (embedded in the output)")] = None,
    endian: Annotated[str, typer.Option("--endian", help="byte order of the output: big or little")] = "big",
    quant: Annotated[Optional[str], typer.Option("--quant", help="matrix weights: f32, q8_0 or q4_0 (groups of 32); default: as the input is (GGUF blocks are kept)")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="output file (default: NAME.be.bin / NAME.le.bin here)")] = None,
    chat_template_kwargs: Annotated[Optional[str], typer.Option("--chat-template-kwargs", help="GGUF: JSON object of chat template variables, as llama.cpp's, e.g. '{\"enable_thinking\": false}'", show_default=False)] = None,
    no_chat: Annotated[bool, typer.Option("--no-chat", help="GGUF: leave out the chat template (no chat mode)")] = False,
) -> None:
    """Convert model weights (and tokenizer) to the target's byte order and alignment."""
    if endian not in fmt.ENDIANS:
        raise UsageError(f"--endian {endian}: must be 'big' or 'little'")
    if no_chat and chat_template_kwargs is not None:
        raise UsageError("--chat-template-kwargs renders the chat template: leave out --no-chat")
    kwargs = chat_kwargs(chat_template_kwargs) if chat_template_kwargs is not None else None
    out = output or Path(f"{checkpoint.stem}.{'be' if endian == 'big' else 'le'}.bin")
    check_output_file(out, fmt.MAGIC)
    check_inputs_outside(out, [checkpoint, tokenizer])
    model = pipeline.open_input(checkpoint, tokenizer).model(not no_chat, kwargs)
    for note in model.notes:
        say(note)
    payload = fmt.encode(model, endian, quant)
    atomic_write_bytes(out, payload)
    cfg = model.config
    say(f"wrote {out} ({len(payload):,} bytes, {endian}-endian, {quant or model.matrix_kinds}, format v{fmt.FORMAT_VERSION}): dim {cfg.dim}, "
        f"{cfg.n_layers} layers, {cfg.n_heads} heads, vocab {cfg.vocab_size}, context {cfg.seq_len}")


TOOLCHAIN_HELP = "host (cross-gcc on PATH) or docker (in a container); default: $PPC_LLM_TOOLCHAIN, else host"
ENGINE_HELP = "container engine for --toolchain docker: docker or podman; default: $PPC_LLM_ENGINE, else whichever answers"


@app.command()
def build(
    target: Annotated[str, typer.Option("--target", help="target profile (see `ppc-llm targets`)")] = "g4",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="build directory (default: build/TARGET)")] = None,
    toolchain: Annotated[Optional[str], typer.Option("--toolchain", help=TOOLCHAIN_HELP)] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help=ENGINE_HELP)] = None,
    emit_source: Annotated[Optional[Path], typer.Option("--emit-source", help="write a source bundle (C, Makefile, README) to this directory instead of building")] = None,
) -> None:
    """Render the C engine for a target, cross-compile it, check the ELF and audit its ISA."""
    profile = load_target(target)
    if emit_source is not None:
        from .bundle import write_bundle

        if output is not None or toolchain is not None or engine is not None:
            raise UsageError("--emit-source writes sources only: it takes no --output, --toolchain or --engine")
        names = write_bundle(profile, emit_source)
        say(f"wrote {emit_source}/ for {profile.name}: {', '.join(names)}; build it there with make")
        return
    result = build_target(profile, output or Path("build") / profile.name, choose_toolchain(toolchain), engine)
    code = result.engine_code
    audit = ""
    if profile.isa is not None:
        audit = f"; ISA audit passed ({code.get('instructions', 0)} instructions in {code.get('functions', 0)} engine functions"
        audit += "".join(f", {code.get(m, 0)} {m}" for m in profile.isa.require) + ")"
    say(f"built {result.engine} for {profile.name} ({profile.description}) with the "
        f"{result.manifest['toolchain']} toolchain{audit}")


@app.command()
def release(
    targets_csv: Annotated[Optional[str], typer.Option("--targets", help="comma-separated targets (default: every emulated target)")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="llama2.c checkpoint, GGUF file or converted file (default: the bundled stories260K)")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="tokenizer.bin, needed with a llama2.c checkpoint")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="release directory")] = Path("dist"),
    toolchain: Annotated[Optional[str], typer.Option("--toolchain", help=TOOLCHAIN_HELP)] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help=ENGINE_HELP)] = None,
) -> None:
    """Write dist/: per target a static binary, the converted model, a README and a manifest; SHA256SUMS."""
    from .release import write_release

    names = [n.strip() for n in targets_csv.split(",") if n.strip()] if targets_csv else \
        [n for n in available_targets() if load_target(n).emulator is not None and not load_target(n).test_only]
    if not names:
        raise UsageError("--targets is empty", f"available targets: {', '.join(available_targets())}")
    profiles = [load_target(n) for n in dict.fromkeys(names)]
    if checkpoint is None:
        checkpoint, tokenizer = default_checkpoint(), tokenizer or default_tokenizer()
    files = write_release(profiles, checkpoint, tokenizer, output, cache_root(), choose_toolchain(toolchain), engine)
    for path in files:
        say(f"{path.stat().st_size:>10,}  {path.relative_to(os.path.abspath(output)).as_posix()}")
    say(f"wrote {output}/ ({len(files)} files) for {', '.join(p.name for p in profiles)}; "
        f"check with: cd {output} && sha256sum -c SHA256SUMS")


@app.command()
def doctor() -> None:
    """For each target: which tools are present or missing (and the apt package), and whether a
    container engine answers for --toolchain docker."""
    from .doctor import report

    lines, incomplete = report([load_target(n) for n in available_targets()])
    for line in lines:
        say(line)
    say(f"{incomplete} target(s) incomplete" if incomplete else "every target has its tools")


@app.command("run-qemu")
def run_qemu(
    target: Annotated[str, typer.Option("--target", help="target profile (see `ppc-llm targets`)")] = "g4",
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", "--model", help="llama2.c checkpoint, GGUF file or converted file (default: the bundled stories260K)")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="tokenizer.bin, needed with a llama2.c checkpoint")] = None,
    temperature_short: Annotated[Optional[float], typer.Option("-t", help="temperature (as llama2.c's -t; threads are --threads)", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temp", "--temperature", help="temperature: 0 = greedy, default 1.0", show_default=False)] = None,
    topp: Annotated[float, typer.Option("-p", "--top-p", "--topp", help="top-p (nucleus) in [0, 1]; 0 or 1: off")] = 0.9,
    top_k: Annotated[int, typer.Option("--top-k", help="keep the k most likely tokens; 0: off")] = 0,
    min_p: Annotated[float, typer.Option("--min-p", help="drop tokens below min-p x the top one's probability; 0: off")] = 0.0,
    repeat_penalty: Annotated[float, typer.Option("--repeat-penalty", help="penalty for tokens of the last --repeat-last-n positions; 1: off")] = 1.0,
    repeat_last_n: Annotated[int, typer.Option("--repeat-last-n", help="positions the repeat penalty looks back over, prompt included; 0: off, -1: the whole context")] = 64,
    seed: Annotated[Optional[int], typer.Option("-s", "--seed", help="random seed; 0 or none: from the clock")] = None,
    steps: Annotated[Optional[int], typer.Option("-n", "--steps", help="positions incl. the prompt (chat: tokens per reply); 0 = whole context; default 256", show_default=False)] = None,
    n_predict: Annotated[Optional[int], typer.Option("--n-predict", help="tokens to generate (chat: per reply); 0 = until the context is full; instead of -n", show_default=False)] = None,
    prompt: Annotated[Optional[str], typer.Option("-i", "--prompt", help="prompt text (default: empty)")] = None,
    prompt_file: Annotated[Optional[Path], typer.Option("-f", "--file", help="prompt from a file (the engine reads it; one final newline dropped)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="compare with the NumPy reference; exit 7 on mismatch")] = False,
    quant: Annotated[Optional[str], typer.Option("--quant", help="convert the matrices to f32, q8_0 or q4_0 first (default: as the file is)")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="worker threads (default: the target's hardware threads)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds before the run is stopped (exit 8; what it printed stays)")] = 600.0,
    system: Annotated[bool, typer.Option("--system", help="boot the target's machine under full-system QEMU (RAM as the target's) instead of user mode")] = False,
    chat: Annotated[bool, typer.Option("--chat", help="chat with a model that has a chat template: one turn from -i, -f or stdin, a conversation when stdin is a terminal")] = False,
    system_prompt: Annotated[Optional[str], typer.Option("--system-prompt", help="with --chat: the system prompt (default: the model's template's)")] = None,
    ctx: Annotated[Optional[int], typer.Option("--ctx", "--ctx-size", help=f"KV-cache positions (default: the model's context, at most {DEFAULT_CTX})")] = None,
) -> None:
    """Build and convert what is needed (cached), run the engine under QEMU, print its text."""
    program_stdout()
    _check_checkpoint_habit(checkpoint)
    options = check_options(_temperature(temperature_short, temperature), topp, seed, steps, prompt, time.time(),
                            n_predict=n_predict, top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                            repeat_last_n=repeat_last_n, prompt_file=prompt_file)
    if temperature_short is not None and temperature_short > 2:  # llama.cpp's -t is threads: a word, no error
        say(f"note: -t {temperature_short:g} is the temperature (as in llama2.c); threads are --threads")
    _check_timeout(timeout)
    if system_prompt is not None and not chat:
        raise UsageError("--system-prompt needs --chat")
    if ctx is not None and not LIMITS.min_ctx <= ctx <= LIMITS.max_ctx:
        raise UsageError(f"--ctx {ctx}: must be at least {LIMITS.min_ctx} and at most {LIMITS.max_ctx} (2^31 - 1)",
                         "a context above the model's own is capped to it")
    if chat and verify:
        raise UsageError("--verify compares raw completions: leave out --chat")
    if checkpoint is None:
        checkpoint, tokenizer = default_checkpoint(), tokenizer or default_tokenizer()
    profile = load_target(target)
    if system and profile.system is None:
        raise UsageError(f"--system: target '{profile.name}' has no full-system machine",
                         "use a target whose profile has a [system] table, such as g4 or xenon")
    cache = cache_root()
    quant = requested(quant)
    if threads is not None:
        _check_threads(threads, profile)
    converted = pipeline.convert(pipeline.open_input(checkpoint, tokenizer), profile, cache, quant)
    model_path, header = converted.path, converted.header
    if chat and not header.chat:
        raise UsageError(f"--chat: {checkpoint} has no chat template", "run it without --chat")
    engine = pipeline.build(profile, cache).engine
    args = options.engine_args(model_path, threads=threads, ctx=ctx, chat=chat, system_prompt=system_prompt)
    if chat and options.prompt is None and sys.stdin.isatty() and not system:
        code = UserMode(profile).interactive(engine, args)
        if code not in (0, INTERRUPTED):
            raise program_failure("the engine", profile, code, b"")
        if code == INTERRUPTED:
            raise typer.Exit(INTERRUPTED)  # Ctrl-C at the prompt ended the conversation (the engine said so)
        return
    from .emulate import StdoutClosed, silence_stdout, to_stderr, to_stdout

    emulator = pipeline.emulator_for(profile, system, cache)
    try:  # the program's stdout and stderr pass through as they arrive; a copy is kept for --verify
        result = emulator.run(engine, args, timeout, out=to_stdout, err=to_stderr)
    except StdoutClosed:  # `ppc-llm run-qemu ... | head`: the reader has what it wanted; the run was stopped
        silence_stdout()
        return
    if result.guest is not None:
        say(_guest_line(profile, result.guest))
    if result.returncode != 0:
        raise program_failure("the engine", profile, result.returncode, result.stderr)
    say(f"seed {options.seed}; {profile.name} run took {result.wall_s:.2f} s wall")
    if verify:
        _verify(load_model(model_path, None), options, result.stdout, ctx)


INTERRUPTED = 130


def _temperature(short: float | None, long: float | None) -> float:
    if short is not None and long is not None:
        raise UsageError("-t and --temp both give the temperature", "give one of them")
    return short if short is not None else long if long is not None else 1.0


def _check_checkpoint_habit(checkpoint: Path | None) -> None:
    """llama.cpp's short options mean other things here (-c the context, -t threads, -p the
    prompt): a clear word where the habit would otherwise misfire (-t's note is in ``run_qemu``,
    -p's hint in ``main``)."""
    if checkpoint is not None and not checkpoint.exists() and str(checkpoint).isdigit():
        raise UsageError(f"-c {checkpoint}: there is no checkpoint file named {checkpoint}",
                         "the context is --ctx / --ctx-size (as llama.cpp's -c); -c is the checkpoint")


@app.command()
def bench(
    target: Annotated[str, typer.Option("--target", help="an emulated target with a [bench] table")] = "g4",
    shape: Annotated[str, typer.Option("--shape", help="stories15M, stories42M, stories110M, stories260K, or a model file (llama2.c checkpoint, GGUF, converted)")] = "stories110M",
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-z", help="tokenizer for a llama2.c checkpoint given as --shape")] = None,
    quant: Annotated[str, typer.Option("--quant", help="comma list of f32, q8_0, q4_0 (the scalar fp32 baseline is always included)")] = "f32,q8_0,q4_0",
    threads: Annotated[Optional[str], typer.Option("--threads", help="comma list of thread counts (default: 1 and the target's hardware threads)")] = None,
    lengths: Annotated[str, typer.Option("--lengths", help="two run lengths in positions; their difference gives the steady state")] = "2,5",
    jobs: Annotated[int, typer.Option("--jobs", help="QEMU runs in parallel")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
    do_fit: Annotated[bool, typer.Option("--fit", help="also solve the profile's projection constants from the fp32 rows")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per QEMU run")] = 3600.0,
) -> None:
    """Count instructions and memory bytes per token under QEMU and project tok/s on the machine."""
    from . import bench as benchmod

    program_stdout()
    profile = load_target(target)
    quants = requested_list(quant)
    counts = _int_list(threads, "--threads") if threads else sorted({1, profile.hardware_threads})
    for count in counts:
        _check_threads(count, profile)
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: must be at least 1")
    _check_timeout(timeout)
    pair = _int_list(lengths, "--lengths")
    if len(pair) != 2:
        raise UsageError(f"--lengths {lengths}: give two lengths, e.g. 2,5")
    model, key = benchmod.bench_model(shape, tokenizer)
    rows = benchmod.run_bench(profile, model, key, quants, counts, (pair[0], pair[1]), cache_root(), jobs, timeout)
    if as_json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(benchmod.format_table(profile, shape, rows))
    if do_fit:
        simd = next((r for r in rows if r.quant == "f32" and r.kernel != "scalar" and r.threads == 1), None)
        if simd is None or profile.bench is None:
            raise UsageError("--fit needs a SIMD target and f32 in --quant")
        a, b = benchmod.fit(profile.bench, rows[0], simd)
        say(f"fit: instruction_seconds = {a:.4g}, byte_seconds = {b:.4g} (put them in {profile.source})")


def _check_threads(threads: int, profile: Target) -> None:
    most = LIMITS.threads_allowed(profile.hardware_threads)
    if not 1 <= threads <= most:
        raise UsageError(f"--threads {threads}: must be between 1 and {most}",
                         None if LIMITS.has_pool(profile.hardware_threads) else
                         f"target '{profile.name}' has one hardware thread: its engine has no thread support")


MAX_TIMEOUT = 366 * 86400  # a year: far past any run, well inside what the OS timers take


def _check_timeout(timeout: float) -> None:
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise UsageError(f"--timeout {timeout}: must be a number of seconds above 0 and at most {MAX_TIMEOUT}")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option} {text}: give comma-separated integers") from None
    if not values or min(values) < 1:
        raise UsageError(f"{option} {text}: values must be >= 1")
    return values


def _guest_line(profile: Target, fig: GuestFigures) -> str:
    """One line of a full-system run's guest figures, for stderr."""
    return (f"guest {profile.name}: peak memory {fig.peak_rss_kib / 1024:.1f} MiB of "
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


def _verify(model: Model, options: GenerateOptions, stdout: bytes, ctx: int | None) -> None:
    from . import reference

    ref = reference.generate_with(model, options.prompt or b"", options.sampling,
                                  options.steps if options.steps is not None else 0, ctx, options.n_predict)
    outcome = reference.compare(ref, stdout)
    if not outcome.ok:
        raise VerifyError(outcome.message)
    say(outcome.message)


def program_stdout() -> BinaryIO:
    """Our stdout for the program's text; InputError (exit 3) before any work when it is closed."""
    if sys.stdout is None or not _writable_fd(sys.stdout):
        raise InputError("standard output is closed (or not writable): there is nowhere to print the text",
                         "run it with stdout open (a terminal, a pipe or `> file`)")
    return sys.stdout.buffer


def _writable_fd(stream: TextIO) -> bool:
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return True  # an in-memory stream (tests): not a descriptor to check
    try:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
    except OSError:
        return False


_PARAMETER_HINTS = {  # a value click cannot read, by option: llama.cpp's habits
    "topp": "the prompt is -i / --prompt (llama.cpp's -p); -p is top-p, as in llama2.c",
}


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
    """Entry point (after toolkit.entry): run the app, turning ToolkitErrors into one line and an
    exit code."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt, cleaned up
    install_interrupts()  # SIGTERM / SIGHUP clean up like Ctrl-C (exit 130)
    try:
        result = app(standalone_mode=False)
    except BrokenPipeError:
        from .emulate import silence_stdout

        silence_stdout()  # `ppc-llm bench ... | head`: the reader has all it wanted; exit 0 as `yes | head`
        sys.exit(0)
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
        hint = _PARAMETER_HINTS.get(getattr(getattr(exc, "param", None), "name", None) or "")
        if hint:
            say(f"hint: {hint}")
        sys.exit(UsageError.exit_code)
    except Exception as exc:
        if _state["debug"] or type(exc).__name__ in ("Exit", "Abort"):
            raise
        say(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback and please report it)")
        sys.exit(1)
    if result == 130:
        say("interrupted")  # typer turns Ctrl-C (and SIGTERM, toolkit/interrupt.py) into exit code 130
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["app", "main", "EXIT_CODES", "__version__"]
