"""Context-aware feature selection gate of FinalMLP (Mao et al., AAAI 2023)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ttsctr.layers.mlp import MLP


class FeatureSelectionGate(nn.Module):
    """``g = 2·sigmoid(MLP(c))``, ``out = g ⊙ [e_1; ...; e_F]``.

    ``c`` is the concatenation of the context fields' embeddings (all fields when none are
    chosen). The factor 2 makes a gate start near 1 (sigmoid of a small pre-activation is
    ~0.5), so at initialisation the stream sees the unscaled embeddings and the gate learns
    to amplify (up to 2×) or suppress each embedding coordinate.

    Input (B, F, D) -> output (B, F·D).
    """

    def __init__(
        self,
        num_fields: int,
        embedding_dim: int,
        context_fields: Sequence[int],
        hidden_units: Sequence[int],
        *,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        context = tuple(context_fields) or tuple(range(num_fields))
        self.register_buffer("context_fields", torch.tensor(context, dtype=torch.long), persistent=False)
        self.gate_mlp = MLP(
            len(context) * embedding_dim,
            hidden_units,
            output_dim=num_fields * embedding_dim,
            dropout=dropout,
            batch_norm=batch_norm,
        )

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        context = e.index_select(1, self.context_fields).flatten(1)  # (B, C·D)
        gate = 2.0 * torch.sigmoid(self.gate_mlp(context))  # (B, F·D)
        return gate * e.flatten(1)  # (B, F·D)
