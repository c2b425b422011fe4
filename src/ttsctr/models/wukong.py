"""Wukong — Zhang et al., "Wukong: Towards a Scaling Law for Large-Scale Recommendation",
ICML 2024.

A stack of Wukong layers on the n = F field embeddings, each
``X_{l+1} = LN(concat(FMB(X_l), LCB(X_l)) + residual(X_l))`` where
``FMB(X) = MLP(LN(flatten(X (X^T Y))))`` gives n_F embeddings (optimised FM with a learned
rank-k projection Y), ``LCB(X) = W^T X`` gives n_L embeddings (linear recombinations), and
``residual`` is the identity or, when the embedding count changes, a linear recombination.
``logit = MLP(flatten(X_L))``.

``fmb_output_activation``: ``"relu"`` (default, as the TTS4CTR reference code and FuxiCTR)
puts a ReLU (and dropout) on the FMB MLP's output layer, so the FMB's new embeddings are
non-negative; ``"none"`` leaves that layer linear.

Presets: ``default`` (the paper's reference code) — embedding 16, 3 layers,
n_F = n_L = 16, rank 24, FMB MLP (512, 512), final MLP (1024, 512, 256); ``small`` —
embedding 8, 2 layers, n_F = n_L = 8, rank 8, FMB MLP (64,), final MLP (128, 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.mlp import MLP
from ttsctr.layers.wukong import WukongLayer
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class WukongConfig(ModelConfig):
    num_layers: int = 3
    fmb_embeddings: int = 16  # n_F
    lcb_embeddings: int = 16  # n_L
    fmb_rank: int = 24  # k
    fmb_hidden_units: tuple[int, ...] = (512, 512)
    fmb_output_activation: str = "relu"  # "relu" | "none"
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "wukong",
    presets={
        "default": WukongConfig(),
        "small": WukongConfig(
            embedding_dim=8,
            num_layers=2,
            fmb_embeddings=8,
            lcb_embeddings=8,
            fmb_rank=8,
            fmb_hidden_units=(64,),
            hidden_units=(128, 64),
        ),
    },
)
class Wukong(CTRModel):
    config_class = WukongConfig

    def __init__(self, spec, config: WukongConfig) -> None:
        super().__init__(spec, config)
        for key in ("num_layers", "fmb_embeddings", "lcb_embeddings", "fmb_rank"):
            if getattr(config, key) < 1:
                raise ConfigError(f"wukong: {key} must be >= 1, got {getattr(config, key)}")
        layers, num_embeddings = [], self.num_fields
        for _ in range(config.num_layers):
            layer = WukongLayer(
                num_embeddings,
                config.embedding_dim,
                fmb_embeddings=config.fmb_embeddings,
                lcb_embeddings=config.lcb_embeddings,
                fmb_rank=config.fmb_rank,
                fmb_hidden_units=config.fmb_hidden_units,
                fmb_output_activation=config.fmb_output_activation,
                dropout=config.dropout,
                batch_norm=config.batch_norm,
            )
            layers.append(layer)
            num_embeddings = layer.num_outputs
        self.layers = nn.Sequential(*layers)
        self.mlp = MLP(
            num_embeddings * config.embedding_dim,
            config.hidden_units,
            output_dim=1,
            dropout=config.dropout,
            batch_norm=config.batch_norm,
        )

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        x = self.layers(e)  # (B, F, D) -> (B, n_F + n_L, D)
        return self.mlp(x.flatten(1)).squeeze(-1)  # (B,)
