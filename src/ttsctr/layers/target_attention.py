"""Target attention of DIN — Zhou et al., "Deep Interest Network for Click-Through Rate
Prediction", KDD 2018 — which compresses a behaviour sequence into one vector for the
candidate item (the hierarchical baselines of EST, ``ttsctr.models.din``).

Notation: query q (B, D) the candidate's token, keys k_j (B, L, D) the behaviour tokens,
``mask`` (B, L) bool, True for a real behaviour and False for padding.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.mlp import MLP


class TargetAttention(nn.Module):
    """DIN's local activation unit (§4.3, Eq. 3): ``v_U(q) = Σ_j w_j k_j`` with
    ``w_j = a([q; k_j; q − k_j; q ⊙ k_j])`` for every real behaviour j and ``w_j = 0`` for padding.

    ``a`` is an MLP ``4D -> hidden_units -> 1`` with sigmoid hidden activations, as in the
    official DIN code (widths 80, 40 there); the paper's PReLU/Dice are not used (this keeps
    the unit to plain ``nn.Linear`` layers). No dropout modules (MC-dropout leaves the unit
    alone, as the official code has none). The paper's "outer product" is read as the
    element-wise product, as the official code and FuxiCTR/DeepCTR do.

    **No softmax**: the weights are the raw scores of the unit, as in the paper, which
    abandons softmax normalisation "to reserve the intensity of user interests" — Σ_j w_j may
    grow with the number of matching behaviours, a signal that a softmax (Σ_j w_j = 1) would
    discard. (The official code's ``attention`` does apply a scaled masked softmax; DeepCTR's and
    FuxiCTR's DIN default to none.) It also makes padding trivially exact: a padded position's
    weight is 0 (``torch.where``, so even a non-finite key there cannot leak), and a row with no
    real behaviour sums nothing and gives the zero vector.

    Cost per row: L evaluations of the unit, ``2·L·(4D·h_1 + h_1·h_2 + h_2)`` FLOPs for
    hidden widths (h_1, h_2), plus ``2·L·D`` for the weighted sum.

    Input query (B, D), keys (B, L, D), mask (B, L) bool -> output (B, D).
    """

    def __init__(self, dim: int, hidden_units: Sequence[int] = (80, 40)) -> None:
        super().__init__()
        if dim < 1 or any(units < 1 for units in hidden_units):
            raise ConfigError(
                f"target attention: width and hidden units must be >= 1, got {dim}, {tuple(hidden_units)}"
            )
        self.unit = MLP(4 * dim, hidden_units, output_dim=1, dropout=None, activation=nn.Sigmoid)

    def weights(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The attention weights w (B, L): the unit's scores at real positions, exactly 0 at padding."""
        q = query[:, None, :].expand_as(keys)  # (B, L, D)
        features = torch.cat([q, keys, q - keys, q * keys], dim=-1)  # (B, L, 4D)
        scores = self.unit(features).squeeze(-1)  # (B, L)
        return torch.where(mask, scores, torch.zeros_like(scores))  # (B, L)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.weights(query, keys, mask)  # (B, L)
        keys = torch.where(mask[:, :, None], keys, torch.zeros_like(keys))  # padding keys never enter
        return (w[:, None, :] @ keys).squeeze(1)  # (B, 1, L) @ (B, L, D) -> (B, D)
