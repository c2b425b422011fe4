"""LR — logistic regression on one-hot feature ids, the first-order baseline of every CTR
paper (e.g. Richardson et al., "Predicting Clicks: Estimating the Click-Through Rate for New
Ads", WWW 2007).

``logit = b + sum_i w_{x_i}``: one scalar weight per feature id plus a global bias. The
weights are stored as a one-wide embedding table, so ``embed(x)`` is (B, F, 1) and
embedding-level variants (feature masking) work unchanged. There are no hidden layers, so
no dropout or batch norm; its forward FLOPs count is 0 (a sum is element-wise work).

Presets: ``default`` and ``small`` are the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.init import ParamInit, Zeros
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class LRConfig(ModelConfig):
    embedding_dim: int = 1


@register_model("lr", presets={"default": LRConfig(), "small": LRConfig()})
class LogisticRegression(CTRModel):
    config_class = LRConfig

    def __init__(self, spec, config: LRConfig) -> None:
        if config.embedding_dim != 1:
            raise ConfigError(f"lr: one weight per feature id, so embedding_dim must be 1, got {config.embedding_dim}")
        if config.dropout or config.batch_norm:
            raise ConfigError(
                f"lr: no hidden layers, so no dropout or batch norm; got dropout={config.dropout}, "
                f"batch_norm={config.batch_norm}"
            )
        super().__init__(spec, config)
        self.bias = nn.Parameter(torch.zeros(1))

    def weight_init_plan(self) -> dict[str, ParamInit]:
        return {"bias": Zeros()}

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return e.sum(dim=(1, 2)) + self.bias  # (B, F, 1) -> (B,)
