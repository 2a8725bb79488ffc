"""toolkit/limits.py is the one definition: the toolkit's checks and the rendered engine
constants come from it (the engine's behaviour at the boundaries: tests/integration/test_limits.py)."""

from __future__ import annotations

import math
import re

import pytest

from toolkit.cli import _check_threads
from toolkit.errors import UsageError
from toolkit.limits import LIMITS
from toolkit.pipeline import check_options
from toolkit.render import render
from toolkit.targets import available_targets, load_target


def options(**kw: object) -> object:
    args = {"temperature": 1.0, "topp": 0.9, "seed": 7, "steps": 256, "prompt": "hi", "clock": 1e9}
    args.update(kw)
    return check_options(**args)  # type: ignore[arg-type]


def config_header(name: str) -> str:
    return next(f.text for f in render(load_target(name)).files if f.name == "ppcllm_config.h")


def macro(header: str, name: str) -> str:
    found = re.search(rf"^#define {name} (.+)$", header, re.MULTILINE)
    assert found, name
    return found.group(1)


@pytest.mark.parametrize("name", available_targets())
def test_engine_constants_are_the_limits(name: str) -> None:
    header, profile = config_header(name), load_target(name)
    assert int(macro(header, "PPCLLM_MAX_THREADS")) == max(1, profile.hardware_threads) * 8
    assert macro(header, "PPCLLM_THREADS") == ("1" if profile.hardware_threads > 1 else "0")
    for key in ("max_steps", "min_ctx", "max_ctx", "max_seed"):
        assert macro(header, f"PPCLLM_{key.upper()}") == f"{getattr(LIMITS, key)}L"
    for key in ("min_temperature", "max_temperature", "min_topp", "max_topp"):
        assert float(macro(header, f"PPCLLM_{key.upper()}")) == getattr(LIMITS, key)  # exact


def test_integers_fit_an_int_on_every_target() -> None:
    assert max(LIMITS.max_steps, LIMITS.max_ctx, LIMITS.max_seed) < 2**31
    assert max(LIMITS.max_threads(load_target(n).hardware_threads) for n in available_targets()) < 2**31


def test_boundaries_are_accepted() -> None:
    for kw in ({"steps": 0}, {"steps": LIMITS.max_steps}, {"seed": LIMITS.max_seed}, {"seed": 0},
               {"temperature": 0.0}, {"temperature": LIMITS.min_temperature},
               {"temperature": LIMITS.max_temperature}, {"topp": 0.0}, {"topp": 1.0}):
        options(**kw)


@pytest.mark.parametrize("kw,pattern", [
    ({"steps": LIMITS.max_steps + 1}, "steps must be"),
    ({"seed": LIMITS.max_seed + 1}, "seed must be"),
    ({"temperature": math.nextafter(LIMITS.min_temperature, 0.0)}, r"temperature must be 0 \(greedy\) or in"),
    ({"temperature": math.ulp(0.0)}, "temperature must be"),
    ({"temperature": math.nextafter(LIMITS.max_temperature, math.inf)}, "temperature must be"),
    ({"temperature": math.inf}, "temperature must be"),
    ({"topp": math.nextafter(1.0, 2.0)}, "top-p must be"),
])
def test_first_values_past_the_limits_are_refused(kw: dict[str, object], pattern: str) -> None:
    with pytest.raises(UsageError, match=pattern) as caught:
        options(**kw)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["host", "g4", "g4dual", "xenon"])
def test_threads_follow_the_target(name: str) -> None:
    profile = load_target(name)
    most = LIMITS.max_threads(profile.hardware_threads) if profile.hardware_threads > 1 else 1
    _check_threads(most, profile)
    _check_threads(1, profile)
    for bad in (0, most + 1):
        with pytest.raises(UsageError, match="--threads"):
            _check_threads(bad, profile)
