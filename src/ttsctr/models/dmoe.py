"""D-MoE — Wang et al., "Enhancing CTR Prediction with De-correlated Expert Networks",
arXiv 2505.17925, 2025: Multi-Embed experts trained with a de-correlation regulariser.

The architecture is :class:`~ttsctr.models.multi_embed.MultiEmbed`'s (TTS paper Eq. 5–7:
one table and one interaction expert per m, averaged hidden outputs, one linear head); the
training loss adds (Eq. 8)::

    L = L_pred + λ · L_reg({h^(m)}),   L_reg = decorrelation_loss(h^(1), …, h^(M))

on the experts' hidden outputs h^(m) (B, H) after their projections to the common width
(:func:`ttsctr.layers.decorrelation.decorrelation_loss`: the mean squared cross-correlation
between the units of every pair of experts over the batch). The experts are averaged
(Eq. 7); no softmax gate.

``decorrelation_weight`` (λ, default 0.01): with one expert L_reg is 0; two identical
experts with uncorrelated units cost 1/H and at most 1 (see ``decorrelation_loss``), so λ
= 0.01 keeps the term well under a CTR BCE (≈ 0.4) while its gradient still pushes the
experts apart. λ = 0 trains on the BCE alone (``auxiliary_loss()`` is then None).

The forward pass in train mode stores ``λ · L_reg`` of that batch; :meth:`DMoE.auxiliary_loss`
returns it (the last forward's only, never accumulated) and the trainer adds it to the
BCE. In eval mode nothing is computed and ``auxiliary_loss()`` is None.

Presets: ``default`` — W×2 with Wukong's ``default`` preset; ``small`` — W×2 with Wukong's
``small`` preset; both λ = 0.01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ttsctr.errors import ConfigError
from ttsctr.layers.decorrelation import decorrelation_loss
from ttsctr.models.multi_embed import MultiEmbed, MultiEmbedConfig
from ttsctr.models.registry import register_model


@dataclass
class DMoEConfig(MultiEmbedConfig):
    decorrelation_weight: float = 0.01  # λ of Eq. 8


@register_model(
    "dmoe",
    presets={
        "default": DMoEConfig(experts=("wukong", "wukong"), expert_preset="default"),
        "small": DMoEConfig(experts=("wukong", "wukong"), expert_preset="small"),
    },
)
class DMoE(MultiEmbed):
    """Multi-Embed plus the weighted de-correlation term of the last train-mode forward (Eq. 8)."""

    config_class = DMoEConfig
    model_name = "dmoe"

    def __init__(self, spec, config: DMoEConfig) -> None:
        weight = getattr(config, "decorrelation_weight", None)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"dmoe: decorrelation_weight (λ) must be a finite number >= 0, got {weight!r}")
        super().__init__(spec, config)
        self.decorrelation_weight = float(weight)
        self._auxiliary: torch.Tensor | None = None

    def predict_from_experts(self, hs: list[torch.Tensor]) -> torch.Tensor:
        if self.training and self.decorrelation_weight > 0:
            self._auxiliary = self.decorrelation_weight * decorrelation_loss(hs)  # scalar, this batch only
        else:
            self._auxiliary = None
        return super().predict_from_experts(hs)  # (B,)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """``λ · L_reg`` of the last forward pass if it ran in train mode and the model is still
        in train mode; None in eval mode, before any forward, or with λ = 0."""
        return self._auxiliary if self.training else None

    def __getstate__(self) -> dict[str, Any]:
        # The stored term is a non-leaf tensor (part of a graph): it cannot be deep-copied or
        # pickled, and belongs to one training step only.
        state = self.__dict__.copy()
        state["_auxiliary"] = None
        return state
