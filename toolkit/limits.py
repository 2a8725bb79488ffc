"""The ranges of the run options, defined once: the toolkit's checks (toolkit/pipeline.py,
toolkit/cli.py) use them and the engine's (main.c, ppcllm.c) are rendered from them into
ppcllm_config.h, so a value the toolkit accepts is a value the engine accepts.

| option              | accepted                                            |
|---------------------|-----------------------------------------------------|
| -n (steps)          | 0 (the whole context) .. 2^31 - 1                   |
| -c / --ctx          | 1 .. 2^31 - 1 (above the model's context: capped)   |
| -s (seed)           | 0 (from the clock) .. 2^31 - 1                      |
| -t (temperature)    | 0 (greedy), or 0.001 .. 1e30                        |
| -p (top-p)          | 0 .. 1                                              |
| --n-predict         | 0 (until the context is full) .. 2^31 - 1           |
| --top-k             | 0 (off) .. 2^31 - 1 (at or above the vocabulary: off)|
| --min-p             | 0 (off) .. 1                                        |
| --repeat-penalty    | 0.001 .. 1000 (1: off)                              |
| --repeat-last-n     | -1 (the whole context), 0 (off) .. 2^31 - 1         |
| -T / --threads      | 1 .. 8 per hardware thread; 1 where the target has  |
|                     | one hardware thread (its engine has no thread pool) |

The temperature rule: the sampler divides the logits by the temperature, so a temperature just
above 0 would overflow them to infinity and sample from NaNs. 0 is greedy decoding (argmax, no
random number drawn, as llama2.c); anything in (0, 0.001) is refused rather than silently
turned into something else.
"""

from __future__ import annotations

from dataclasses import dataclass

INT_MAX = 2**31 - 1  # the largest int on every target (the engine keeps these values in an int)


@dataclass(frozen=True)
class Limits:
    max_steps: int = INT_MAX
    min_ctx: int = 1
    max_ctx: int = INT_MAX
    max_seed: int = INT_MAX
    min_temperature: float = 1e-3  # above 0; 0 itself is greedy decoding
    max_temperature: float = 1e30
    min_topp: float = 0.0
    max_topp: float = 1.0
    threads_per_hardware_thread: int = 8
    max_n_predict: int = INT_MAX
    max_top_k: int = INT_MAX
    min_min_p: float = 0.0
    max_min_p: float = 1.0
    min_repeat_penalty: float = 1e-3  # a penalty of 0 would divide the logits by zero
    max_repeat_penalty: float = 1e3   # keeps |logit| x penalty far from float's overflow
    min_repeat_last_n: int = -1       # -1: the whole context
    max_repeat_last_n: int = INT_MAX

    def max_threads(self, hardware_threads: int) -> int:
        """The engine's PPCLLM_MAX_THREADS for a target: the size of its worker pool's tables."""
        return max(1, hardware_threads) * self.threads_per_hardware_thread

    def has_pool(self, hardware_threads: int) -> bool:
        """Whether the target's engine is built with a worker pool (PPCLLM_THREADS)."""
        return hardware_threads > 1

    def threads_allowed(self, hardware_threads: int) -> int:
        """The most worker threads a run on the target may ask for."""
        return self.max_threads(hardware_threads) if self.has_pool(hardware_threads) else 1

    def temperature_ok(self, temperature: float) -> bool:
        """0, or a number in [min_temperature, max_temperature] (NaN and infinities fail)."""
        return temperature == 0 or self.min_temperature <= temperature <= self.max_temperature

    def temperature_rule(self) -> str:
        return f"0 (greedy) or in [{self.min_temperature:g}, {self.max_temperature:g}]"


LIMITS = Limits()


def c_macros(hardware_threads: int) -> dict[str, str]:
    """The limits as C constants for ppcllm_config.h (C literals, exact)."""
    lim = LIMITS
    return {"max_steps": f"{lim.max_steps}L", "min_ctx": f"{lim.min_ctx}L", "max_ctx": f"{lim.max_ctx}L",
            "max_seed": f"{lim.max_seed}L", "min_temperature": repr(lim.min_temperature),
            "max_temperature": repr(lim.max_temperature), "min_topp": repr(lim.min_topp),
            "max_topp": repr(lim.max_topp), "max_threads": str(lim.max_threads(hardware_threads)),
            "threads": "1" if lim.has_pool(hardware_threads) else "0",
            "max_n_predict": f"{lim.max_n_predict}L", "max_top_k": f"{lim.max_top_k}L",
            "min_min_p": repr(lim.min_min_p), "max_min_p": repr(lim.max_min_p),
            "min_repeat_penalty": repr(lim.min_repeat_penalty), "max_repeat_penalty": repr(lim.max_repeat_penalty),
            "min_repeat_last_n": f"{lim.min_repeat_last_n}L", "max_repeat_last_n": f"{lim.max_repeat_last_n}L"}
