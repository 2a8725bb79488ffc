"""Option checks: llama2.c's silent adjustments become clear errors here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from toolkit.errors import UsageError
from toolkit.pipeline import check_options


def ok(**kw: object) -> object:
    args = {"temperature": 1.0, "topp": 0.9, "seed": 7, "steps": 256, "prompt": "hi", "clock": 1e9}
    args.update(kw)
    return check_options(**args)  # type: ignore[arg-type]


def test_defaults_pass_and_seed_is_explicit() -> None:
    opts = ok()
    assert opts.engine_args().argv() == ["-t", "1.0", "-p", "0.9", "-s", "7", "-n", "256", "-i", b"hi"]


@pytest.mark.parametrize("seed", [None, 0])
def test_seed_from_clock(seed: int | None) -> None:
    assert ok(seed=seed, clock=1234567.9).seed == 1234567


@pytest.mark.parametrize("kw,pattern", [
    ({"temperature": -0.1}, "temperature must be"),
    ({"temperature": math.nan}, "temperature must be"),
    ({"topp": 1.5}, "top-p must be"),
    ({"topp": -0.01}, "top-p must be"),
    ({"steps": -1}, "steps must be"),
    ({"seed": -3}, "seed must be"),
    ({"prompt": "a\0b"}, "NUL byte"),
])
def test_out_of_range_values_are_refused(kw: dict[str, object], pattern: str) -> None:
    with pytest.raises(UsageError, match=pattern):
        ok(**kw)


def test_edges_are_accepted() -> None:
    edge = ok(temperature=0.0, topp=0.0, steps=0, prompt=None)
    assert edge.prompt is None and edge.engine_args().prompt == b""  # raw mode: an empty prompt
    assert ok(topp=1.0).topp == 1.0


def test_a_converted_gguf_model_is_reconverted_for_the_other_byte_order(tmp_path: Path) -> None:
    """A big-endian file converted from GGUF (its Q4_1 blocks kept) runs on a little-endian
    target: the re-conversion keeps the blocks instead of asking for a --quant it cannot make."""
    from toolkit import format as fmt
    from toolkit.fuzz import tinygguf
    from toolkit.models.gguf import read_gguf
    from toolkit.pipeline import convert, open_input
    from toolkit.targets import load_target

    source = tmp_path / "tiny.gguf"
    tinygguf.write(source)
    model = read_gguf(source, source.read_bytes())
    big = tmp_path / "tiny.be.bin"
    big.write_bytes(fmt.encode(model, "big"))
    converted = convert(open_input(big, None), load_target("host"), tmp_path / "cache")
    path, header = converted.path, converted.header
    data = path.read_bytes()
    converted = fmt.decode(data, str(path))
    assert path != big and fmt.file_endian(data, str(path)) == "little" and header.endian == "little"
    assert converted.quant == model.quant and fmt.encode(converted, "big") == big.read_bytes()


def test_engine_args_are_the_one_argv() -> None:
    """Every argv the toolkit hands the engine: run-qemu's (all options), a chat from stdin (no
    -i), bench's counted run (only what it sets), and no model at all (the kernel test)."""
    from toolkit.emulate import EngineArgs

    opts = ok(prompt="hi")
    model = Path("m.bin")
    assert opts.engine_args(model, threads=2, ctx=64, chat=True, system_prompt="be brief").argv() == [
        "m.bin", "-t", "1.0", "-p", "0.9", "-s", "7", "-n", "256", "-i", b"hi", "-T", "2", "-c", "64",
        "-m", "chat", "-y", "be brief"]
    assert ok(prompt=None).engine_args(model, chat=True).argv() == [
        "m.bin", "-t", "1.0", "-p", "0.9", "-s", "7", "-n", "256", "-m", "chat"]
    bench = EngineArgs(model, temperature=0, steps=5, prompt=b"aaa", threads=1)
    assert bench.argv() == ["m.bin", "-t", "0", "-n", "5", "-i", b"aaa", "-T", "1"]
    assert bench.flags() == bench.argv()[1:] and EngineArgs().argv() == []


def test_requested_quantization_is_resolved_in_one_place() -> None:
    from toolkit import format as fmt
    from toolkit.quant import requested, requested_list

    assert requested(None) is None and [requested(q) for q in fmt.QUANT_DTYPES] == list(fmt.QUANT_DTYPES)
    assert requested_list(" f32, q4_0,") == ["f32", "q4_0"]
    for call, text, message in [(requested, "q5_0", "--quant q5_0: must be one of f32, q8_0, q4_0"),
                                (requested_list, "f32,q5_0", "--quant f32,q5_0: each must be one of f32, q8_0, q4_0"),
                                (requested_list, ",", "--quant ,: each must be one of f32, q8_0, q4_0")]:
        with pytest.raises(UsageError) as caught:
            call(text)  # type: ignore[operator]
        assert caught.value.message == message
    with pytest.raises(UsageError, match=r"^--quant q5_0: must be one of f32, q8_0, q4_0$"):
        fmt.encode(None, "big", "q5_0")  # type: ignore[arg-type]  # the converter asks the same function


def test_one_input_is_read_once_for_every_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_input reads and sniffs the file once; convert serves each byte order from it."""
    from toolkit import pipeline
    from toolkit.fuzz import tinygguf
    from toolkit.targets import load_target

    source = tmp_path / "tiny.gguf"
    tinygguf.write(source)
    reads: list[Path] = []
    real = pipeline.read_bytes

    def counting_read(path: Path, what: str) -> bytes:
        reads.append(path)
        return real(path, what)

    monkeypatch.setattr(pipeline, "read_bytes", counting_read)
    opened = pipeline.open_input(source, None)
    assert opened.kind == pipeline.GGUF and opened.data == source.read_bytes()
    little, big = (pipeline.convert(opened, load_target(name), tmp_path / "cache") for name in ("host", "g4"))
    assert reads == [source]
    assert little.header.endian == "little" and big.header.endian == "big" and little.path != big.path
    assert pipeline.convert(opened, load_target("g4"), tmp_path / "cache") == big  # the cached entry
    with pytest.raises(UsageError, match="a GGUF model keeps its own quantization"):
        pipeline.convert(opened, load_target("g4"), tmp_path / "cache", "q8_0")


def test_a_build_miss_renders_once_and_a_docker_hit_starts_nothing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit import container, pipeline, toolchain
    from toolkit.targets import load_target

    rendered: list[object] = []
    given: list[object] = []
    real_render = toolchain.render

    def counting_render(target: object) -> object:
        rendered.append(real_render(target))  # type: ignore[arg-type]
        return rendered[-1]

    def fake_build(target: object, out_dir: Path, chosen: str, engine: object, sources: object = None) -> None:
        given.append(sources)
        out_dir.mkdir()
        (out_dir / "ppcllm").write_bytes(b"\x7fELF fake")
        (out_dir / toolchain.MANIFEST).write_text('{"toolchain": "docker"}\n')

    def no_container(self: object) -> None:
        raise AssertionError("a container was started")

    monkeypatch.setattr(toolchain, "render", counting_render)
    monkeypatch.setattr(toolchain, "build", fake_build)
    monkeypatch.setattr(container, "choose_engine", lambda engine=None: "docker")
    monkeypatch.setattr(container, "ensure_image", lambda engine, packages: "ppc-llm-toolchain:tag")
    monkeypatch.setattr(container, "image_id", lambda engine, tag: "sha256:" + "3" * 64)
    monkeypatch.setattr(container.ContainerRunner, "__enter__", no_container)
    first = pipeline.build(load_target("g4"), tmp_path, "docker")
    assert len(rendered) == 1 and given == rendered  # the sources of the key are the ones compiled
    assert pipeline.build(load_target("g4"), tmp_path, "docker").directory == first.directory and len(given) == 1


def test_both_modes_are_one_emulator_with_one_result(tmp_path: Path) -> None:
    from toolkit.emulate import EngineArgs, RunResult, UserMode
    from toolkit.pipeline import emulator_for
    from toolkit.system import SystemMode, run_system
    from toolkit.targets import load_target

    g4 = load_target("g4")
    assert emulator_for(g4, False, tmp_path) == UserMode(g4)
    assert emulator_for(g4, True, tmp_path) == SystemMode(g4, tmp_path)
    assert RunResult(b"", b"", 0, 0.0).guest is None  # user mode: no guest figures
    with pytest.raises(UsageError, match="needs a model file"):
        run_system(g4, tmp_path / "ppcllm", EngineArgs(), 1.0, tmp_path)
