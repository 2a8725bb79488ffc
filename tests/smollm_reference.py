"""Test-only references for GGUF models: the transformers tokenizer built from the GGUF file, and
a plain NumPy forward pass (float64 arithmetic on the dequantized weights) written from the
llama architecture's definition, not from the engine.

Nothing here is shared with the C engine or toolkit/reference/ (the float32 mirror of the engine that
``--verify`` holds the program to bit for bit): the weights are dequantized by the ``gguf`` package,
RoPE, grouped-query attention and the tied classifier are written out below.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

NEAR_TIE = 0.05  # the rule: a divergence is acceptable only below this top-1/top-2 gap


@lru_cache(maxsize=2)
def hf_tokenizer(gguf_path: Path) -> Any:
    """transformers' own tokenizer for the GGUF file (its vocabulary, merges and specials)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def hf_encode(gguf_path: Path, text: str) -> list[int]:
    return list(hf_tokenizer(gguf_path).encode(text, add_special_tokens=False))


# llama.cpp's "smollm" pre-tokenizer (which the engine follows) and transformers' disagree on
# whitespace before a number: two or more blanks before a digit, or a blank before a number
# that is not an ASCII digit (tests/integration/test_llamacpp.py notices when that changes)
_BLANKS_BEFORE_A_DIGIT = re.compile(r"\s{2,}[0-9]")


def transformers_differs(text: str) -> bool:
    """Whether transformers' SmolLM2 tokenizer cuts ``text`` otherwise than llama.cpp."""
    if _BLANKS_BEFORE_A_DIGIT.search(text):
        return True
    return any(a.isspace() and unicodedata.category(b).startswith("N") and not b.isascii()
               for a, b in zip(text, text[1:]))


def chat_text(gguf_path: Path, user: str, system: str | None) -> str:
    """The prompt the model's own chat template renders for one user turn."""
    from gguf import GGUFReader
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = GGUFReader(gguf_path, "r").fields["tokenizer.chat_template"].contents()
    messages = ([{"role": "system", "content": system}] if system is not None else []) + \
        [{"role": "user", "content": user}]
    rendered: str = ImmutableSandboxedEnvironment().from_string(template).render(
        messages=messages, add_generation_prompt=True)
    return rendered


@dataclass(frozen=True)
class Config:
    dim: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    theta: float
    eps: float


class FloatLlama:
    """A llama forward pass in float64 over the GGUF's dequantized weights."""

    def __init__(self, gguf_path: Path, ctx: int) -> None:
        from gguf import GGUFReader
        from gguf.quants import dequantize

        reader = GGUFReader(gguf_path, "r")
        meta = {k: f.contents() for k, f in reader.fields.items()
                if not k.startswith("tokenizer.ggml.") or k.endswith("_id")}
        self.cfg = Config(int(meta["llama.embedding_length"]), int(meta["llama.feed_forward_length"]),
                          int(meta["llama.block_count"]), int(meta["llama.attention.head_count"]),
                          int(meta["llama.attention.head_count_kv"]), int(meta["llama.vocab_size"]),
                          float(meta["llama.rope.freq_base"]),
                          float(meta["llama.attention.layer_norm_rms_epsilon"]))
        self.w: dict[str, np.ndarray] = {}
        for t in reader.tensors:
            shape = tuple(int(d) for d in reversed(list(t.shape)))
            self.w[t.name] = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        self.classifier = self.w.get("output.weight", self.w["token_embd.weight"])  # tied embeddings
        c = self.cfg
        self.head = c.dim // c.heads
        self.keys = np.zeros((c.layers, ctx, c.kv_heads, self.head))
        self.values = np.zeros_like(self.keys)
        pairs = np.arange(0, self.head, 2) / self.head
        self.inv_freq = 1.0 / (c.theta ** pairs)  # GGUF Q/K are permuted: RoPE turns (2i, 2i+1)

    @staticmethod
    def _mv(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
        """matrix @ x through float32 BLAS (float64 weights would need 1 GB), back to float64"""
        product: np.ndarray = (matrix @ x.astype(np.float32)).astype(np.float64)
        return product

    def _norm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x) + self.cfg.eps) * weight

    def _rope(self, v: np.ndarray, pos: int) -> np.ndarray:
        angle = pos * self.inv_freq
        cos, sin = np.cos(angle), np.sin(angle)
        even, odd = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def forward(self, token: int, pos: int) -> np.ndarray:
        c, w = self.cfg, self.w
        x = w["token_embd.weight"][token].astype(np.float64)
        group = c.heads // c.kv_heads
        for layer in range(c.layers):
            p = f"blk.{layer}."
            h = self._norm(x, w[p + "attn_norm.weight"])
            q = self._rope(self._mv(w[p + "attn_q.weight"], h).reshape(c.heads, self.head), pos)
            self.keys[layer, pos] = self._rope(self._mv(w[p + "attn_k.weight"], h).reshape(c.kv_heads, self.head), pos)
            self.values[layer, pos] = self._mv(w[p + "attn_v.weight"], h).reshape(c.kv_heads, self.head)
            keys = np.repeat(self.keys[layer, :pos + 1], group, axis=1)      # (T, heads, head)
            values = np.repeat(self.values[layer, :pos + 1], group, axis=1)
            scores = np.einsum("hd,thd->ht", q, keys) / np.sqrt(self.head)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
            x = x + self._mv(w[p + "attn_output.weight"], np.einsum("ht,thd->hd", scores, values).reshape(c.dim))
            h = self._norm(x, w[p + "ffn_norm.weight"])
            gate = self._mv(w[p + "ffn_gate.weight"], h)
            x = x + self._mv(w[p + "ffn_down.weight"], gate / (1.0 + np.exp(-gate)) * self._mv(w[p + "ffn_up.weight"], h))
        logits = self._mv(self.classifier, self._norm(x, w["output_norm.weight"]))
        return logits


@dataclass(frozen=True)
class Agreement:
    compared: int          # generated tokens checked against the reference's argmax
    near_tie_at: int | None  # the step where a near-tie divergence ended the comparison
    gap: float | None


def check_greedy(ref: FloatLlama, context: list[int], generated: list[int], stop_ids: set[int],
                 stopped: bool) -> Agreement:
    """Feed ``context`` then the engine's ``generated`` tokens through the reference; each generated
    token must be the reference's argmax, unless the reference's top-1/top-2 gap there is below
    NEAR_TIE (then the comparison ends). ``stopped``: the engine ended on a stop token, which the
    reference must pick too after the last generated token."""
    logits = np.zeros(0)
    pos = 0
    for token in context:
        logits = ref.forward(token, pos)
        pos += 1
    expected = [*generated, None] if stopped else list(generated)
    for step, token in enumerate(expected):
        top2 = np.sort(logits)[-2:]
        gap = float(top2[1] - top2[0])
        best = int(np.argmax(logits))
        ok = best in stop_ids if token is None else best == token
        if not ok:
            if gap < NEAR_TIE:
                return Agreement(step, step, gap)
            want = "a stop token" if token is None else f"token {token}"
            raise AssertionError(f"step {step}: the engine chose {want}, the reference {best} "
                                 f"with a top-1/top-2 gap of {gap:.4f} (not a near-tie)")
        if token is not None and step < len(generated) - 1 or (token is not None and stopped):
            logits = ref.forward(token, pos)
            pos += 1
    return Agreement(len(expected), None, None)
