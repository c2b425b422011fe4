"""FinalMLP — Mao et al., "FinalMLP: An Enhanced Two-Stream MLP Model for CTR Prediction",
AAAI 2023.

Two MLP streams see differently gated views of ``e = [e_1; ...; e_F]``:
``h_s = MLP_s(g_s ⊙ e)`` with ``g_s = 2·sigmoid(GateMLP_s(c_s))`` where ``c_s`` concatenates
the embeddings of stream s's context fields (``fs1_context`` / ``fs2_context``, by field
name) or, when the context is empty, is a learned constant vector of width D (as in FuxiCTR,
the FinalMLP authors' library), which makes that gate the same for every row. The gate MLPs have
ReLU hidden layers and no dropout or batch norm. The streams are fused by multi-head
bilinear fusion: ``logit = b + w_1^T h_1 + w_2^T h_2 + sum_h h_{1,h}^T W_h h_{2,h}``.

``use_fs=False`` drops the gates (``h_s = MLP_s(e)``), which is what the official TTS4CTR
code runs; the streams then differ only by their initialisation.

Presets: ``default`` — embedding 16, both streams MLP (1024, 512, 256) as in the paper's
reference code, gates on (as in the FinalMLP paper) with one hidden layer of 800 (FuxiCTR's
tuned FinalMLP configs use 400–1000), 1 fusion head as in the reference code; ``small`` —
embedding 8, streams (128, 64), gates (64,), 1 head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ttsctr.errors import ConfigError
from ttsctr.layers.bilinear_fusion import MultiHeadBilinearFusion
from ttsctr.layers.feature_selection import FeatureSelectionGate
from ttsctr.layers.mlp import MLP
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model


@dataclass
class FinalMLPConfig(ModelConfig):
    mlp1_hidden_units: tuple[int, ...] = (1024, 512, 256)
    mlp2_hidden_units: tuple[int, ...] = (1024, 512, 256)
    use_fs: bool = True
    fs_hidden_units: tuple[int, ...] = (800,)
    fs1_context: tuple[str, ...] = ()
    fs2_context: tuple[str, ...] = ()
    num_heads: int = 1


@register_model(
    "finalmlp",
    presets={
        "default": FinalMLPConfig(),
        "small": FinalMLPConfig(
            embedding_dim=8, mlp1_hidden_units=(128, 64), mlp2_hidden_units=(128, 64), fs_hidden_units=(64,)
        ),
    },
)
class FinalMLP(CTRModel):
    config_class = FinalMLPConfig

    def __init__(self, spec, config: FinalMLPConfig) -> None:
        super().__init__(spec, config)
        flat_dim = self.num_fields * config.embedding_dim
        mlp_options = dict(dropout=config.dropout, batch_norm=config.batch_norm)
        if config.use_fs:
            self.gate1 = FeatureSelectionGate(
                self.num_fields,
                config.embedding_dim,
                self._field_indices(config.fs1_context, "fs1_context"),
                config.fs_hidden_units,
            )
            self.gate2 = FeatureSelectionGate(
                self.num_fields,
                config.embedding_dim,
                self._field_indices(config.fs2_context, "fs2_context"),
                config.fs_hidden_units,
            )
        else:
            if config.fs1_context or config.fs2_context:
                raise ConfigError("finalmlp: fs1_context / fs2_context are set but use_fs is false (no gates)")
            self.gate1 = self.gate2 = None
        self.mlp1 = MLP(flat_dim, config.mlp1_hidden_units, **mlp_options)
        self.mlp2 = MLP(flat_dim, config.mlp2_hidden_units, **mlp_options)
        heads = config.num_heads
        if heads < 1 or self.mlp1.output_dim % heads or self.mlp2.output_dim % heads:
            raise ConfigError(
                f"finalmlp: num_heads={heads} must be >= 1 and divide both stream widths "
                f"({self.mlp1.output_dim}, {self.mlp2.output_dim})"
            )
        self.fusion = MultiHeadBilinearFusion(self.mlp1.output_dim, self.mlp2.output_dim, heads)

    def _field_indices(self, names: tuple[str, ...], key: str) -> tuple[int, ...]:
        position = {name: i for i, name in enumerate(self.spec.field_names)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise ConfigError(f"finalmlp: {key} names unknown fields {unknown}; fields: {list(self.spec.field_names)}")
        return tuple(position[n] for n in names)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        if self.gate1 is None:
            x1 = x2 = e.flatten(1)  # (B, F·D)
        else:
            x1, x2 = self.gate1(e), self.gate2(e)  # (B, F·D) each
        h1 = self.mlp1(x1)  # (B, h1)
        h2 = self.mlp2(x2)  # (B, h2)
        return self.fusion(h1, h2)  # (B,)
