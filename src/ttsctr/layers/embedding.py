"""Shared embedding table over the global feature-id space (paper Eq. 1)."""

from __future__ import annotations

import torch
from torch import nn

from ttsctr.errors import DataFormatError


class FeatureEmbedding(nn.Module):
    """``e_i = E[x_i]`` for every field i, one table for all fields.

    Input ``x``: (B, F) integer ids already offset per field, in ``[0, num_features)``.
    Output: (B, F, D).
    """

    def __init__(self, num_features: int, embedding_dim: int, init_std: float = 1e-4) -> None:
        super().__init__()
        self.num_features = num_features
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(torch.empty(num_features, embedding_dim))
        # Small normal init, as FuxiCTR and the paper's reference code use for CTR embeddings.
        nn.init.normal_(self.weight, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(x, self.weight)  # (B, F, D)

    def check_ids(self, x: torch.Tensor) -> None:
        """Raise a clear error for ids outside the table (torch's own error is an opaque IndexError)."""
        if x.numel() == 0:
            return
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= self.num_features:
            bad = lo if lo < 0 else hi
            raise DataFormatError(
                None,
                found=f"feature id {bad}",
                expected=f"ids in [0, {self.num_features}) (the embedding table size from the feature map)",
            )
