"""DCN-V2 — Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for
Web-scale Learning to Rank Systems", WWW 2021.

Cross layers ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l`` on ``x_0 = [e_1; ...; e_F]``; W_l is
full rank, or ``U_l V_l^T`` of rank ``low_rank`` (the paper's mixture of low-rank experts is
not implemented). Combined with an MLP either
``parallel``: ``logit = w^T [x_L; MLP(x_0)] + b`` or ``stacked``: ``logit = w^T MLP(x_L) + b``.

Presets (parallel, full rank, cross depth 3 as in the paper's reference code):
``default`` — embedding 16, 3 cross layers, MLP (1024, 512, 256); ``small`` — embedding 8,
2 cross layers, MLP (128, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.cross import CrossNetworkV2
from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model

STRUCTURES = ("parallel", "stacked")


@dataclass
class DCNv2Config(ModelConfig):
    cross_layers: int = 3
    hidden_units: tuple[int, ...] = (1024, 512, 256)
    structure: str = "parallel"
    low_rank: int | None = None


@register_model(
    "dcnv2",
    presets={
        "default": DCNv2Config(),
        "small": DCNv2Config(embedding_dim=8, cross_layers=2, hidden_units=(128, 64)),
    },
)
class DCNv2(CTRModel):
    config_class = DCNv2Config

    def __init__(self, spec, config: DCNv2Config) -> None:
        super().__init__(spec, config)
        if config.structure not in STRUCTURES:
            raise ConfigError(f"dcnv2: structure must be one of {STRUCTURES}, got {config.structure!r}")
        if config.cross_layers < 0:
            raise ConfigError(f"dcnv2: cross_layers must be >= 0, got {config.cross_layers}")
        if config.low_rank is not None and config.low_rank < 1:
            raise ConfigError(f"dcnv2: low_rank must be a positive int or null, got {config.low_rank}")
        input_dim = self.num_fields * config.embedding_dim
        self.structure = config.structure
        self.cross = CrossNetworkV2(input_dim, config.cross_layers, config.low_rank)
        self.mlp = MLP(input_dim, config.hidden_units, dropout=config.dropout, batch_norm=config.batch_norm)
        head_dim = self.mlp.output_dim + (input_dim if self.structure == "parallel" else 0)
        self.output = nn.Linear(head_dim, 1)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        x0 = e.flatten(1)  # (B, F·D)
        if self.structure == "parallel":
            h = torch.cat([self.cross(x0), self.mlp(x0)], dim=1)  # (B, F·D + h)
        else:
            h = self.mlp(self.cross(x0))  # (B, h)
        return self.output(h).squeeze(-1)  # (B,)
