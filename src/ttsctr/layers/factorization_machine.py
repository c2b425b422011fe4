"""Second-order Factorization Machine interaction (Rendle, ICDM 2010)."""

from __future__ import annotations

import torch
from torch import nn


class FactorizationMachine(nn.Module):
    """``sum_{i<j} <e_i, e_j> = 0.5 * sum_d [(sum_i e_{i,d})^2 - sum_i e_{i,d}^2]``.

    Input (B, F, D) -> output (B,). Linear in F thanks to the square-of-sum identity; it has
    no parameters (DeepFM's first-order term and bias live in the model).
    """

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        square_of_sum = e.sum(dim=1).pow(2)  # (B, D)
        sum_of_square = e.pow(2).sum(dim=1)  # (B, D)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)  # (B,)
