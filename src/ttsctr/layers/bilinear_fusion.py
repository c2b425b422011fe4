"""Multi-head bilinear fusion of two streams, FinalMLP's output layer (Mao et al., AAAI 2023)."""

from __future__ import annotations

import torch
from torch import nn

from ttsctr.layers.init import ParamInit, Xavier


class MultiHeadBilinearFusion(nn.Module):
    """``y = b + w_1^T x_1 + w_2^T x_2 + sum_h x_{1,h}^T W_h x_{2,h}``.

    ``x_1`` (B, d_1) and ``x_2`` (B, d_2) are split into H heads of widths d_1/H and d_2/H;
    each head pair has its own bilinear matrix ``W_h`` (d_1/H × d_2/H), so heads cut the
    bilinear parameters from d_1·d_2 to d_1·d_2/H. Output (B,) logits.
    """

    def __init__(self, dim_1: int, dim_2: int, num_heads: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.linear_1 = nn.Linear(dim_1, 1)  # carries the bias b
        self.linear_2 = nn.Linear(dim_2, 1, bias=False)
        self.bilinear = nn.Parameter(torch.empty(num_heads, dim_1 // num_heads, dim_2 // num_heads))
        nn.init.normal_(self.bilinear, std=self.weight_init_plan()["bilinear"].normal_std())

    def weight_init_plan(self) -> dict[str, ParamInit]:
        # FuxiCTR and the reference code store all W_h as one (H·d_1/H·d_2/H, 1) column and
        # Xavier-initialise that, i.e. fan_in 1 and fan_out H·d_1/H·d_2/H: a small std that
        # keeps the bilinear term of order one at the start although it sums d_1·d_2/H products.
        return {"bilinear": Xavier(fan_in=1, fan_out=self.bilinear.numel())}

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        linear = (self.linear_1(x1) + self.linear_2(x2)).squeeze(-1)  # (B,)
        heads_1 = x1.view(x1.shape[0], self.num_heads, -1)  # (B, H, d_1/H)
        heads_2 = x2.view(x2.shape[0], self.num_heads, -1)  # (B, H, d_2/H)
        projected = torch.einsum("bhi,hij->bhj", heads_1, self.bilinear)  # (B, H, d_2/H)
        bilinear = torch.einsum("bhj,bhj->b", projected, heads_2)  # (B,)
        return linear + bilinear
