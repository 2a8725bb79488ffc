"""Compare a program's stdout with the reference's ``Generation``; a divergence at a near-tie passes.

The divergence is attributed to the steps whose printed pieces meet the first differing byte; when
the closest of them was a near-tie (margin below ``tie_margin``) the outputs are accepted as
agreeing up to there, since a last-bit difference in a target's libm may flip such a choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .generate import Generation, StepRecord

__all__ = ["Comparison", "compare"]

_CONTEXT_BYTES = 20


@dataclass(frozen=True)
class Comparison:
    ok: bool
    message: str  # one line


def _common_prefix(a: bytes, b: bytes) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def _spans(steps: list[StepRecord]) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each step's printed piece in the output."""
    spans, offset = [], 0
    for step in steps:
        spans.append((offset, offset + len(step.printed)))
        offset += len(step.printed)
    return spans


def _suspects(spans: list[tuple[int, int]], divergence: int) -> list[int]:
    """Steps whose token may be the first one the program chose differently.

    That token prints from its step's start on, so it is the step whose piece contains the
    first differing byte, or one whose piece ends right there (the program's token extended it,
    or printed where the reference printed nothing, or went on where the reference stopped).
    """
    return [k for k, (start, end) in enumerate(spans) if start <= divergence <= end]


def _mismatch_message(reference: Generation, actual: bytes, step: int, start: int) -> str:
    record = reference.steps[step]
    shown = actual[start:start + max(_CONTEXT_BYTES, len(record.printed))]
    before = reference.text[max(0, start - _CONTEXT_BYTES):start]
    return (f"first mismatch at step {step} (position {record.pos}): reference token {record.token} "
            f"printed {record.printed[:_CONTEXT_BYTES]!r} but the program printed {shown!r} "
            f"(after {before!r})")


def _end_message(reference: Generation, actual: bytes, divergence: int) -> str:
    last = len(reference.steps) - 1
    where = f"the last step ({last}, position {reference.steps[last].pos})" if last >= 0 else "no step"
    return (f"first mismatch after {where}: "
            f"the reference ends with {reference.text[divergence:]!r} but the program printed "
            f"{actual[divergence:divergence + _CONTEXT_BYTES]!r} "
            f"(after {reference.text[max(0, divergence - _CONTEXT_BYTES):divergence]!r})")


def compare(reference: Generation, actual_stdout: bytes, tie_margin: float = 1e-4) -> Comparison:
    """Check a program's stdout against the reference; a divergence at a near-tie passes.

    The divergence is attributed to the steps whose printed pieces meet the first differing
    byte; when the closest of them was a near-tie (margin below ``tie_margin``) the outputs are
    accepted as agreeing up to there, since a last-bit difference may flip such a choice.
    """
    if actual_stdout == reference.text:
        return Comparison(True, f"verified: {len(reference.steps)} tokens identical to the NumPy "
                                f"reference ({len(reference.text)} bytes)")
    divergence = _common_prefix(reference.text, actual_stdout)
    spans = _spans(reference.steps)
    suspects = _suspects(spans, divergence)
    if suspects:
        tied = min(suspects, key=lambda k: reference.steps[k].margin)
        margin = reference.steps[tied].margin
        if margin < tie_margin:
            return Comparison(True, f"outputs agree up to step {tied} (byte {divergence}) and "
                                    f"diverge there at a near-tie (margin {margin:.3g} < "
                                    f"{tie_margin:g}); comparison stopped there")
    containing = [k for k in suspects if spans[k][0] <= divergence < spans[k][1]]
    if not containing:
        return Comparison(False, _end_message(reference, actual_stdout, divergence))
    step = containing[0]
    return Comparison(False, _mismatch_message(reference, actual_stdout, step, spans[step][0]))
