"""The engine's generation loops over the reference transformer, recording what each step prints.

``generate`` returns what the C program prints plus, per step, how close the step came to
choosing another token (``StepRecord.margin``), for both vocabularies: llama2.c's (run.c's
``generate``: BOS, the prompt forced token by token, then sampling until BOS or ``steps``) and
GPT-2 BPE (the engine's ``ppcllm_run_bpe``: the prompt printed as typed, all its positions run,
then sampling until a stop token or ``steps`` tokens in all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..models import Model
from ..models.bpe import BPE
from ..render import DEFAULT_CTX
from . import tokenizer_bpe, tokenizer_llama2c
from .sampler import Sampler, sampler_for
from .tokenizer_llama2c import BOS
from .transformer import Transformer

__all__ = ["Generation", "StepRecord", "context_length", "generate"]

@dataclass(frozen=True)
class StepRecord:
    """One token the program printed (or the stop token that ended it).

    ``token`` is the token chosen at ``pos``; ``sampled`` is False while the prompt forces it.
    ``margin`` says how close the step came to choosing differently: top-1 minus top-2 logit for
    greedy steps, the distance of the (scaled) coin from the nearest cdf boundary in probability
    units for sampled steps, infinity for forced steps. ``printed`` is what the step wrote to
    stdout (empty when it sampled BOS or a stop token and ended).
    """

    pos: int
    token: int
    sampled: bool
    margin: float
    printed: bytes


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # the prompt's first token (all its tokens for BPE), then each step's token
    steps: list[StepRecord]
    text: bytes  # exactly what stdout carries, trailing newline included


def context_length(model: Model, context: int | None) -> int:
    """The engine's ``seq_len``: the model's context, at most ``context`` (default: the engine's)."""
    limit = DEFAULT_CTX if context is None else context
    if limit < 1:
        raise UsageError(f"context must be at least 1 position, got {limit}")
    return min(model.config.seq_len, limit)


def _resolve_steps(steps: int, seq_len: int) -> int:
    if steps < 0:
        raise UsageError(f"steps must be >= 0, got {steps}")
    return seq_len if steps == 0 or steps > seq_len else steps


def generate(model: Model, prompt: bytes | str, temperature: float, topp: float, seed: int,
             steps: int, context: int | None = None, *, n_predict: int | None = None, top_k: int = 0,
             min_p: float = 0.0, repeat_penalty: float = 1.0, repeat_last_n: int = 64) -> Generation:
    """Run the engine's generation on ``model`` and record what it prints (``context``: the
    engine's ``-c``; ``n_predict``: its ``-N``; the sampling chain's stages as the engine's)."""
    if n_predict is not None or top_k != 0 or min_p != 0.0 or repeat_penalty != 1.0:
        raise UsageError("the reference does not implement --n-predict, --top-k, --min-p or --repeat-penalty yet")
    seq_len = context_length(model, context)
    steps = _resolve_steps(steps, seq_len)
    sampler = sampler_for(temperature, topp, seed)
    transformer = Transformer(model, positions=steps)
    if model.bpe is not None:
        records, tokens = _generate_bpe(model, model.bpe, transformer, prompt, sampler, steps)
    else:
        records, tokens = _generate_llama2c(model, transformer, prompt, sampler, steps)
    text = b"".join(record.printed for record in records) + b"\n"
    return Generation(tokens, records, text)


def _generate_llama2c(model: Model, transformer: Transformer, prompt: bytes | str, sampler: Sampler,
                      steps: int) -> tuple[list[StepRecord], list[int]]:
    """run.c ``generate``."""
    prompt_tokens = tokenizer_llama2c.encode(model.tokenizer, prompt)
    token = prompt_tokens[0]
    tokens, records = [token], []
    for pos in range(steps):
        logits = transformer.forward(token, pos)
        if pos < len(prompt_tokens) - 1:
            following, sampled, margin = prompt_tokens[pos + 1], False, math.inf
        else:
            (following, margin), sampled = sampler.sample(logits), True
        tokens.append(following)
        if following == BOS:
            records.append(StepRecord(pos, following, sampled, margin, b""))
            break
        printed = tokenizer_llama2c.decode_piece(model.tokenizer, token, following)
        records.append(StepRecord(pos, following, sampled, margin, printed))
        token = following
    return records, tokens


def _generate_bpe(model: Model, bpe: BPE, transformer: Transformer, prompt: bytes | str, sampler: Sampler,
                  steps: int) -> tuple[list[StepRecord], list[int]]:
    """``ppcllm_run_bpe`` + ``ppcllm_continue``: ``steps`` printed tokens in all (the prompt's
    included, BOS not), the last sampled one never forwarded."""
    tokens = tokenizer_bpe.encode(model.tokenizer, bpe, prompt)
    shown = len(tokens) - (1 if bpe.add_bos and tokens else 0)
    if not tokens:
        tokens = [bpe.bos_id]
    first = len(tokens) - shown
    records = [StepRecord(i, tokens[i], False, math.inf, tokenizer_bpe.decode(model.tokenizer, bpe, tokens[i]))
               for i in range(first, min(len(tokens), steps))]
    if shown >= steps:
        return records, tokens
    limit = steps - (1 if shown == len(tokens) else 0)
    logits = np.zeros(0, dtype=np.float32)
    for pos, token in enumerate(tokens):
        logits = transformer.forward(token, pos)
    stops = tokenizer_bpe.vocab(model.tokenizer, bpe).stops
    pos = len(tokens)
    while True:
        following, margin = sampler.sample(logits)
        tokens.append(following)
        if following in stops:
            records.append(StepRecord(pos, following, True, margin, b""))
            return records, tokens
        records.append(StepRecord(pos, following, True, margin,
                                  tokenizer_bpe.decode(model.tokenizer, bpe, following)))
        if pos >= limit:
            return records, tokens
        logits = transformer.forward(following, pos)
        pos += 1
