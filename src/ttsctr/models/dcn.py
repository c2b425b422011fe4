"""DCN — Wang et al., "Deep & Cross Network for Ad Click Predictions", ADKDD 2017.

Cross network ``x_{l+1} = x_0 · (x_l^T w_l) + b_l + x_l`` on ``x_0 = [e_1; ...; e_F]``, in
parallel with an MLP on x_0; ``logit = w^T [x_L; MLP(x_0)] + b`` (the TTS4CTR reference
code drops b; FuxiCTR and the paper keep it).

Presets (cross depth 3 as in the paper's reference code): ``default`` — embedding 16,
3 cross layers, MLP (1024, 512, 256); ``small`` — embedding 8, 2 cross layers, MLP (128, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.cross import CrossNetwork
from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class DCNConfig(ModelConfig):
    cross_layers: int = 3
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "dcn",
    presets={
        "default": DCNConfig(),
        "small": DCNConfig(embedding_dim=8, cross_layers=2, hidden_units=(128, 64)),
    },
)
class DCN(CTRModel):
    config_class = DCNConfig

    def __init__(self, spec, config: DCNConfig) -> None:
        super().__init__(spec, config)
        if config.cross_layers < 0:
            raise ConfigError(f"dcn: cross_layers must be >= 0, got {config.cross_layers}")
        input_dim = self.num_fields * config.embedding_dim
        self.cross = CrossNetwork(input_dim, config.cross_layers)
        self.mlp = MLP(input_dim, config.hidden_units, dropout=config.dropout, batch_norm=config.batch_norm)
        self.output = nn.Linear(input_dim + self.mlp.output_dim, 1)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        x0 = e.flatten(1)  # (B, F·D)
        combined = torch.cat([self.cross(x0), self.mlp(x0)], dim=1)  # (B, F·D + h)
        return self.output(combined).squeeze(-1)  # (B,)
