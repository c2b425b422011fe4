"""Building blocks of RankMixer (Zhu et al., "RankMixer: Scaling Up Ranking Models in
Industrial Recommenders", arXiv 2507.15551, 2025): T tokens of width D in, same shape out."""

from __future__ import annotations

import math

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.init import ParamInit, Xavier, Zeros


class PerTokenLinear(nn.Module):
    """``y_t = x_t W_t + b_t`` with separate weights for every token t (``bias=False``: no b_t).

    Input (B, T, d_in) -> output (B, T, d_out). One batched matmul over tokens, not a loop.
    """

    def __init__(self, num_tokens: int, in_dim: int, out_dim: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_tokens, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_tokens, out_dim)) if bias else None
        # nn.Linear's default initialisation, token by token.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def weight_init_plan(self) -> dict[str, ParamInit]:
        _, in_dim, out_dim = self.weight.shape
        plan: dict[str, ParamInit] = {"weight": Xavier(fan_in=in_dim, fan_out=out_dim)}
        if self.bias is not None:
            plan["bias"] = Zeros()
        return plan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("bti,tio->bto", x, self.weight)  # (B, T, d_out)
        return y if self.bias is None else y + self.bias


class PerFieldTokenizer(nn.Module):
    """One token per field, as in the paper's reference code: ``x_i = e_i`` when the token
    width D equals the embedding width d, else ``x_i = e_i W_i`` with a learned d×D
    projection per field.

    The projection exists because token mixing needs D divisible by the token count T = F
    (the reference code asserts it, so it runs e.g. Avazu's 24 fields at d = 24): Criteo's
    39 fields at d = 16 get tokens of width 39. It has no bias so that, as without a
    projection, a token is zero when its embedding is: embeddings start at ~1e-4, and a
    bias of torch's default size would drown them in a per-field constant that the first
    LayerNorm then keeps (measured: slower learning on the planted-interaction test).
    Input (B, F, d) -> output (B, F, D).
    """

    def __init__(self, num_fields: int, embedding_dim: int, token_dim: int) -> None:
        super().__init__()
        self.project = (
            None if token_dim == embedding_dim else PerTokenLinear(num_fields, embedding_dim, token_dim, bias=False)
        )

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e if self.project is None else self.project(e)  # (B, F, D)


class SliceTokenizer(nn.Module):
    """Field embeddings -> T tokens: ``x = [e_1; ...; e_F]`` is zero-padded to a multiple of
    T, cut into T contiguous slices and each slice is projected to width D by its own matrix.

    The RankMixer paper groups features into tokens by meaning; slicing the concatenation in
    feature-map order is the schema-free stand-in that works for any field count (a slice
    may straddle two fields). The projections have no bias, for the reason given in
    ``PerFieldTokenizer`` (with one, the ``mean_pool`` preset reached AUC 0.59 instead of
    0.88 on the planted-interaction test at lr 1e-3). Input (B, F, d) -> output (B, T, D).
    """

    def __init__(self, num_fields: int, embedding_dim: int, num_tokens: int, token_dim: int) -> None:
        super().__init__()
        flat_dim = num_fields * embedding_dim
        self.num_tokens = num_tokens
        self.slice_dim = -(-flat_dim // num_tokens)  # ceil(F·d / T)
        self.padding = self.slice_dim * num_tokens - flat_dim
        self.project = PerTokenLinear(num_tokens, self.slice_dim, token_dim, bias=False)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        flat = e.flatten(1)  # (B, F·d)
        if self.padding:
            flat = nn.functional.pad(flat, (0, self.padding))  # (B, T·slice)
        slices = flat.view(-1, self.num_tokens, self.slice_dim)  # (B, T, slice)
        return self.project(slices)  # (B, T, D)


class MultiHeadTokenMixing(nn.Module):
    """Parameter-free token mixing: split every token into T heads of width D/T; output token
    i is the concatenation of head i of every input token (a transpose of the (token, head)
    grid). Every output token thus sees part of every input token, at no FLOPs.

    Input (B, T, D) -> output (B, T, D); requires D divisible by T.
    """

    def __init__(self, num_tokens: int, token_dim: int) -> None:
        super().__init__()
        if token_dim % num_tokens:
            raise ConfigError(f"token width {token_dim} is not divisible by the token count {num_tokens}")
        self.num_tokens = num_tokens
        self.head_dim = token_dim // num_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        heads = x.view(batch, tokens, self.num_tokens, self.head_dim)  # (B, T_in, H=T, D/T)
        return heads.transpose(1, 2).reshape(batch, self.num_tokens, width)  # (B, H=T, T_in·D/T)


class PerTokenFFN(nn.Module):
    """``FFN_t(x_t) = W2_t Dropout(GELU(BN(W1_t x_t + b1_t))) + b2_t``, separate weights per token.

    Hidden width is ``expansion · D``. Optional batch norm keeps statistics per token and
    hidden unit (the shared ``batch_norm`` switch of every backbone's MLPs). The dropout
    module is there even at rate 0, for MC-dropout (the reference code has neither).
    Input (B, T, D) -> output (B, T, D).
    """

    def __init__(
        self, num_tokens: int, token_dim: int, expansion: int, *, dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        hidden = expansion * token_dim
        self.up = PerTokenLinear(num_tokens, token_dim, hidden)
        self.norm = nn.BatchNorm1d(num_tokens * hidden) if batch_norm else None
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.down = PerTokenLinear(num_tokens, hidden, token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)  # (B, T, kD)
        if self.norm is not None:
            h = self.norm(h.flatten(1)).view_as(h)  # BatchNorm1d wants (B, C)
        h = self.dropout(self.activation(h))
        return self.down(h)  # (B, T, D)


class RankMixerBlock(nn.Module):
    """``S = LN(TokenMixing(X) + X)``, ``X' = LN(PerTokenFFN(S) + S)`` (post-norm, as in the paper).

    LN normalises every token over its D coordinates, with a learned scale and shift (the
    paper's LayerNorm). The reference code instead calls ``F.layer_norm(x, x.shape)``: one
    mean and variance over the whole (B, T, D) batch tensor and no affine parameters, which
    makes a row's output depend on the other rows of its batch.

    Input (B, T, D) -> output (B, T, D).
    """

    def __init__(
        self, num_tokens: int, token_dim: int, expansion: int, *, dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        self.mixing = MultiHeadTokenMixing(num_tokens, token_dim)
        self.mixing_norm = nn.LayerNorm(token_dim)
        self.ffn = PerTokenFFN(num_tokens, token_dim, expansion, dropout=dropout, batch_norm=batch_norm)
        self.ffn_norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.mixing_norm(self.mixing(x) + x)  # (B, T, D)
        return self.ffn_norm(self.ffn(s) + s)  # (B, T, D)
