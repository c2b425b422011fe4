"""Multi-layer perceptron with optional batch norm and dropout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``h_{l+1} = Dropout(ReLU(BN(W_l h_l + b_l)))``, then an optional linear output layer.

    Input (B, in_dim) -> output (B, hidden_units[-1]) or (B, output_dim) when ``output_dim`` is set.
    Dropout stays a module so MC-dropout can switch it on at inference.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_units: Sequence[int],
        *,
        output_dim: int | None = None,
        dropout: float = 0.0,
        batch_norm: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = input_dim
        for units in hidden_units:
            layers.append(nn.Linear(dim, units))
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = units
        if output_dim is not None:
            layers.append(nn.Linear(dim, output_dim))
            dim = output_dim
        self.output_dim = dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
