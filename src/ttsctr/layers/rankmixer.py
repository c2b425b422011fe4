"""Building blocks of RankMixer (Zhu et al., "RankMixer: Scaling Up Ranking Models in
Industrial Recommenders", arXiv 2507.15551, 2025): T tokens of width D in, same shape out."""

from __future__ import annotations

import math

import torch
from torch import nn

from ttsctr.errors import ConfigError


class PerTokenLinear(nn.Module):
    """``y_t = x_t W_t + b_t`` with separate weights for every token t.

    Input (B, T, d_in) -> output (B, T, d_out). One batched matmul over tokens, not a loop.
    """

    def __init__(self, num_tokens: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_tokens, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_tokens, out_dim))
        # nn.Linear's default initialisation, token by token.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bti,tio->bto", x, self.weight) + self.bias  # (B, T, d_out)


class FieldTokenizer(nn.Module):
    """Field embeddings -> T tokens: ``x = [e_1; ...; e_F]`` is zero-padded to a multiple of
    T, cut into T contiguous slices and each slice is projected to width D by its own matrix.

    The paper groups features into tokens by meaning; slicing the concatenation in
    feature-map order is the schema-free stand-in that works for any field count (a slice
    may straddle two fields). Input (B, F, d) -> output (B, T, D).
    """

    def __init__(self, num_fields: int, embedding_dim: int, num_tokens: int, token_dim: int) -> None:
        super().__init__()
        flat_dim = num_fields * embedding_dim
        self.num_tokens = num_tokens
        self.slice_dim = -(-flat_dim // num_tokens)  # ceil(F·d / T)
        self.padding = self.slice_dim * num_tokens - flat_dim
        self.project = PerTokenLinear(num_tokens, self.slice_dim, token_dim)

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
    hidden unit (the shared ``batch_norm`` switch of every backbone's MLPs).
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
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.down = PerTokenLinear(num_tokens, hidden, token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)  # (B, T, kD)
        if self.norm is not None:
            h = self.norm(h.flatten(1)).view_as(h)  # BatchNorm1d wants (B, C)
        h = self.activation(h)
        if self.dropout is not None:
            h = self.dropout(h)
        return self.down(h)  # (B, T, D)


class RankMixerBlock(nn.Module):
    """``S = LN(TokenMixing(X) + X)``, ``X' = LN(PerTokenFFN(S) + S)`` (post-norm, as in the paper).

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
