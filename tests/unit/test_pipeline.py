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
    assert ok(temperature=0.0, topp=0.0, steps=0, prompt=None).prompt == b""
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
