"""Full-system verification: the golden cases byte for byte on a booted PowerPC Linux with the
target's RAM, the CLI path a user types, and a model too large for that RAM failing in the guest."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import format as fmt
from toolkit.errors import RunError, RunTimeoutError
from toolkit.emulate import EngineArgs
from toolkit.system import SystemMode, run_system
from toolkit.system.kernel import Kernel
from toolkit.targets import load_target
from toolkit.toolchain import Build
from tests.helpers import GoldenCase, golden_params, require_case

from .conftest import SYSTEM_TARGETS


def cli(*args: str, cache: Path, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
    import os

    env = dict(os.environ, PPC_LLM_CACHE=str(cache))
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, env=env,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("case", golden_params())
@pytest.mark.parametrize("name", SYSTEM_TARGETS)
def test_golden_in_full_system(name: str, case: GoldenCase | None, kernels: dict[str, Kernel],
                               system_builds: dict[str, Build], system_models: dict[str, Path], cache: Path) -> None:
    case = require_case(case)
    target = load_target(name)
    result = SystemMode(target, cache).run(system_builds[name].engine, case.args(system_models[name]), timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected  # byte for byte: its own channel, no \r, no kernel text
    assert b"achieved tok/s" in result.stderr  # the program's stderr, from the console
    fig = result.guest
    assert fig is not None
    # the guest saw the target's RAM (less what the kernel keeps), and the program ran in it
    assert 0.85 * target.ram_mib * 1024 < fig.mem_total_kib <= target.ram_mib * 1024
    assert 0 < fig.peak_rss_kib < fig.mem_total_kib
    assert 0 < fig.program_ms < fig.machine_s * 1000


@pytest.mark.parametrize("name", SYSTEM_TARGETS)
def test_run_qemu_system_cli(name: str, kernels: dict[str, Kernel], golden: list[GoldenCase], cache: Path,
                             bundled_model_paths: tuple[Path, Path]) -> None:
    """What a user types: same options and same stdout as user mode, guest figures on stderr."""
    case = golden[-1]
    checkpoint, tokenizer = bundled_model_paths
    result = cli("run-qemu", "--system", "--target", name, "--checkpoint", str(checkpoint), "--tokenizer",
                 str(tokenizer), *case.engine_args(), cache=cache)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == case.expected
    stderr = result.stderr.decode()
    assert f"guest {name}: peak memory" in stderr and "achieved tok/s" in stderr


def too_large(name: str, source: Path, directory: Path) -> tuple[Path, int]:
    """stories260K with a context so long that its KV caches (two of n_layers * seq_len * kv_dim
    floats) need 1.5 times the target's RAM. Each cache alone fits the address space (so the
    engine's size checks pass, even on 32 bits) and the file stays small (the initramfs holds it
    in RAM): it is the engine's allocation that must fail, in the guest, under strict commit.
    Also the context, which the run asks for (the engine caps its default at 2048 positions)."""
    model = fmt.read_any(source, None)
    cfg = model.config
    kv_dim = cfg.dim * cfg.n_kv_heads // cfg.n_heads
    seq_len = 3 * load_target(name).ram_mib * 2**20 // (4 * cfg.n_layers * kv_dim * 4)
    big = dataclasses.replace(model, config=dataclasses.replace(cfg, seq_len=seq_len))
    path = directory / f"long-context-{name}.bin"
    path.write_bytes(fmt.encode(big, "big"))
    return path, seq_len


@pytest.mark.parametrize("name", SYSTEM_TARGETS)
def test_model_too_large_for_ram_fails_in_the_guest(name: str, kernels: dict[str, Kernel],
                                                    system_models: dict[str, Path], cache: Path,
                                                    tmp_path: Path) -> None:
    model, context = too_large(name, system_models[name], tmp_path)
    result = cli("run-qemu", "--system", "--target", name, "--checkpoint", str(model), "--ctx", str(context),
                 "-t", "0", "-n", "8",
                 "--timeout", "300", cache=cache, timeout=400)
    stderr = result.stderr.decode()
    assert result.returncode == 6, stderr  # a run failure, reported, not a hang (the timeout is 300 s)
    assert f"error: the engine failed on {name} (exit status 1): " in stderr
    assert "out of memory allocating the KV cache" in stderr  # the engine's own message, from the guest
    assert result.stdout == b""


def test_kernel_panic_is_reported_with_the_console_log(kernels: dict[str, Kernel], system_builds: dict[str, Build],
                                                       system_models: dict[str, Path], cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An /init the kernel cannot run: the kernel panics, panic=-1 and -no-reboot end the machine
    at once, and the error names the panic and keeps the console log."""
    monkeypatch.setattr("toolkit.system.cached_init", lambda target, cache: system_models["g4"])  # not an ELF
    with pytest.raises(RunError, match=r"the guest kernel panicked on g4: Kernel panic") as caught:
        run_system(load_target("g4"), system_builds["g4"].engine, EngineArgs(system_models["g4"], steps=4), 120, cache)
    log = Path(str(caught.value.hint).removeprefix("console log: "))
    assert b"Kernel panic" in log.read_bytes()


def test_timeout_is_reported(kernels: dict[str, Kernel], system_builds: dict[str, Build],
                             system_models: dict[str, Path], cache: Path) -> None:
    with pytest.raises(RunTimeoutError, match=r"the guest timed out after 1 s on xenon"):
        run_system(load_target("xenon"), system_builds["xenon"].engine, EngineArgs(system_models["xenon"], steps=0), 1,
                   cache)
