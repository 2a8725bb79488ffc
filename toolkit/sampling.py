"""The sampling chain's settings, one record for the engine's argv and the NumPy reference.

The chain (engine/ppcllm.h, the README's options table): repeat penalty, top-k, temperature
(then softmax), top-p, min-p, one random draw. Every stage is a no-op at its default except
temperature and top-p, whose defaults are llama2.c's, so the defaults give llama2.c's output and
random-number use exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    topp: float = 0.9
    seed: int = 1
    top_k: int = 0             # 0: off
    min_p: float = 0.0         # 0: off
    repeat_penalty: float = 1.0  # 1: off
    repeat_last_n: int = 64    # positions looked back over (prompt included); 0: off, -1: the whole context

    def extras(self) -> dict[str, float | int]:
        """The stages past llama2.c's that are not at their defaults (what the engine must be told)."""
        default = Sampling()
        names = ("top_k", "min_p", "repeat_penalty", "repeat_last_n")
        return {name: getattr(self, name) for name in names if getattr(self, name) != getattr(default, name)}


DEFAULT = Sampling()
