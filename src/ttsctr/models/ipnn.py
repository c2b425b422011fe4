"""IPNN — Qu et al., "Product-based Neural Networks for User Response Prediction", ICDM 2016.

``logit = MLP([z; p])`` with ``z = [e_1; ...; e_F]`` and ``p = [p_{1,2}; ...; p_{F-1,F}]``,
``p_{ij} = <e_i, e_j>``: the concatenated embeddings plus all F(F-1)/2 pairwise inner
products feed one MLP.

This is the paper's model: its product layer ``l_1 = ReLU(l_z + l_p + b_1)`` with
``l_z = W_z z`` and ``l_p = W_p p`` (every unit a linear function of z and of p) is one
linear layer on the concatenation, ``W_z z + W_p p = [W_z W_p] [z; p]``, i.e. the MLP's first
layer. The paper additionally factorises each unit's weights on p as ``θ θ^T`` to save
compute; like the reference code and FuxiCTR we keep the full W_p.

Presets: ``default`` — embedding 16, MLP (1024, 512, 256); ``small`` — embedding 8,
MLP (128, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ttsctr.layers.inner_product import PairwiseInnerProduct
from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class IPNNConfig(ModelConfig):
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "ipnn",
    presets={
        "default": IPNNConfig(),
        "small": IPNNConfig(embedding_dim=8, hidden_units=(128, 64)),
    },
)
class IPNN(CTRModel):
    config_class = IPNNConfig

    def __init__(self, spec, config: IPNNConfig) -> None:
        super().__init__(spec, config)
        self.inner_product = PairwiseInnerProduct(self.num_fields)
        self.mlp = MLP(
            self.num_fields * config.embedding_dim + self.inner_product.num_pairs,
            config.hidden_units,
            output_dim=1,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
        )

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        products = self.inner_product(e)  # (B, F(F-1)/2)
        features = torch.cat([e.flatten(1), products], dim=1)  # (B, F·D + F(F-1)/2)
        return self.mlp(features).squeeze(-1)  # (B,)
