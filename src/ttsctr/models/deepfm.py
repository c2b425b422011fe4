"""DeepFM — Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017.

``logit = b + sum_i w_{x_i} + sum_{i<j} <e_i, e_j> + MLP([e_1; ...; e_F])``: first-order
term (one scalar weight per feature id plus a global bias), FM second-order term and a deep
part, sharing the embeddings; the three logits are summed. (The TTS4CTR reference code drops
the first-order term; we keep it, as in the paper.)

Where the first-order weights live: ``forward_embedded`` sees only embeddings, never ids, so
the per-feature scalar ``w_x`` is stored as one extra column of the shared embedding table.
``embed(x)`` therefore returns (B, F, D + 1): columns ``[:D]`` are the factor embeddings
``e_i``, column ``D`` is ``w_{x_i}``. ``self.embedding_dim`` is D + 1 (the width
``forward_embedded`` expects); ``config.embedding_dim`` stays D. Embedding-level variants
treat the weight like the rest of the feature's embedding (masking a field also drops its
first-order term), and the table counts as embedding parameters.

Presets: ``default`` — embedding 16, MLP (1024, 512, 256); ``small`` — embedding 8,
MLP (128, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.layers.factorization_machine import FactorizationMachine
from ttsctr.layers.init import ParamInit, Zeros
from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class DeepFMConfig(ModelConfig):
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "deepfm",
    presets={
        "default": DeepFMConfig(),
        "small": DeepFMConfig(embedding_dim=8, hidden_units=(128, 64)),
    },
)
class DeepFM(CTRModel):
    config_class = DeepFMConfig

    def __init__(self, spec, config: DeepFMConfig) -> None:
        super().__init__(spec, config)
        factor_dim = config.embedding_dim
        # Replace the base table by one with the extra first-order column (see module docstring).
        self.embedding = FeatureEmbedding(spec.num_features, factor_dim + 1, config.embedding_init_std)
        self.embedding_dim = factor_dim + 1
        self.factor_dim = factor_dim
        self.bias = nn.Parameter(torch.zeros(1))
        self.fm = FactorizationMachine()
        self.mlp = MLP(
            self.num_fields * factor_dim,
            config.hidden_units,
            output_dim=1,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
        )

    def weight_init_plan(self) -> dict[str, ParamInit]:
        return {"bias": Zeros()}

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        factors = e[..., : self.factor_dim]  # (B, F, D)
        first_order = e[..., self.factor_dim].sum(dim=1) + self.bias  # (B,)
        second_order = self.fm(factors)  # (B,)
        deep = self.mlp(factors.flatten(1)).squeeze(-1)  # (B,)
        return first_order + second_order + deep
