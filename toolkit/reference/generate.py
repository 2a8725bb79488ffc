"""The engine's generation loops over the reference transformer, recording what each step prints.

``generate`` returns what the C program prints plus, per step, how close the step came to
choosing another token (``StepRecord.margin``), for every vocabulary: llama2.c's (run.c's
``generate``: BOS, the prompt forced token by token, then sampling until BOS or ``steps``) and
GGUF's, GPT-2 BPE or SentencePiece (the engine's ``ppcllm_run``: the prompt printed as typed, all
its positions run, then sampling until a stop token or ``steps`` tokens in all).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..models import Model
from ..render import DEFAULT_CTX
from ..sampling import Sampling
from . import tokenizer_bpe, tokenizer_llama2c, tokenizer_spm
from .sampler import Sampler, sampler_for
from .tokenizer_llama2c import BOS
from .transformer import Transformer

__all__ = ["Generation", "StepRecord", "context_length", "generate", "generate_with"]

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


@dataclass(frozen=True)
class _Limits:
    """How far a run goes: ``steps`` bounds what of the prompt is printed (BPE) and, without
    ``n_predict``, the positions; with it, ``count`` new tokens (0: until the context is full)."""

    steps: int
    seq_len: int
    n_predict: int | None

    def positions(self, n_prompt: int) -> int:
        """The position limit (engine ``f.limit``) for a prompt of n_prompt tokens (BOS included)."""
        first = n_prompt - 1
        count = self.n_predict if self.n_predict is not None else 0
        if count <= 0 or count > self.seq_len - first:
            return self.seq_len
        return first + count


def generate(model: Model, prompt: bytes | str, temperature: float, topp: float, seed: int,
             steps: int, context: int | None = None, *, n_predict: int | None = None, top_k: int = 0,
             min_p: float = 0.0, repeat_penalty: float = 1.0, repeat_last_n: int = 64) -> Generation:
    """Run the engine's generation on ``model`` and record what it prints (``context``: the
    engine's ``-c``; ``n_predict``: its ``-N``; the sampling chain's stages as the engine's)."""
    seq_len = context_length(model, context)
    if n_predict is not None and n_predict < 0:
        raise UsageError(f"n_predict must be >= 0, got {n_predict}")
    limits = _Limits(_resolve_steps(steps, seq_len), seq_len, n_predict)
    chain = Sampling(temperature, topp, seed, top_k, min_p, repeat_penalty, repeat_last_n)
    sampler = sampler_for(temperature, topp, seed, chain)
    transformer = Transformer(model, positions=seq_len if n_predict is not None else limits.steps)
    codec = _codec(model)
    if codec is not None:
        records, tokens = _generate_gguf(codec, transformer, prompt, sampler, limits)
    else:
        records, tokens = _generate_llama2c(model, transformer, prompt, sampler, limits)
    text = b"".join(record.printed for record in records) + b"\n"
    return Generation(tokens, records, text)


def generate_with(model: Model, prompt: bytes | str, sampling: Sampling, steps: int, context: int | None = None,
                  n_predict: int | None = None) -> Generation:
    """``generate`` with the chain's settings as one record (what ``--verify`` and the tests hold)."""
    return generate(model, prompt, sampling.temperature, sampling.topp, sampling.seed, steps, context,
                    n_predict=n_predict, top_k=sampling.top_k, min_p=sampling.min_p,
                    repeat_penalty=sampling.repeat_penalty, repeat_last_n=sampling.repeat_last_n)


def _check_fits(n_prompt: int, limits: _Limits) -> None:
    """The engine's PPCLLM_ERR_CONTEXT: with a count of new tokens the whole prompt must fit."""
    if limits.n_predict is not None and n_prompt > limits.seq_len:
        raise UsageError(f"the prompt has {n_prompt} tokens and the context {limits.seq_len} positions",
                         "shorten it or allow more positions (-c)")


def _generate_llama2c(model: Model, transformer: Transformer, prompt: bytes | str, sampler: Sampler,
                      limits: _Limits) -> tuple[list[StepRecord], list[int]]:
    """run.c ``generate`` (with ``n_predict``, the engine's count of new tokens)."""
    prompt_tokens = tokenizer_llama2c.encode(model.tokenizer, prompt)
    _check_fits(len(prompt_tokens), limits)
    end = limits.positions(len(prompt_tokens)) if limits.n_predict is not None else limits.steps
    token = prompt_tokens[0]
    tokens, records, fed = [token], [], []
    for pos in range(end):
        logits = transformer.forward(token, pos)
        fed.append(token)
        if pos < len(prompt_tokens) - 1:
            following, sampled, margin = prompt_tokens[pos + 1], False, math.inf
        else:
            (following, margin), sampled = sampler.sample(logits, fed), True
        tokens.append(following)
        if following == BOS:
            records.append(StepRecord(pos, following, sampled, margin, b""))
            break
        printed = tokenizer_llama2c.decode_piece(model.tokenizer, token, following)
        records.append(StepRecord(pos, following, sampled, margin, printed))
        token = following
    return records, tokens


@dataclass(frozen=True)
class _Codec:
    """A GGUF vocabulary's encode, decode and stops, whichever its kind."""

    encode: Callable[[bytes | str], list[int]]
    decode: Callable[[int], bytes]
    bos: int
    add_bos: bool
    stops: frozenset[int]


def _codec(model: Model) -> _Codec | None:
    tok, bpe, spm = model.tokenizer, model.bpe, model.spm
    if bpe is not None:
        return _Codec(lambda text: tokenizer_bpe.encode(tok, bpe, text),
                      lambda token: tokenizer_bpe.decode(tok, bpe, token), bpe.bos_id, bpe.add_bos,
                      tokenizer_bpe.vocab(tok, bpe).stops)
    if spm is not None:
        return _Codec(lambda text: tokenizer_spm.encode(tok, spm, text),
                      lambda token: tokenizer_spm.decode(tok, spm, token), spm.bos_id, spm.add_bos,
                      tokenizer_spm.vocab(tok, spm).stops)
    return None


def _generate_gguf(codec: _Codec, transformer: Transformer, prompt: bytes | str, sampler: Sampler,
                   limits: _Limits) -> tuple[list[StepRecord], list[int]]:
    """``ppcllm_run`` + ``ppcllm_continue``: ``steps`` printed tokens in all (the prompt's
    included, BOS not), or the whole prompt and ``n_predict`` new ones; the last sampled one
    never forwarded."""
    tokens = codec.encode(prompt)
    shown = len(tokens) - (1 if codec.add_bos and tokens else 0)
    if not tokens:
        tokens = [codec.bos]
    _check_fits(len(tokens), limits)
    steps = len(tokens) if limits.n_predict is not None else limits.steps
    first = len(tokens) - shown
    records = [StepRecord(i, tokens[i], False, math.inf, codec.decode(tokens[i]))
               for i in range(first, min(len(tokens), steps))]
    if limits.n_predict is None and shown >= steps:
        return records, tokens
    limit = (limits.positions(len(tokens)) if limits.n_predict is not None
             else steps - (1 if shown == len(tokens) else 0))
    logits = np.zeros(0, dtype=np.float32)
    for pos, token in enumerate(tokens):
        logits = transformer.forward(token, pos)
    fed = list(tokens)
    stops = codec.stops
    pos = len(tokens)
    while True:
        following, margin = sampler.sample(logits, fed)
        tokens.append(following)
        if following in stops:
            records.append(StepRecord(pos, following, True, margin, b""))
            return records, tokens
        records.append(StepRecord(pos, following, True, margin, codec.decode(following)))
        if pos >= limit:
            return records, tokens
        logits = transformer.forward(following, pos)
        fed.append(following)
        pos += 1
