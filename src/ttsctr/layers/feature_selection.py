"""Context-aware feature selection gate of FinalMLP (Mao et al., AAAI 2023)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ttsctr.layers.init import Keep, ParamInit
from ttsctr.layers.mlp import MLP


class FeatureSelectionGate(nn.Module):
    """``g = 2·sigmoid(MLP(c))``, ``out = g ⊙ [e_1; ...; e_F]``.

    ``c`` is the concatenation of the context fields' embeddings (C·D wide) or, when no
    context field is chosen, a learned constant vector of width D — then the gate is the same
    for every row, a learned per-coordinate re-weighting of the embeddings (as in FuxiCTR, the
    FinalMLP authors' library). The factor 2 makes a gate start near 1 (sigmoid of a small
    pre-activation is ~0.5), so at initialisation the stream sees the unscaled embeddings and
    the gate learns to amplify (up to 2×) or suppress each embedding coordinate.

    The gate MLP has ReLU hidden layers and no dropout or batch norm (as in FuxiCTR): a gate
    must not change between MC-dropout samples, and batch statistics would make it depend on
    the other rows of the batch.

    An input-independent gate is computed once per batch, not once per row (FuxiCTR repeats
    the constant B times), so ``ttsctr.flops.model_cost`` counts its MLP once per batch, i.e.
    1/B of it per row — at serving time it is a constant that costs nothing per row.

    Input (B, F, D) -> output (B, F·D).
    """

    def __init__(
        self,
        num_fields: int,
        embedding_dim: int,
        context_fields: Sequence[int],
        hidden_units: Sequence[int],
    ) -> None:
        super().__init__()
        context = tuple(context_fields)
        self.register_buffer("context_fields", torch.tensor(context, dtype=torch.long), persistent=False)
        if context:
            self.context = None
            context_dim = len(context) * embedding_dim
        else:
            # FuxiCTR starts this vector at 0; with zero biases (its Xavier recipe) every hidden
            # unit of the gate MLP then sits at ReLU(0), whose gradient is 0, so only the output
            # bias ever trains. A unit-normal start gives every gate parameter a gradient; the
            # gate is input-independent either way.
            # (1, D) rather than (D,): the MLP then takes the parameter itself as its input, a
            # leaf, which FlopCounterMode's module hooks need under no_grad (a view has no grad_fn).
            self.context = nn.Parameter(torch.randn(1, embedding_dim))
            context_dim = embedding_dim
        self.gate_mlp = MLP(context_dim, hidden_units, output_dim=num_fields * embedding_dim, dropout=None)

    def weight_init_plan(self) -> dict[str, ParamInit]:
        if self.context is None:
            return {}
        return {"context": Keep("learned gate input, N(0, 1) at construction")}

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if self.context is None:
            context = e.index_select(1, self.context_fields).flatten(1)  # (B, C·D)
            gate = 2.0 * torch.sigmoid(self.gate_mlp(context))  # (B, F·D)
        else:
            gate = 2.0 * torch.sigmoid(self.gate_mlp(self.context))  # (1, F·D), the same for every row
        return gate * e.flatten(1)  # (B, F·D)
