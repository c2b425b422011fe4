"""Attention over user-behaviour sequences, for EST — Liu, Bai, Chan, Chen et al., "EST:
Towards Efficient Scaling Laws in Click-Through Rate Prediction via Unified Modeling"
(Taobao & Tmall Group of Alibaba) — and for its baselines.

Notation: N (B, L_N, D) non-behavioural tokens (one per field), B (B, L_B, D) behavioural
tokens, ``mask`` (B, L_B) bool, True for a real behaviour and False for padding. Padding
never influences a real token: padded keys get attention weight exactly 0, and a query whose
keys are all padding gets an attention output of exactly 0 (finite gradients too: masked
scores are filled with the most negative finite float, never -inf, before the softmax).

* ``LightweightCrossAttention`` (LCA, §5.3) — N queries, B keys/values, token-specific
  W_Q, W_O.
* ``ContentSparseAttention`` (CSA, §5.4, Algorithm 1) — training-free top-K attention within
  one behaviour sequence, weights = frozen content similarities; ``csa_weights`` builds them.
* ``PerTokenFFN`` (re-exported from ``ttsctr.layers.rankmixer``: one FFN per N token,
  batched by einsum) and ``SharedFFN`` (one FFN for every behaviour token) — §5.1.
* ``FullSelfAttention`` — self-attention over [B; N], the paper's Full-Attention ablation
  (Table 4).

The attention blocks are pre-norm residual blocks (``x + Attn(LN(x), ...)``); the FFNs are
plain ``(..., D) -> (..., D)`` maps and the caller adds norm and residual.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.rankmixer import PerTokenFFN, PerTokenLinear

__all__ = [
    "ContentSparseAttention",
    "FullSelfAttention",
    "LightweightCrossAttention",
    "PerTokenFFN",
    "SharedFFN",
    "csa_weights",
    "masked_softmax",
]


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``key_mask`` (broadcastable bool, True = keep).

    Masked entries get weight exactly 0; a row with no valid key gets all-zero weights (its
    scores are all filled with the same finite value, so the softmax is uniform and finite,
    then multiplied by the mask) — no NaN forward or backward.
    """
    filled = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * key_mask.to(scores.dtype)


def _check_heads(dim: int, num_heads: int) -> int:
    if num_heads < 1 or dim % num_heads:
        raise ConfigError(f"attention: width {dim} must be divisible by num_heads={num_heads} (>= 1)")
    return dim // num_heads


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, dim = x.shape
    return x.view(batch, length, num_heads, dim // num_heads).transpose(1, 2)  # (B, H, L, D/H)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)  # (B, L, D)


class LightweightCrossAttention(nn.Module):
    """LCA (EST §5.3): non-behavioural tokens attend to the behavioural tokens, nothing else.

    ``Q_i = LN_N(n_i) W^Q_i`` (token-specific, i = 1..L_N), ``K = LN_B(B) W^K``,
    ``V = LN_B(B) W^V`` (shared over all behaviour tokens of [B_u; B_c]), per head h
    ``A_h = MaskedSoftmax(Q_h K_hᵀ / sqrt(D/H))``, and
    ``n_i <- n_i + concat_h(A_h V_h)_i W^O_i`` (token-specific output projection).

    No biases (the paper's φ is a token-wise matrix product). The paper scales by sqrt(d);
    with H heads we use the usual per-head sqrt(D/H) (the same for H = 1). Padded behaviours
    (``mask`` False) get weight 0; a row with no behaviour at all gets a zero attention
    output, so ``n_i`` passes through unchanged. Cost O(L_N D² + L_B D² + L_N L_B D) per row,
    bilinear rather than quadratic in the sequence length.

    Input n (B, L_N, D), b (B, L_B, D), mask (B, L_B) bool -> output (B, L_N, D).
    """

    def __init__(self, num_queries: int, dim: int, num_heads: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = _check_heads(dim, num_heads)
        self.query_norm = nn.LayerNorm(dim)
        self.key_norm = nn.LayerNorm(dim)
        self.query = PerTokenLinear(num_queries, dim, dim, bias=False)  # W^Q: (L_N, D, D)
        self.key = nn.Linear(dim, dim, bias=False)  # W^K
        self.value = nn.Linear(dim, dim, bias=False)  # W^V
        self.output = PerTokenLinear(num_queries, dim, dim, bias=False)  # W^O: (L_N, D, D)

    def forward(self, n: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kv = self.key_norm(b)  # (B, L_B, D)
        q = _split_heads(self.query(self.query_norm(n)), self.num_heads)  # (B, H, L_N, D/H)
        k = _split_heads(self.key(kv), self.num_heads)  # (B, H, L_B, D/H)
        v = _split_heads(self.value(kv), self.num_heads)  # (B, H, L_B, D/H)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, L_N, L_B)
        attn = masked_softmax(scores, mask[:, None, None, :])  # (B, H, L_N, L_B)
        context = _merge_heads(attn @ v)  # (B, L_N, D)
        return n + self.output(context)  # (B, L_N, D)


@torch.no_grad()
def csa_weights(content_rows: torch.Tensor, mask: torch.Tensor, k: int = 5, *, normalize: bool = False) -> torch.Tensor:
    """CSA's training-free attention matrix of one behaviour sequence (EST Algorithm 1, lines 1–2).

    ``G = M Mᵀ`` with M the L2-normalised frozen content vectors of the sequence's items
    (normalised here again, so the zero content of padding stays zero); in every row of a
    real behaviour, keep the K largest entries among the real behaviours' columns (the item
    itself included: its similarity 1 is the row maximum) and zero the rest. Rows and columns
    of padding are all zero; a row with fewer than K real columns keeps them all. Ties are
    broken by ``torch.topk``.

    Weights are the raw cosine similarities, as in Algorithm 1 (``O = Σ_k E_k B_gather,k``,
    no softmax, no normalisation). ``normalize=True`` divides every row by the sum of its
    absolute weights (a convex-like average; not in the paper).

    Computed without gradient (the content is frozen) once per batch and reused by every
    layer. Returned dense ("sparse-as-dense"): at most K non-zeros per row.

    Input content_rows (B, L, d_c), mask (B, L) bool -> output (B, L, L).
    """
    if k < 1:
        raise ConfigError(f"csa_weights: k must be >= 1, got {k}")
    m = nn.functional.normalize(content_rows.float(), dim=-1)  # (B, L, d_c)
    sim = m @ m.transpose(1, 2)  # G: (B, L, L)
    scores = sim.masked_fill(~mask[:, None, :], float("-inf"))  # padding columns never chosen
    top, index = scores.topk(min(k, sim.shape[-1]), dim=-1)  # (B, L, K)
    top = top.masked_fill(torch.isinf(top), 0.0)  # rows with < K real columns
    weights = torch.zeros_like(sim).scatter(-1, index, top)  # (B, L, L), <= K non-zeros per row
    weights = weights * mask[:, :, None]  # padding rows attend to nothing
    if normalize:
        weights = weights / weights.abs().sum(-1, keepdim=True).clamp_min(1e-12)
    return weights.to(content_rows.dtype)


class ContentSparseAttention(nn.Module):
    """CSA (EST §5.4): ``b <- b + G_topK LN(b)`` within one behaviour sequence.

    ``G_topK`` (B, L, L) comes from ``csa_weights`` (frozen content similarities, top-K per
    row, padding excluded), computed once per batch and shared by all layers; the only
    parameters here are the LayerNorm's. Applied separately to B_u and B_c (user-candidate
    decoupling). The product is a dense batched matmul over the sparse-as-dense matrix, so
    measured FLOPs are 2·L²·D per row (the gather form of Algorithm 1 does 2·L·K·D).

    Input b (B, L, D), weights (B, L, L) -> output (B, L, D).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return b + weights @ self.norm(b)  # (B, L, D)


class SharedFFN(nn.Module):
    """``FFN(x) = W2 Dropout(GELU(W1 x + b1)) + b2``, one network for every behaviour token.

    Same structure as ``PerTokenFFN`` (hidden width ``expansion · D``), weights shared over
    tokens. Input (..., D) -> output (..., D).
    """

    def __init__(self, dim: int, expansion: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.up = nn.Linear(dim, expansion * dim)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.down = nn.Linear(expansion * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(self.activation(self.up(x))))  # (..., D)


class FullSelfAttention(nn.Module):
    """Multi-head self-attention over all tokens X = [B; N] (the Full-Attention ablation).

    ``X <- X + MaskedSoftmax(Q Kᵀ / sqrt(D/H)) V W^O`` with ``Q, K, V = LN(X) W^{Q,K,V}``,
    weights shared by all tokens, no biases; padded tokens are masked as keys (their own
    outputs are computed but never used). Cost O(T D² + T² D) per row, T = L_B + L_N.

    Input x (B, T, D), mask (B, T) bool -> output (B, T, D).
    """

    def __init__(self, dim: int, num_heads: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = _check_heads(dim, num_heads)
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.output = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)  # (B, T, D)
        q, k, v = (_split_heads(proj(h), self.num_heads) for proj in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, T, T)
        attn = masked_softmax(scores, mask[:, None, None, :])
        return x + self.output(_merge_heads(attn @ v))  # (B, T, D)
