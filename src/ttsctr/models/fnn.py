"""FNN — Zhang, Du & Wang, "Deep Learning over Multi-field Categorical Data", ECIR 2016.

``logit = MLP([e_1; ...; e_F])`` — concatenated field embeddings fed to an MLP. As in the
paper's reference code, there is no FM pre-training of the embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class FNNConfig(ModelConfig):
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "fnn",
    presets={
        "default": FNNConfig(),
        "small": FNNConfig(embedding_dim=8, hidden_units=(128, 64)),
    },
)
class FNN(CTRModel):
    config_class = FNNConfig

    def __init__(self, spec, config: FNNConfig) -> None:
        super().__init__(spec, config)
        self.mlp = MLP(
            self.num_fields * config.embedding_dim,
            config.hidden_units,
            output_dim=1,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
        )

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self.mlp(e.flatten(1)).squeeze(-1)  # (B, F*D) -> (B,)
