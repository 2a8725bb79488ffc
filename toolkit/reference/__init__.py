"""A NumPy reference of the engine (Karpathy's llama2.c ``run.c`` and its GGUF extensions), used to
verify generated programs (``run-qemu --verify``), by the tests, and by ``bench`` for perplexity.

Everything mirrors the C operation by operation so that, in float32, the reference's logits are
bit-identical to those of the C program (built with ``-ffp-contract=off``) as often as possible:

* ``libm``: glibc's ``expf``, ``sinf``, ``cosf`` and ``powf``, followed step by step in float64;
* ``kernels``: run.c's float32 kernels, every sum in C's order; ``blocks``: the engine's
  block-quantized matrix-vector products (int8 or 16-bit activations);
* ``transformer``: the forward pass over a ``Model`` (llama2.c checkpoints, GGUF, converted files);
* ``tokenizer_llama2c`` and ``tokenizer_bpe``: the engine's two tokenizers, C-string quirks included;
* ``sampler``: run.c's sampler and xorshift generator, each choice with its margin;
* ``generate``: the engine's generation loops, recording what each step prints;
* ``compare``: a program's stdout against a ``Generation``, a divergence at a near-tie accepted.
"""

from __future__ import annotations

from .compare import Comparison, compare
from .generate import Generation, StepRecord, context_length, generate, generate_with
from .kernels import matmul, rmsnorm, rope_coefficients, rope_frequencies, softmax, swiglu
from .libm import cosf, expf, powf, sinf
from .sampler import Rng, Sampler, sample_argmax, sample_mult, sample_topp
from .tokenizer_llama2c import BOS, decode_piece, encode
from .transformer import Transformer

__all__ = [
    "BOS",
    "Comparison",
    "Generation",
    "Rng",
    "Sampler",
    "StepRecord",
    "Transformer",
    "compare",
    "context_length",
    "cosf",
    "decode_piece",
    "encode",
    "expf",
    "generate",
    "generate_with",
    "matmul",
    "powf",
    "rmsnorm",
    "rope_coefficients",
    "rope_frequencies",
    "sample_argmax",
    "sample_mult",
    "sample_topp",
    "sinf",
    "softmax",
    "swiglu",
]
