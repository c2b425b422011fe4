"""RankMixer — Zhu et al., "RankMixer: Scaling Up Ranking Models in Industrial
Recommenders", arXiv 2507.15551, 2025 (ByteDance).

Tokenise the field embeddings into T tokens of width D, then L blocks of
``S = LN(TokenMixing(X) + X)``, ``X' = LN(PerTokenFFN(S) + S)``: parameter-free multi-head
token mixing (each token is cut into T heads of width D/T; output token i = head i of every
token, so D % T == 0 is required) and per-token FFNs ``W2_t GELU(W1_t x_t)`` of width
``expansion·D``, then a head on the final tokens.

Tokenisers (``tokenizer``):

* ``"field"`` — one token per field, T = F, as the TTS4CTR reference code does. The token
  width ``token_dim`` defaults to the embedding width rounded up to a multiple of F; when it
  differs from the embedding width every field gets a learned d×D projection
  (``PerFieldTokenizer``). The reference code has no projection and asserts D % F == 0, i.e.
  it only runs with an embedding width that is a multiple of the field count (Avazu: 24
  fields at d = 24); here Criteo's 39 fields at d = 16 get 39 tokens of width 39, MovieLens'
  8 fields at d = 16 keep width 16 without projection.
* ``"slice"`` — ``num_tokens`` tokens of width ``token_dim``: the concatenated embeddings are
  cut into T slices, each projected to width D (``SliceTokenizer``, the paper's semantic
  token groups without a schema).

Heads (``head``): ``"flatten_mlp"`` — ``logit = MLP(flatten(X_L))`` (the reference code;
with its (1024, 512, 256) MLP, ≈ 88 % of the FLOPs on Avazu); ``"mean_pool"`` —
``logit = MLP(mean_t X_L[t])``, with ``hidden_units = ()`` a single ``w^T mean_t X_L[t] + b``.

Presets:

* ``default`` — the reference code: embedding 16, field tokens, 3 layers, expansion 2,
  flatten + MLP (1024, 512, 256).
* ``small`` — embedding 8, 8 slice tokens of width 16, 2 layers, expansion 2, flatten + MLP
  (128, 64). Slice tokens rather than field tokens because field tokens cost O(F³) per layer
  (F tokens of width >= F): with them this preset would cost 1.38 MFLOPs per row on 39
  fields (9× Wukong's ``small``, 0.6 s per 4096-row training step on one CPU thread)
  against 0.09 MFLOPs with slice tokens. For the reference structure at a small size,
  override ``tokenizer: field``, ``num_tokens: null``, ``token_dim: null``.
* ``mean_pool`` — this project's earlier default: embedding 16, 16 slice tokens of width 64,
  3 layers, expansion 4, mean pooling and one linear output (its tokenizer has since lost
  its bias, see ``SliceTokenizer``).

Unlike the reference code, LayerNorm is per token with learned affine parameters (see
``RankMixerBlock``), and the per-token FFNs carry a dropout module (rate ``dropout``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.mlp import MLP
from ttsctr.layers.rankmixer import PerFieldTokenizer, RankMixerBlock, SliceTokenizer
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model

TOKENIZERS = ("field", "slice")
HEADS = ("flatten_mlp", "mean_pool")


@dataclass
class RankMixerConfig(ModelConfig):
    num_layers: int = 3  # L
    tokenizer: str = "field"
    num_tokens: int | None = None  # T; "slice" only ("field": T = F)
    token_dim: int | None = None  # D; "field": None = embedding width rounded up to a multiple of F
    expansion: int = 2  # k
    head: str = "flatten_mlp"
    hidden_units: tuple[int, ...] = (1024, 512, 256)


@register_model(
    "rankmixer",
    presets={
        "default": RankMixerConfig(),
        "small": RankMixerConfig(
            embedding_dim=8, num_layers=2, tokenizer="slice", num_tokens=8, token_dim=16, expansion=2,
            hidden_units=(128, 64),
        ),
        "mean_pool": RankMixerConfig(
            tokenizer="slice", num_tokens=16, token_dim=64, expansion=4, head="mean_pool", hidden_units=()
        ),
    },
)
class RankMixer(CTRModel):
    config_class = RankMixerConfig

    def __init__(self, spec, config: RankMixerConfig) -> None:
        super().__init__(spec, config)
        num_tokens, token_dim = self._token_shape(config)
        self.num_tokens, self.token_dim = num_tokens, token_dim
        if config.tokenizer == "field":
            self.tokenizer = PerFieldTokenizer(self.num_fields, config.embedding_dim, token_dim)
        else:
            self.tokenizer = SliceTokenizer(self.num_fields, config.embedding_dim, num_tokens, token_dim)
        self.blocks = nn.Sequential(
            *(
                RankMixerBlock(
                    num_tokens, token_dim, config.expansion, dropout=config.dropout, batch_norm=config.batch_norm
                )
                for _ in range(config.num_layers)
            )
        )
        self.flatten = config.head == "flatten_mlp"
        head_dim = num_tokens * token_dim if self.flatten else token_dim
        self.head = MLP(
            head_dim, config.hidden_units, output_dim=1, dropout=config.dropout, batch_norm=config.batch_norm
        )

    def _token_shape(self, config: RankMixerConfig) -> tuple[int, int]:
        """(T, D) after checking the settings against each other and the field count."""
        if config.tokenizer not in TOKENIZERS:
            raise ConfigError(f"rankmixer: tokenizer must be one of {TOKENIZERS}, got {config.tokenizer!r}")
        if config.head not in HEADS:
            raise ConfigError(f"rankmixer: head must be one of {HEADS}, got {config.head!r}")
        for key in ("num_layers", "expansion"):
            if getattr(config, key) < 1:
                raise ConfigError(f"rankmixer: {key} must be >= 1, got {getattr(config, key)}")
        if config.tokenizer == "field":
            if config.num_tokens is not None:
                raise ConfigError(
                    f"rankmixer: tokenizer='field' makes one token per field (T = {self.num_fields}); "
                    f"leave num_tokens null, got {config.num_tokens}"
                )
            num_tokens = self.num_fields
            token_dim = config.token_dim
            if token_dim is None:
                token_dim = -(-config.embedding_dim // num_tokens) * num_tokens  # round up to a multiple of F
        else:
            if config.num_tokens is None or config.token_dim is None:
                raise ConfigError("rankmixer: tokenizer='slice' needs num_tokens and token_dim")
            num_tokens, token_dim = config.num_tokens, config.token_dim
        if num_tokens < 1 or token_dim < 1:
            raise ConfigError(f"rankmixer: num_tokens and token_dim must be >= 1, got {num_tokens}, {token_dim}")
        if token_dim % num_tokens:
            raise ConfigError(
                f"rankmixer: token_dim={token_dim} must be divisible by num_tokens={num_tokens} "
                "(token mixing splits every token into num_tokens heads)"
            )
        return num_tokens, token_dim

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.tokenizer(e))  # (B, F, d) -> (B, T, D)
        pooled = tokens.flatten(1) if self.flatten else tokens.mean(dim=1)  # (B, T·D) or (B, D)
        return self.head(pooled).squeeze(-1)  # (B,)
