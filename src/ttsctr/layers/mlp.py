"""Multi-layer perceptron with optional batch norm and always-present dropout."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``h_{l+1} = Dropout(act(BN(W_l h_l + b_l)))`` for every hidden width, then an optional
    linear output layer ``W_o h_L + b_o``.

    Input (B, in_dim) -> output (B, hidden_units[-1]) or (B, output_dim) when ``output_dim``
    is set.

    Every hidden layer has an ``nn.Dropout`` module even at rate 0, so that MC-dropout can
    switch it on later (``ttsctr.layers.dropout.set_dropout_rate``) and a checkpoint trained
    at one rate loads into the model built at another (same module indices in the state
    dict). ``dropout=None`` builds no dropout modules at all, for MLPs that MC-dropout must
    leave alone (FinalMLP's gates).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_units: Sequence[int],
        *,
        output_dim: int | None = None,
        dropout: float | None = 0.0,
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
            if dropout is not None:
                layers.append(nn.Dropout(dropout))
            dim = units
        if output_dim is not None:
            layers.append(nn.Linear(dim, output_dim))
            dim = output_dim
        self.output_dim = dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
