"""All pairwise field inner products, the product layer of IPNN (Qu et al., ICDM 2016)."""

from __future__ import annotations

import torch
from torch import nn


class PairwiseInnerProduct(nn.Module):
    """``p_{ij} = <e_i, e_j>`` for every field pair ``i < j``, in ``torch.triu_indices`` order.

    Input (B, F, D) -> output (B, F(F-1)/2).

    The Gram matrix ``E E^T`` is one batched matmul, then the strict upper triangle is
    gathered. That does twice the strictly needed multiplies, but it is one fast kernel
    instead of a gather of 2·F(F-1)/2 rows, and ``FlopCounterMode`` sees it (it does not
    count element-wise products), so FLOPs-matched comparisons include the interaction.
    """

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        self.num_fields = num_fields
        self.num_pairs = num_fields * (num_fields - 1) // 2
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        # Flat positions of (i, j) in the F×F Gram matrix; a buffer so it follows .to(device),
        # not persistent because it is derived from num_fields.
        self.register_buffer("pair_index", rows * num_fields + cols, persistent=False)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        gram = torch.bmm(e, e.transpose(1, 2))  # (B, F, F)
        return gram.flatten(1).index_select(1, self.pair_index)  # (B, F(F-1)/2)
