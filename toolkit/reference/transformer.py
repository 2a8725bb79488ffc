"""run.c's ``Transformer`` in NumPy: the forward pass the engine runs, over the same ``Model``.

Each step mirrors the engine's ``ppcllm_forward`` operation by operation (``kernels``), so that,
in float32, the reference's logits are bit-identical to those of the C program (built with
``-ffp-contract=off``): dense matrices through run.c's ``matmul``, block-quantized ones through
the engine's block kernels (``blocks``), the embedding row looked up dequantized.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import quant
from ..models import Activations, Model, Tensor
from ..quant import BlockTensor, LayerStack, QuantTensor, dequantize_blocks
from .blocks import BlockMatrix, WideMatrix, matvec
from .kernels import matmul, rmsnorm, rope_coefficients, rope_frequencies, rotate, sequential_sum, softmax, swiglu

__all__ = ["Linear", "Transformer"]

F32 = np.float32

Linear = Callable[[np.ndarray], np.ndarray]
"""x -> W @ x, for a dense or a block-quantized W."""


@dataclass(frozen=True)
class _Layer:
    """One layer's weights: norms, and matrices as Linear maps."""

    rms_att: np.ndarray
    wq: Linear
    wk: Linear
    wv: Linear
    wo: Linear
    rms_ffn: np.ndarray
    w1: Linear
    w2: Linear
    w3: Linear
    biases: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # bq, bk, bv (qkv_bias), added after the products
    qk_norms: tuple[np.ndarray, np.ndarray] | None  # q_norm, k_norm (qk_norm): per-head RMS norm weights


def _linear(matrix: Tensor, wide: bool) -> Linear:
    """A dense matrix as run.c's matmul (transposed once so a column is contiguous), a quantized
    one as the engine's block kernel for its activations (``wide``: 16-bit, else int8)."""
    if isinstance(matrix, LayerStack):
        raise ValueError("a per-layer stack is not one matrix")
    if isinstance(matrix, BlockTensor):
        return BlockMatrix(matrix)
    if isinstance(matrix, QuantTensor):
        return WideMatrix(matrix) if wide else functools.partial(matvec, matrix)
    return functools.partial(matmul, np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T))


def wide_activations(model: Model) -> bool:
    """Whether the engine multiplies this model's blocks with float32 activations (which its block
    kernel takes as 16-bit integers per group of 32) rather than int8 ones."""
    return model.activations is Activations.FLOAT32


def _layer_matrix(tensor: Tensor, index: int) -> Tensor:
    if isinstance(tensor, BlockTensor):
        raise ValueError("a kept-block matrix is not a stack")
    return tensor.rows_of(index) if isinstance(tensor, (QuantTensor, LayerStack)) else tensor[index]


def _dense(tensor: Tensor) -> np.ndarray:
    """Float32 values (an embedding table is looked up dequantized, as the engine does)."""
    if isinstance(tensor, LayerStack):
        raise ValueError("a per-layer stack is a matrix stack, never dense")
    if isinstance(tensor, BlockTensor):
        return dequantize_blocks(tensor)
    return quant.dequantize(tensor) if isinstance(tensor, QuantTensor) else np.asarray(tensor, dtype=np.float32)


def _vector(vector: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vector, dtype=np.float32)


class Transformer:
    """run.c's ``Transformer``: the weights plus the key/value cache of one generation."""

    def __init__(self, model: Model, positions: int | None = None) -> None:
        """``positions``: how many the key/value cache holds (default: the model's context)."""
        c = model.config
        t = model.tensors
        self.config = c
        self.eps = F32(c.norm_eps)
        self.embeddings = _vector(_dense(t["tok_embeddings"]))
        norms = {name: _dense(t[name]) for name in ("rms_att", "rms_ffn", "rms_final")}
        self.rms_final = _vector(norms["rms_final"])
        self.wide = wide_activations(model)
        self.classifier = _linear(model.classifier(), self.wide)
        self.key_cache = np.zeros((c.n_layers, positions or c.seq_len, c.kv_dim), dtype=np.float32)
        self.value_cache = np.zeros_like(self.key_cache)
        self.head_to_kv = np.arange(c.n_heads) // (c.n_heads // c.n_kv_heads)
        self.sqrt_head_size = np.sqrt(F32(c.head_size), dtype=np.float32)
        self.frequencies = rope_frequencies(c)
        # rope_freqs: one factor per pair of a head, the same for every head
        self.factors = np.tile(_vector(_dense(t["rope_freqs"])), c.n_heads) if c.rope_freqs else None
        self.layers = [self._layer(t, norms, i) for i in range(c.n_layers)]

    def _layer(self, t: dict[str, Tensor], norms: dict[str, np.ndarray], i: int) -> _Layer:
        def lin(name: str) -> Linear:
            return _linear(_layer_matrix(t[name], i), self.wide)

        biases = None
        if self.config.qkv_bias:
            bq, bk, bv = (_vector(_dense(t[name])[i]) for name in ("bq", "bk", "bv"))
            biases = (bq, bk, bv)
        qk_norms = None
        if self.config.qk_norm:
            qk_norms = (_vector(_dense(t["q_norm"])[i]), _vector(_dense(t["k_norm"])[i]))
        return _Layer(_vector(norms["rms_att"][i]), lin("wq"), lin("wk"), lin("wv"), lin("wo"),
                      _vector(norms["rms_ffn"][i]), lin("w1"), lin("w2"), lin("w3"), biases, qk_norms)

    def _per_head(self, vec: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """``ppcllm_head_norms``: each head of vec RMS-normed with weight."""
        hs = self.config.head_size
        return np.concatenate([rmsnorm(vec[h:h + hs], weight, self.eps) for h in range(0, vec.shape[0], hs)])

    def forward(self, token: int, pos: int) -> np.ndarray:
        """Logits (float32, vocab_size) for ``token`` at ``pos``; fills the cache at ``pos``."""
        c = self.config
        x = self.embeddings[token].copy()
        fcr, fci = rope_coefficients(self.frequencies, pos, self.factors)
        half_kv = c.kv_dim // 2
        for index, layer in enumerate(self.layers):
            xb = rmsnorm(x, layer.rms_att, self.eps)
            q, k, v = layer.wq(xb), layer.wk(xb), layer.wv(xb)
            if layer.biases is not None:
                q, k, v = q + layer.biases[0], k + layer.biases[1], v + layer.biases[2]
            if layer.qk_norms is not None:
                q, k = self._per_head(q, layer.qk_norms[0]), self._per_head(k, layer.qk_norms[1])
            q = rotate(q, fcr, fci)
            self.key_cache[index, pos] = rotate(k, fcr[:half_kv], fci[:half_kv])
            self.value_cache[index, pos] = v
            x = x + layer.wo(self._attention(index, q, pos))
            xb = rmsnorm(x, layer.rms_ffn, self.eps)
            hb = swiglu(layer.w1(xb), layer.w3(xb))
            x = x + layer.w2(hb)
        x = rmsnorm(x, self.rms_final, self.eps)
        return self.classifier(x)

    def _attention(self, layer: int, q: np.ndarray, pos: int) -> np.ndarray:
        """Multi-head attention of ``q`` over positions 0..pos; returns xb (q_dim,)."""
        c = self.config
        steps = pos + 1
        shape = (steps, c.n_kv_heads, c.head_size)
        keys = self.key_cache[layer, :steps].reshape(shape)[:, self.head_to_kv]  # (T, H, hs)
        values = self.value_cache[layer, :steps].reshape(shape)[:, self.head_to_kv]
        q_t = q.reshape(c.n_heads, c.head_size).T  # (hs, H)
        products = np.multiply(keys.transpose(2, 0, 1), q_t[:, None, :], order="C")  # (hs, T, H)
        att = softmax(sequential_sum(products) / self.sqrt_head_size)  # (T, H)
        xb = sequential_sum(att[:, :, None] * values)  # (H, hs)
        return xb.reshape(c.q_dim)

