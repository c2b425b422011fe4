"""Building blocks of Wukong (Zhang et al., "Wukong: Towards a Scaling Law for Large-Scale
Recommendation", ICML 2024): embeddings in, embeddings out, so layers stack."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.init import ParamInit, Xavier
from ttsctr.layers.mlp import MLP

FMB_OUTPUT_ACTIVATIONS = ("relu", "none")


class LinearCompressBlock(nn.Module):
    """``LCB(X) = W^T X``: each of the m output embeddings is a learned linear combination
    of the n input embeddings (W is n×m); the embedding dimension is left alone.

    Also used as Wukong's residual projection when the embedding count changes.
    Input (B, n, D) -> output (B, m, D).
    """

    def __init__(self, num_inputs: int, num_outputs: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_inputs, num_outputs))
        # nn.Linear's default range for fan-in n: keeps the output scale close to the input's.
        bound = 1.0 / math.sqrt(num_inputs)
        nn.init.uniform_(self.weight, -bound, bound)

    def weight_init_plan(self) -> dict[str, ParamInit]:
        num_inputs, num_outputs = self.weight.shape
        return {"weight": Xavier(fan_in=num_inputs, fan_out=num_outputs)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bnd,nm->bmd", x, self.weight)  # (B, m, D)


class FactorizationMachineBlock(nn.Module):
    """``FMB(X) = reshape(act(MLP(LN(flatten(X (X^T Y))))))``, Wukong's optimised FM.

    The full FM ``X X^T`` (n×n dot products) is compressed by a learned rank-k projection
    Y (n×k): ``X (X^T Y)`` costs O(n·D·k) instead of O(n²·D) and keeps k linear mixtures of
    the pairwise dot products per embedding. The MLP maps the n·k interactions to n_F new
    embeddings of width D.

    ``output_activation="relu"`` (the reference code, FuxiCTR and our default) treats the
    MLP's last layer like its hidden ones — ReLU, then dropout — so new embeddings are
    non-negative; ``"none"`` ends the MLP in a plain linear layer.

    Input (B, n, D) -> output (B, n_F, D).
    """

    def __init__(
        self,
        num_inputs: int,
        num_outputs: int,
        embedding_dim: int,
        rank: int,
        hidden_units: Sequence[int],
        *,
        dropout: float = 0.0,
        batch_norm: bool = False,
        output_activation: str = "relu",
    ) -> None:
        super().__init__()
        if output_activation not in FMB_OUTPUT_ACTIVATIONS:
            raise ConfigError(
                f"wukong: fmb_output_activation must be one of {FMB_OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        self.num_outputs = num_outputs
        self.embedding_dim = embedding_dim
        self.projection = nn.Parameter(torch.empty(num_inputs, rank))  # Y
        bound = 1.0 / math.sqrt(num_inputs)
        nn.init.uniform_(self.projection, -bound, bound)
        self.norm = nn.LayerNorm(num_inputs * rank)
        out_dim = num_outputs * embedding_dim
        if output_activation == "relu":
            self.mlp = MLP(num_inputs * rank, (*hidden_units, out_dim), dropout=dropout, batch_norm=batch_norm)
        else:
            self.mlp = MLP(
                num_inputs * rank, hidden_units, output_dim=out_dim, dropout=dropout, batch_norm=batch_norm
            )

    def weight_init_plan(self) -> dict[str, ParamInit]:
        num_inputs, rank = self.projection.shape
        return {"projection": Xavier(fan_in=num_inputs, fan_out=rank)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compressed = torch.einsum("bnd,nk->bdk", x, self.projection)  # X^T Y: (B, D, k)
        interactions = torch.bmm(x, compressed)  # X (X^T Y): (B, n, k)
        out = self.mlp(self.norm(interactions.flatten(1)))  # (B, n_F·D)
        return out.view(-1, self.num_outputs, self.embedding_dim)  # (B, n_F, D)


class WukongLayer(nn.Module):
    """``X_{l+1} = LN(concat(FMB(X_l), LCB(X_l)) + residual(X_l))``.

    ``residual`` is the identity when n == n_F + n_L, else a ``LinearCompressBlock`` to
    n_F + n_L embeddings. LayerNorm is over the embedding dimension.
    Input (B, n, D) -> output (B, n_F + n_L, D).
    """

    def __init__(
        self,
        num_inputs: int,
        embedding_dim: int,
        *,
        fmb_embeddings: int,
        lcb_embeddings: int,
        fmb_rank: int,
        fmb_hidden_units: Sequence[int],
        fmb_output_activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        num_outputs = fmb_embeddings + lcb_embeddings
        self.num_outputs = num_outputs
        self.fmb = FactorizationMachineBlock(
            num_inputs,
            fmb_embeddings,
            embedding_dim,
            fmb_rank,
            fmb_hidden_units,
            dropout=dropout,
            batch_norm=batch_norm,
            output_activation=fmb_output_activation,
        )
        self.lcb = LinearCompressBlock(num_inputs, lcb_embeddings)
        self.residual = (
            nn.Identity() if num_inputs == num_outputs else LinearCompressBlock(num_inputs, num_outputs)
        )
        self.norm = nn.LayerNorm(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.fmb(x), self.lcb(x)], dim=1)  # (B, n_F + n_L, D)
        return self.norm(mixed + self.residual(x))  # (B, n_F + n_L, D)
