"""Common interface of every CTR backbone.

A backbone maps a batch of encoded feature ids to one logit per row, in two steps so that
embedding-level variants (feature masking, multi-embedding, MC-dropout) reuse the model:

    e = model.embed(x)              # (B, F) int ids -> (B, F, D)
    logit = model.forward_embedded(e)  # (B, F, D) -> (B,)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import count_parameters
from ttsctr.layers.embedding import FeatureEmbedding


@dataclass
class ModelConfig:
    """Settings every backbone shares. Subclasses add their own knobs."""

    embedding_dim: int = 16
    dropout: float = 0.0
    batch_norm: bool = False
    embedding_init_std: float = 1e-4


class CTRModel(nn.Module):
    """Base class: owns the shared embedding table; subclasses implement ``forward_embedded``."""

    config_class: type[ModelConfig] = ModelConfig

    def __init__(self, spec: FeatureSpec, config: ModelConfig, *, own_embedding: bool = True) -> None:
        """``own_embedding=False``: the subclass sets ``embedding`` itself (Multi-Embed takes its
        experts' tables rather than allocating one no expert would use)."""
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.spec = spec
        self.config = config
        self.num_fields = spec.num_fields
        self.embedding_dim = config.embedding_dim
        if own_embedding:
            self.embedding = FeatureEmbedding(spec.num_features, config.embedding_dim, config.embedding_init_std)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.num_fields:
            raise ConfigError(
                f"{type(self).__name__}: input has shape {tuple(x.shape)}; expected (batch, {self.num_fields}) "
                f"for fields {list(self.spec.field_names)}"
            )
        return self.embedding(x)  # (B, F, D)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(x))  # (B,)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """A training-loss term of the last forward pass in train mode (e.g. D-MoE's de-correlation
        regulariser, Eq. 8), already weighted; ``None`` for backbones trained on BCE alone."""
        return None

    def dense_parameters(self) -> int:
        return count_parameters(self)[0]

    def embedding_parameters(self) -> int:
        return count_parameters(self)[1]
