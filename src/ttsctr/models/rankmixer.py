"""RankMixer — Zhu et al., "RankMixer: Scaling Up Ranking Models in Industrial
Recommenders", arXiv 2507.15551, 2025 (ByteDance).

Tokenise: ``X_0 = Tokenizer([e_1; ...; e_F])`` — the concatenated field embeddings are cut
into T slices, each projected to width D (T tokens, any field count). Then L blocks of
``S = LN(TokenMixing(X) + X)``, ``X' = LN(PerTokenFFN(S) + S)`` with parameter-free
multi-head token mixing (token i of the output = head i of every token; needs D % T == 0)
and per-token FFNs of width ``expansion·D`` (GELU). ``logit = w^T mean_t(X_L[t]) + b``.

Presets: ``default`` — embedding 16, 3 layers, T = 16 tokens of width D = 64, expansion 4
(FLOPs per row of the same order as the MLP backbones); ``small`` — embedding 8, 2 layers,
T = 8, D = 32, expansion 2. The paper's reference code instead uses T = F tokens of width
equal to the embedding dimension, expansion 2 and an MLP head on the flattened tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.rankmixer import FieldTokenizer, RankMixerBlock
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class RankMixerConfig(ModelConfig):
    num_layers: int = 3  # L
    num_tokens: int = 16  # T
    token_dim: int = 64  # D
    expansion: int = 4


@register_model(
    "rankmixer",
    presets={
        "default": RankMixerConfig(),
        "small": RankMixerConfig(embedding_dim=8, num_layers=2, num_tokens=8, token_dim=32, expansion=2),
    },
)
class RankMixer(CTRModel):
    config_class = RankMixerConfig

    def __init__(self, spec, config: RankMixerConfig) -> None:
        super().__init__(spec, config)
        for key in ("num_layers", "num_tokens", "token_dim", "expansion"):
            if getattr(config, key) < 1:
                raise ConfigError(f"rankmixer: {key} must be >= 1, got {getattr(config, key)}")
        if config.token_dim % config.num_tokens:
            raise ConfigError(
                f"rankmixer: token_dim={config.token_dim} must be divisible by num_tokens={config.num_tokens} "
                "(token mixing splits every token into num_tokens heads)"
            )
        self.tokenizer = FieldTokenizer(self.num_fields, config.embedding_dim, config.num_tokens, config.token_dim)
        self.blocks = nn.Sequential(
            *(
                RankMixerBlock(
                    config.num_tokens,
                    config.token_dim,
                    config.expansion,
                    dropout=config.dropout,
                    batch_norm=config.batch_norm,
                )
                for _ in range(config.num_layers)
            )
        )
        self.output = nn.Linear(config.token_dim, 1)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.tokenizer(e))  # (B, F, d) -> (B, T, D)
        return self.output(tokens.mean(dim=1)).squeeze(-1)  # (B, D) -> (B,)
