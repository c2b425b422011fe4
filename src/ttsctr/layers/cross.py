"""Cross networks of DCN (Wang et al., ADKDD 2017) and DCN-V2 (Wang et al., WWW 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ttsctr.layers.init import ParamInit, Xavier, Zeros


class CrossNetwork(nn.Module):
    """DCN cross layers: ``x_{l+1} = x_0 · (x_l^T w_l) + b_l + x_l``.

    Input/output (B, n). Each layer has a weight vector ``w_l`` (n) and a bias ``b_l`` (n),
    so ``2·n·num_layers`` parameters; the layer output is a rank-one update of x_0, which
    makes the degree of the polynomial in x_0 grow by one per layer.
    """

    def __init__(self, input_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.weights = nn.Parameter(torch.empty(num_layers, input_dim, 1))  # column vectors w_l
        self.biases = nn.Parameter(torch.zeros(num_layers, input_dim))
        # nn.Linear(input_dim, 1)'s default range, as the reference implementations use.
        bound = 1.0 / math.sqrt(input_dim)
        nn.init.uniform_(self.weights, -bound, bound)

    def weight_init_plan(self) -> dict[str, ParamInit]:
        # Each w_l is the weight of a Linear(n, 1), as in FuxiCTR and the reference code.
        n = self.weights.shape[1]
        return {"weights": Xavier(fan_in=n, fan_out=1), "biases": Zeros()}

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, n)
        for layer in range(self.num_layers):
            # (B, n) @ (n, 1) is a matmul rather than a matrix-vector product so that
            # FlopCounterMode counts it.
            scale = x @ self.weights[layer]  # (B, 1)
            x = x0 * scale + self.biases[layer] + x  # (B, n)
        return x


class CrossLayerV2(nn.Module):
    """One DCN-V2 cross layer: ``x_{l+1} = x_0 ⊙ (W x_l + b) + x_l``.

    Full rank: ``W`` is n×n (``n² + n`` parameters). Low rank r: ``W = U V^T`` with U, V
    n×r (``2·n·r + n`` parameters), the paper's cheaper variant (without its mixture of
    experts). Input/output (B, n).
    """

    def __init__(self, input_dim: int, low_rank: int | None = None) -> None:
        super().__init__()
        if low_rank is None:
            self.project = nn.Linear(input_dim, input_dim)
        else:
            self.project = nn.Sequential(
                nn.Linear(input_dim, low_rank, bias=False),  # V^T x
                nn.Linear(low_rank, input_dim),  # U (V^T x) + b
            )

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.project(x) + x  # (B, n)


class CrossNetworkV2(nn.Module):
    """A stack of ``CrossLayerV2``; input/output (B, n)."""

    def __init__(self, input_dim: int, num_layers: int, low_rank: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossLayerV2(input_dim, low_rank) for _ in range(num_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, n)
        for layer in self.layers:
            x = layer(x0, x)
        return x
