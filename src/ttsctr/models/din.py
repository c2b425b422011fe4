"""Hierarchical sequence baselines of EST's Table 3 (§6.1.3): DIN compression, then a
feature-interaction stack — ``din_dcnv2`` and ``din_rankmixer``.

* DIN — Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018
  (``ttsctr.layers.target_attention``);
* SimTier — Sheng et al., "Enhancing Taobao Display Advertising with Multimodal
  Representations: Challenges, Approaches and Insights", CIKM 2024, the EST paper's [30]
  (``ttsctr.layers.simtier``);
* DCN-V2 — Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for
  Web-scale Learning to Rank Systems", WWW 2021 (``ttsctr.models.dcnv2``);
* RankMixer — Zhu et al., "RankMixer: Scaling Up Ranking Models in Industrial
  Recommenders", arXiv 2507.15551, 2025 (``ttsctr.models.rankmixer``).

The EST paper (§6.1.3–6.1.4): "For the Base model, Traditional DNN models, and Scalable
Hierarchical Modeling paradigm, we adopt DIN modules to compress behavior sequences", and "All
baselines adopt SimTier ... included in the non-behavioral token sequence N". Per row:

    N        = field embeddings of the F_N context fields            (B, F_N, D)
    B_γ      = E_γ[item] + m W_γ  (γ ∈ {u, c}, EST's BehaviourTokenizer, zero at padding)
    q_γ      = n_cand + m_cand W_γ                                   (B, D)
    d_γ      = TargetAttention_γ(q_γ, B_γ, mask_γ)                    (B, D)
    s        = SimTier(m_cand, M_u, mask_u)                           (B, D)
    X        = [N; d_u; d_c; s]                                       (B, F_N + 3, D)
    logit    = Interaction(X)   (DCNv2 / RankMixer ``forward_embedded``)   (B,)

with ``n_cand`` the candidate field's N token and ``m`` the frozen, L2-normalised content
vectors. The query is built like a behaviour token — id part plus the same sequence's content
projection W_γ — so that query and keys share the content part of their space (DIN embeds the
candidate and the behaviours with one item table; here, as in EST, every sequence has its own
item-id table, so the id part comes from the shared field table instead). Each sequence has its
own activation unit. The SimTier token reads B_u only.

The interaction stack is the registered backbone's class itself: a ``DCNv2`` / ``RankMixer``
built over F_N + 3 pseudo-fields (``interaction_stack``) whose ``forward_embedded`` consumes
X; its unused embedding table is dropped. So cross layers, token mixing, tokenisers, heads and
their config checks are those of ``dcnv2.py`` / ``rankmixer.py``.

``embed`` / ``forward_embedded``: ``embed`` is ``SequenceCTRModel``'s packed output (tokens,
padding flags, content; the candidate field's row carries the candidate's content), so the
training-free variants perturb the N tokens and the behaviour tokens before compression;
``forward_embedded`` does the rest from ``e`` alone.

Presets (widths as EST's presets: token width 128 / 16; the paper gives the scalable baselines
EST's 6 layers and width 128; the rest is ours): ``din_dcnv2`` — ``default``: D = 128,
3 full-rank cross layers, parallel MLP (1024, 512, 256), activation unit (80, 40) as in the
official DIN code; ``small``: D = 16, 2 cross layers, MLP (128, 64), unit (32, 16).
``din_rankmixer`` — one RankMixer token per token of X (``tokenizer="field"``, T = F_N + 3;
token width = D rounded up to a multiple of T, with RankMixer's per-field projection when that
differs from D), flatten + MLP head; ``default``: D = 128, 6 layers, expansion 4, MLP
(1024, 512, 256), unit (80, 40); ``small``: D = 16, 2 layers, expansion 2, MLP (128, 64),
unit (32, 16). SimTier: 10 tiers (ours).

Registered as ``din_dcnv2`` and ``din_rankmixer`` (``inputs="sequence"``): built from a
``ttsctr.features.SequenceFeatureSpec`` (global ids in, like ``est``); the raw classes
``DINDCNv2`` / ``DINRankMixer`` take a ``FeatureSpec`` of the context fields and a
``SequenceLayout`` with a ``candidate_index``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from ttsctr.features import FeatureSpec
from ttsctr.layers.target_attention import TargetAttention
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.dcnv2 import DCNv2, DCNv2Config
from ttsctr.models.est import BehaviourTokenizer, SequenceCTRModel, SequenceLayout, _SpecIds
from ttsctr.models.rankmixer import RankMixer, RankMixerConfig
from ttsctr.models.registry import register_model


@dataclass
class DINSettings:
    """The compression side shared by the DIN baselines (mixed into their configs)."""

    attention_units: tuple[int, ...] = (80, 40)  # hidden widths of DIN's activation unit
    n_tiers: int = 10  # SimTier bins over [-1, 1]
    content_tokens: bool = True  # behaviour tokens (and queries) add a projection of the content


@dataclass
class DINDCNv2Config(DCNv2Config, DINSettings):
    """DCN-V2's settings (cross layers, MLP, structure, rank) plus ``DINSettings``."""


@dataclass
class DINRankMixerConfig(RankMixerConfig, DINSettings):
    """RankMixer's settings (layers, tokenizer, token width, expansion, head) plus ``DINSettings``."""


DIN_DCNV2_PRESETS: dict[str, DINDCNv2Config] = {
    "default": DINDCNv2Config(embedding_dim=128),
    "small": DINDCNv2Config(embedding_dim=16, cross_layers=2, hidden_units=(128, 64), attention_units=(32, 16)),
}
DIN_RANKMIXER_PRESETS: dict[str, DINRankMixerConfig] = {
    "default": DINRankMixerConfig(embedding_dim=128, num_layers=6, expansion=4),
    "small": DINRankMixerConfig(
        embedding_dim=16, num_layers=2, expansion=2, hidden_units=(128, 64), attention_units=(32, 16)
    ),
}


def interaction_stack(model_class: type[CTRModel], num_tokens: int, config: ModelConfig) -> CTRModel:
    """A ``model_class`` backbone (``DCNv2``, ``RankMixer``) over ``num_tokens`` tokens of width
    ``config.embedding_dim``, to be called through ``forward_embedded`` only: (B, T, D) -> (B,).

    Built from the fields of its own config class taken from ``config`` and a pseudo feature spec
    of ``num_tokens`` one-id fields; that spec's embedding table is dropped (the tokens come
    from the caller), so it adds no parameters.
    """
    inner_class = model_class.config_class
    inner = inner_class(**{f.name: getattr(config, f.name) for f in dataclasses.fields(inner_class)})
    spec = FeatureSpec(tuple(f"token_{i}" for i in range(num_tokens)), (1,) * num_tokens)
    model = model_class(spec, inner)
    del model.embedding
    return model


class DINHierarchical(SequenceCTRModel):
    """DIN + SimTier compression, then ``interaction_class`` on [N; d_u; d_c; s] (module docstring).

    ``DINHierarchical(spec, config, layout)`` (the layout needs ``candidate_index``);
    ``forward(x)``: (B, F_N + L + K) long -> (B,) logits.
    """

    interaction_class: ClassVar[type[CTRModel]]

    def __init__(self, spec: FeatureSpec, config: ModelConfig, layout: SequenceLayout) -> None:
        super().__init__(spec, config, layout)
        self.use_simtier(config.n_tiers)  # also refuses a layout without the candidate's field
        self.user_attention = TargetAttention(config.embedding_dim, config.attention_units)
        self.candidate_attention = TargetAttention(config.embedding_dim, config.attention_units)
        self.num_tokens = spec.num_fields + 3  # [N; d_u; d_c; s]
        self.interaction = interaction_stack(self.interaction_class, self.num_tokens, config)

    @staticmethod
    def query(tokenizer: BehaviourTokenizer, target: torch.Tensor, target_content: torch.Tensor) -> torch.Tensor:
        """``q_γ = n_cand + m_cand W_γ`` (no content term without content tokens). (B, D), (B, d_c) -> (B, D)."""
        if tokenizer.content is None:
            return target
        return target + tokenizer.content(target_content)  # (B, D)

    def compress(self, e: torch.Tensor) -> torch.Tensor:
        """The stacked tokens X = [N; d_u; d_c; s] (B, F_N + 3, D) of a packed ``e``."""
        n, b, mask, content = self.unpack(e)  # (B, F_N, D), (B, L+K, D), (B, L+K), (B, L+K, d_c)
        u = self.layout.user_len
        target = n[:, self.layout.candidate_index]  # (B, D)
        target_content = self.candidate_content(e)  # (B, d_c)
        parts = (
            (self.user_tokenizer, self.user_attention, slice(None, u)),
            (self.candidate_tokenizer, self.candidate_attention, slice(u, None)),
        )
        pooled = [
            attention(self.query(tokenizer, target, target_content), b[:, part], mask[:, part])  # (B, D)
            for tokenizer, attention, part in parts
        ]
        simtier = self.simtier_token(e, mask, content)  # (B, D)
        return torch.cat([n, torch.stack([*pooled, simtier], dim=1)], dim=1)  # (B, F_N + 3, D)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self.interaction.forward_embedded(self.compress(e))  # (B,)


class DINDCNv2(DINHierarchical):
    """DIN + SimTier, then DCN-V2 (cross network ∥ MLP) on the flattened (B, (F_N + 3)·D) tokens."""

    config_class = DINDCNv2Config
    interaction_class = DCNv2


class DINRankMixer(DINHierarchical):
    """DIN + SimTier, then RankMixer blocks on the F_N + 3 tokens and its head."""

    config_class = DINRankMixerConfig
    interaction_class = RankMixer


@register_model("din_dcnv2", presets=DIN_DCNV2_PRESETS, inputs="sequence")
class DINDCNv2Backbone(_SpecIds, DINDCNv2):
    """``din_dcnv2`` from a ``SequenceFeatureSpec``: global ids in, (B,) logits out."""


@register_model("din_rankmixer", presets=DIN_RANKMIXER_PRESETS, inputs="sequence")
class DINRankMixerBackbone(_SpecIds, DINRankMixer):
    """``din_rankmixer`` from a ``SequenceFeatureSpec``: global ids in, (B,) logits out."""

