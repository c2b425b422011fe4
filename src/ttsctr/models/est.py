"""EST — Liu, Bai, Chan, Chen et al., "EST: Towards Efficient Scaling Laws in Click-Through
Rate Prediction via Unified Modeling" (Taobao & Tmall Group of Alibaba), and a mean-pooling
baseline on the same inputs.

Input convention (``SequenceLayout``): one LongTensor ``x`` of shape (B, F_N + L + K):

* ``x[:, :F_N]`` — global categorical ids of the non-behavioural fields N, in the
  ``FeatureSpec`` id space (``spec.num_features`` rows of the shared embedding table, as
  every other backbone); F_N = ``spec.num_fields``;
* ``x[:, F_N:F_N+L]`` — the user-behaviour sequence B_u as item indices in [0, n_items],
  0 = padding (left-padded);
* ``x[:, F_N+L:]`` — the candidate-specific sequence B_c (e.g. a GSU search result), same
  item index space, 0 = padding.

A frozen content matrix ``layout.content`` (n_items + 1, d_c) — row 0 zeros, rows
L2-normalised — gives the pre-trained content vector of every item. It is held as a
non-persistent buffer (it comes with the data, not with a checkpoint).

Tokenizers (§5.2): N tokens are the field embeddings (one token of width D per field, the
shared table; no per-field MLP since widths agree). Each behaviour sequence has its own
tokenizer: an item-id table (n_items + 1 rows, row 0 zero) plus, when
``content_tokens`` (default), a bias-free projection of the frozen content vector,
``b_i = E_γ[item_i] + m_i W_γ`` (zero at padding).

EST layer s (§5.1), pre-norm residual throughout:

    N <- N + LCA(LN(N), LN(B))                 B = [B_u; B_c], padding keys masked
    B_γ <- B_γ + G_γ LN(B_γ)                   CSA, γ ∈ {u, c}, G_γ top-K content sims
    N <- N + PerTokenFFN(LN(N));  B <- B + SharedFFN(LN(B))

LCA and CSA both read the previous layer's tokens (they run in parallel in the paper). After
S layers (and a final LayerNorm on N and on B): ``logit = MLP([flatten(N); MaskedMean(B)])``.

Variants (``attention``): ``"est"`` (LCA + CSA), ``"lca_only"`` (no CSA: B changes only
through its FFN), ``"full"`` (the Full-Attention ablation, Table 4: one multi-head
self-attention over [B; N] with shared weights replaces LCA and CSA; same FFNs).

SimTier token (optional, ``simtier=True``; off in every preset): the similarity histogram of
Sheng et al. (CIKM 2024, the paper's [30]; ``ttsctr.layers.simtier``) between the candidate's
content vector and B_u's, projected to one token. All of the paper's baselines carry it in N
(§6.1.3); here EST takes it as one more N token (F_N + 1 query tokens, with its own
token-specific LCA and FFN weights) and MeanPoolMLP concatenates it to its MLP input. It
needs the layout's ``candidate_index`` (the context field holding the candidate item, whose
local code is the item index — ``SequenceFeatureSpec.candidate_field``).

``embed`` / ``forward_embedded`` (the ``CTRModel`` split): ``embed(x)`` returns the packed
tensor (B, F_N + L + K, D + 1 + d_c): columns ``[:D]`` the tokens [N; B_u; B_c], column
``D`` a 1/0 flag (1 for N tokens and real behaviours, 0 for padding), columns ``D+1:`` the
normalised content vectors (zero for padding and for N tokens, except that the candidate
field's row carries the candidate item's content when the layout has a ``candidate_index``).
``forward_embedded`` reads masks, CSA weights and the SimTier histogram from the extra
columns, so it needs nothing but ``e``; a variant that zeroes a sequence position's row turns
it into padding. ``self.embedding_dim`` is that packed width (as DeepFM's is D + 1); the token
width is ``self.token_dim``. Variants that perturb embedding coordinates should touch only
``[..., :D]``.

FLOPs: the registered backbones are measured by ``ttsctr.flops.model_cost`` like every model
(their spec's slots are fields); ``est_cost(model)`` does the same for a raw ``EST`` on a valid
batch (``random_sequence_batch``) or on a batch you pass. CSA is applied as a dense
matmul on its sparse-as-dense weights, so it counts 2·L²·D per layer and sequence (plus
2·L²·d_c once for G = M Mᵀ), not the 2·L·K·D of the gather form.

Presets: ``default`` — the paper's §6.1.4 shape: S = 6 layers, token width 128; the rest is
ours (not given in the paper): 4 heads, FFN expansion 4, MLP (1024, 512, 256). ``small`` —
width 16, 2 layers, 2 heads, expansion 2, MLP (128, 64), for CPU runs. ``MEAN_POOL_PRESETS``
give ``MeanPoolMLP`` the same widths and MLPs.

Registered as ``est`` and ``seq_mean_pool`` (``inputs="sequence"``): ``ESTBackbone`` and
``MeanPoolBackbone`` are built from a ``ttsctr.features.SequenceFeatureSpec`` and take its global
ids, turning the slot ids into item indices; the raw classes take a ``SequenceLayout``. The
hierarchical DIN baselines (``ttsctr.models.din``) share ``SequenceCTRModel`` and ``_SpecIds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec, SequenceFeatureSpec
from ttsctr.flops import ModelCost, model_cost, random_ids
from ttsctr.layers.mlp import MLP
from ttsctr.layers.sequence_attention import (
    ContentSparseAttention,
    FullSelfAttention,
    LightweightCrossAttention,
    PerTokenFFN,
    SharedFFN,
    csa_weights,
)
from ttsctr.layers.simtier import SimTier
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import register_model

ATTENTIONS = ("est", "full", "lca_only")


@dataclass(frozen=True)
class SequenceLayout:
    """Where N, B_u and B_c sit in a row of ``x``, and the frozen item content.

    ``content``: (n_items + 1, d_c) float, row 0 (padding) zero, rows L2-normalised (the
    model normalises again, which leaves such rows unchanged). Excluded from ``==``/repr.
    """

    num_fields: int  # F_N
    user_len: int  # L
    candidate_len: int  # K
    n_items: int
    content: torch.Tensor = field(repr=False, compare=False)
    # Column (< F_N) of the field holding the candidate item, whose local code is the item
    # index (vocabulary n_items + 1); None when unknown (then no SimTier token, no DIN query).
    candidate_index: int | None = None

    def __post_init__(self) -> None:
        for key in ("num_fields", "user_len", "candidate_len", "n_items"):
            if getattr(self, key) < 1:
                raise ConfigError(f"SequenceLayout: {key} must be >= 1, got {getattr(self, key)}")
        if self.candidate_index is not None and not 0 <= self.candidate_index < self.num_fields:
            raise ConfigError(f"SequenceLayout: candidate_index must be a context column in [0, {self.num_fields}), "
                              f"got {self.candidate_index}")
        content = self.content
        if not isinstance(content, torch.Tensor) or content.dim() != 2 or content.shape[0] != self.n_items + 1:
            shape = tuple(content.shape) if isinstance(content, torch.Tensor) else type(content).__name__
            raise ConfigError(
                f"SequenceLayout: content must be a (n_items + 1, d_c) = ({self.n_items + 1}, d_c) tensor, got {shape}"
            )
        if not content.is_floating_point():
            raise ConfigError(f"SequenceLayout: content must be float, got {content.dtype}")
        if bool(content[0].abs().sum() != 0):
            raise ConfigError("SequenceLayout: content row 0 (padding) must be zero")

    @property
    def content_dim(self) -> int:
        return self.content.shape[1]

    @property
    def num_columns(self) -> int:
        return self.num_fields + self.user_len + self.candidate_len

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(field ids (B, F_N), user items (B, L), candidate items (B, K)) of a (B, F_N+L+K) batch."""
        f, u = self.num_fields, self.user_len
        return x[:, :f], x[:, f : f + u], x[:, f + u :]


def random_sequence_batch(spec: FeatureSpec, layout: SequenceLayout, batch_size: int, seed: int = 0) -> torch.Tensor:
    """(batch_size, F_N + L + K) valid ids: fields from ``random_ids``; each sequence gets a
    uniform history length in [0, len] (left-padded) of uniform items in [1, n_items]."""
    generator = torch.Generator().manual_seed(seed)
    parts = [random_ids(spec, batch_size, seed)]
    for length in (layout.user_len, layout.candidate_len):
        items = torch.randint(1, layout.n_items + 1, (batch_size, length), generator=generator)
        lengths = torch.randint(0, length + 1, (batch_size, 1), generator=generator)
        real = torch.arange(length)[None, :] >= length - lengths  # left padding
        parts.append(items * real)
    return torch.cat(parts, dim=1)


@dataclass
class ESTConfig(ModelConfig):
    num_layers: int = 6  # S
    num_heads: int = 4
    csa_top_k: int = 5  # K of CSA (the paper fixes 5)
    csa_normalize: bool = False  # row-normalise CSA weights (not in the paper)
    ffn_expansion: int = 4
    hidden_units: tuple[int, ...] = (1024, 512, 256)
    attention: str = "est"  # "est" | "full" | "lca_only"
    content_tokens: bool = True  # add a projection of the content vector to behaviour tokens
    simtier: bool = False  # one more N token: the SimTier histogram of B_u (module docstring)
    n_tiers: int = 10  # SimTier bins over [-1, 1] (ours; the paper does not give it)


@dataclass
class MeanPoolMLPConfig(ModelConfig):
    hidden_units: tuple[int, ...] = (1024, 512, 256)
    content_tokens: bool = True
    simtier: bool = False  # concatenate the SimTier token of B_u to the MLP input
    n_tiers: int = 10


PRESETS: dict[str, ESTConfig] = {
    "default": ESTConfig(embedding_dim=128),
    "small": ESTConfig(embedding_dim=16, num_layers=2, num_heads=2, ffn_expansion=2, hidden_units=(128, 64)),
}
MEAN_POOL_PRESETS: dict[str, MeanPoolMLPConfig] = {
    "default": MeanPoolMLPConfig(embedding_dim=128),
    "small": MeanPoolMLPConfig(embedding_dim=16, hidden_units=(128, 64)),
}


class BehaviourTokenizer(nn.Module):
    """Sequence-specific tokenizer: ``b_i = E[item_i] + m_i W`` (``W`` only with content tokens).

    ``E`` has n_items + 1 rows, N(0, σ²) except the zero padding row 0; ``W`` (d_c × D) has no
    bias. Padded positions come out exactly zero. Input items (B, L) long, content (B, L, d_c),
    mask (B, L) bool -> output (B, L, D).
    """

    def __init__(self, n_items: int, content_dim: int, dim: int, init_std: float, *, content_tokens: bool) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        with torch.no_grad():
            nn.init.normal_(self.items.weight, std=init_std)
            self.items.weight[0].zero_()
        self.content = nn.Linear(content_dim, dim, bias=False) if content_tokens else None

    def forward(self, items: torch.Tensor, content: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tokens = self.items(items)  # (B, L, D)
        if self.content is not None:
            tokens = tokens + self.content(content)
        return tokens * mask[:, :, None].to(tokens.dtype)  # (B, L, D)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real positions; zeros for a row with none. (B, L, D), (B, L) -> (B, D)."""
    weight = mask.to(tokens.dtype)[:, :, None]  # (B, L, 1)
    return (tokens * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)


class SequenceCTRModel(CTRModel):
    """Shared input side of the sequence backbones (EST, MeanPoolMLP, the DIN baselines of
    ``ttsctr.models.din``): layout checks, tokenizers, packing (see module docstring for the
    packed ``embed`` output) and the optional SimTier token (``use_simtier``)."""

    def __init__(self, spec: FeatureSpec, config: ModelConfig, layout: SequenceLayout) -> None:
        super().__init__(spec, config)
        if not isinstance(layout, SequenceLayout):
            raise ConfigError(f"{type(self).__name__}: layout must be a SequenceLayout, got {type(layout).__name__}")
        if layout.num_fields != spec.num_fields:
            raise ConfigError(
                f"{type(self).__name__}: layout has {layout.num_fields} non-behavioural fields but the feature spec "
                f"has {spec.num_fields}"
            )
        self.layout = layout
        self.candidate_offset: int | None = None  # global id of the candidate field's code 0
        if layout.candidate_index is not None:
            ci = layout.candidate_index
            if spec.vocab_sizes[ci] != layout.n_items + 1:
                raise ConfigError(
                    f"{type(self).__name__}: candidate field {spec.field_names[ci]!r} has {spec.vocab_sizes[ci]} "
                    f"codes; expected n_items + 1 = {layout.n_items + 1} (its code is the item index)"
                )
            self.candidate_offset = spec.offsets[ci]
        self.token_dim = config.embedding_dim  # D
        self.embedding_dim = config.embedding_dim + 1 + layout.content_dim  # packed width of embed()
        self.register_buffer("content", nn.functional.normalize(layout.content.float(), dim=-1), persistent=False)
        tokenizer_args = (layout.n_items, layout.content_dim, config.embedding_dim, config.embedding_init_std)
        content_tokens = getattr(config, "content_tokens", True)
        self.user_tokenizer = BehaviourTokenizer(*tokenizer_args, content_tokens=content_tokens)
        self.candidate_tokenizer = BehaviourTokenizer(*tokenizer_args, content_tokens=content_tokens)
        self.simtier: SimTier | None = None  # set by use_simtier()

    def use_simtier(self, n_tiers: int) -> None:
        """Add the SimTier token (``simtier_token``); needs the layout's ``candidate_index``."""
        if self.layout.candidate_index is None:
            raise ConfigError(f"{type(self).__name__}: the SimTier token needs the candidate item's field "
                              "(SequenceLayout.candidate_index / SequenceFeatureSpec.candidate_field)")
        self.simtier = SimTier(n_tiers, self.token_dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        layout = self.layout
        if x.dim() != 2 or x.shape[1] != layout.num_columns:
            raise ConfigError(
                f"{type(self).__name__}: input has shape {tuple(x.shape)}; expected (batch, {layout.num_columns}) = "
                f"{layout.num_fields} fields + {layout.user_len} user items + {layout.candidate_len} candidate items"
            )
        fields, user, candidate = layout.split(x)
        items_all = x[:, layout.num_fields:]
        out_of_range = ((items_all < 0) | (items_all > layout.n_items)).any()
        target = None  # (B,) the candidate item's index, when the layout knows its field
        if self.candidate_offset is not None:
            target = fields[:, layout.candidate_index] - self.candidate_offset
            out_of_range = out_of_range | ((target < 0) | (target > layout.n_items)).any()
        bad = bool(out_of_range)
        named = (("user", user), ("candidate", candidate), ("candidate field", target))
        for name, items in named if bad else ():  # one sync per batch
            if items is not None and items.numel() and (int(items.min()) < 0 or int(items.max()) > layout.n_items):
                raise DataFormatError(
                    None, found=f"{name} item index {int(items.min())}..{int(items.max())}",
                    expected=f"item indices in [0, {layout.n_items}] (0 = padding)",
                )
        n = self.embedding(fields)  # (B, F_N, D)
        n_content = None
        if target is not None:  # the candidate's content in its field's row, zeros elsewhere
            n_content = n.new_zeros(*n.shape[:2], layout.content_dim)  # (B, F_N, d_c)
            n_content[:, layout.candidate_index] = self.content[target].to(n.dtype)
        packed = [self._pack(n, torch.ones_like(fields, dtype=torch.bool), n_content)]
        for items, tokenizer in ((user, self.user_tokenizer), (candidate, self.candidate_tokenizer)):
            mask = items != 0  # (B, L)
            content = self.content[items]  # (B, L, d_c), zero at padding
            packed.append(self._pack(tokenizer(items, content, mask), mask, content))
        return torch.cat(packed, dim=1)  # (B, F_N + L + K, D + 1 + d_c)

    def _pack(self, tokens: torch.Tensor, mask: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        if content is None:
            content = tokens.new_zeros(*tokens.shape[:2], self.layout.content_dim)
        return torch.cat([tokens, mask[:, :, None].to(tokens.dtype), content.to(tokens.dtype)], dim=-1)

    def unpack(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N (B, F_N, D), B (B, L+K, D), mask (B, L+K) bool, content (B, L+K, d_c)) of a packed ``e``."""
        layout, d = self.layout, self.token_dim
        if e.dim() != 3 or e.shape[1:] != (layout.num_columns, self.embedding_dim):
            raise ConfigError(
                f"{type(self).__name__}.forward_embedded: expected (batch, {layout.num_columns}, {self.embedding_dim}) "
                f"as embed() packs it, got {tuple(e.shape)}"
            )
        f = layout.num_fields
        behaviour = e[:, f:]
        return e[:, :f, :d], behaviour[..., :d], behaviour[..., d] > 0.5, behaviour[..., d + 1 :]

    def candidate_content(self, e: torch.Tensor) -> torch.Tensor:
        """The candidate item's normalised content vector (B, d_c) of a packed ``e``."""
        if self.layout.candidate_index is None:
            raise ConfigError(f"{type(self).__name__}: the layout has no candidate_index")
        return e[:, self.layout.candidate_index, self.token_dim + 1 :]  # (B, d_c)

    def simtier_token(self, e: torch.Tensor, mask: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """SimTier token (B, D) of B_u against the candidate; ``mask`` (B, L+K), ``content``
        (B, L+K, d_c) as ``unpack`` returns them."""
        if self.simtier is None:
            raise ConfigError(f"{type(self).__name__}: built without the SimTier token")
        u = self.layout.user_len
        return self.simtier(self.candidate_content(e), content[:, :u], mask[:, :u])  # (B, D)


class ESTLayer(nn.Module):
    """One EST block (module docstring): LCA ∥ CSA (or full self-attention), then the FFNs.

    Input n (B, F_N, D), b (B, L+K, D), mask (B, L+K), csa (G_u, G_c) or None ->
    (n, b) of the same shapes (``num_fields`` is the number of N tokens: F_N, or F_N + 1 with
    the SimTier token).
    """

    def __init__(self, num_fields: int, user_len: int, config: ESTConfig) -> None:
        super().__init__()
        dim = config.embedding_dim
        self.user_len = user_len
        self.attention = config.attention
        if config.attention == "full":
            self.self_attention = FullSelfAttention(dim, config.num_heads)
        else:
            self.cross_attention = LightweightCrossAttention(num_fields, dim, config.num_heads)
            if config.attention == "est":
                self.content_attention = ContentSparseAttention(dim)
        self.n_ffn_norm = nn.LayerNorm(dim)
        self.n_ffn = PerTokenFFN(num_fields, dim, config.ffn_expansion, dropout=config.dropout)
        self.b_ffn_norm = nn.LayerNorm(dim)
        self.b_ffn = SharedFFN(dim, config.ffn_expansion, dropout=config.dropout)

    def forward(
        self, n: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, csa: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attention == "full":
            x = torch.cat([b, n], dim=1)  # X = [B; N]: (B, L+K+F_N, D)
            x_mask = torch.cat([mask, mask.new_ones(n.shape[:2])], dim=1)
            x = self.self_attention(x, x_mask)
            b, n = x[:, : b.shape[1]], x[:, b.shape[1] :]
        else:
            n = self.cross_attention(n, b, mask)  # (B, F_N, D), from this layer's input B (in parallel with CSA)
            if csa is not None:
                b_u, b_c = b[:, : self.user_len], b[:, self.user_len :]
                b = torch.cat([self.content_attention(b_u, csa[0]), self.content_attention(b_c, csa[1])], dim=1)
        n = n + self.n_ffn(self.n_ffn_norm(n))  # (B, F_N, D)
        b = b + self.b_ffn(self.b_ffn_norm(b))  # (B, L+K, D)
        return n, b


class EST(SequenceCTRModel):
    """Efficiently Scalable Transformer (module docstring). ``EST(spec, config, layout)``;
    ``forward(x)``: (B, F_N + L + K) long -> (B,) logits."""

    config_class = ESTConfig

    def __init__(self, spec: FeatureSpec, config: ESTConfig, layout: SequenceLayout) -> None:
        super().__init__(spec, config, layout)
        self._check(config)
        if config.simtier:
            self.use_simtier(config.n_tiers)
        num_queries = spec.num_fields + int(config.simtier)  # N tokens: F_N (+ SimTier)
        self.layers = nn.ModuleList(
            ESTLayer(num_queries, layout.user_len, config) for _ in range(config.num_layers)
        )
        self.n_norm = nn.LayerNorm(config.embedding_dim)
        self.b_norm = nn.LayerNorm(config.embedding_dim)
        self.head = MLP(
            (num_queries + 1) * config.embedding_dim, config.hidden_units, output_dim=1,
            dropout=config.dropout, batch_norm=config.batch_norm,
        )

    @staticmethod
    def _check(config: ESTConfig) -> None:
        if config.attention not in ATTENTIONS:
            raise ConfigError(f"est: attention must be one of {ATTENTIONS}, got {config.attention!r}")
        for key in ("num_layers", "num_heads", "csa_top_k", "ffn_expansion"):
            if getattr(config, key) < 1:
                raise ConfigError(f"est: {key} must be >= 1, got {getattr(config, key)}")
        if config.embedding_dim % config.num_heads:
            raise ConfigError(
                f"est: embedding_dim={config.embedding_dim} must be divisible by num_heads={config.num_heads}"
            )

    def csa_weights(self, mask: torch.Tensor, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(G_u (B, L, L), G_c (B, K, K)) for the batch, or None when the variant has no CSA."""
        if self.config.attention != "est":
            return None
        u, k, normalize = self.layout.user_len, self.config.csa_top_k, self.config.csa_normalize
        return (
            csa_weights(content[:, :u], mask[:, :u], k, normalize=normalize),
            csa_weights(content[:, u:], mask[:, u:], k, normalize=normalize),
        )

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        n, b, mask, content = self.unpack(e)  # (B, F_N, D), (B, L+K, D), (B, L+K), (B, L+K, d_c)
        if self.simtier is not None:
            n = torch.cat([n, self.simtier_token(e, mask, content)[:, None]], dim=1)  # (B, F_N + 1, D)
        csa = self.csa_weights(mask, content)  # once per batch, shared by all layers
        for layer in self.layers:
            n, b = layer(n, b, mask, csa)
        pooled = masked_mean(self.b_norm(b), mask)  # (B, D)
        x = torch.cat([self.n_norm(n).flatten(1), pooled], dim=1)  # (B, (F_N + 1)·D)
        return self.head(x).squeeze(-1)  # (B,)


class MeanPoolMLP(SequenceCTRModel):
    """Baseline on the same inputs: ``logit = MLP([flatten(N); MaskedMean(B_u); MaskedMean(B_c)])``
    (``[...; SimTier]`` with ``simtier=True``) with the same tokenizers as EST and no interaction
    before the MLP (early aggregation).
    ``MeanPoolMLP(spec, config, layout)``; ``forward(x)``: (B, F_N + L + K) -> (B,)."""

    config_class = MeanPoolMLPConfig

    def __init__(self, spec: FeatureSpec, config: MeanPoolMLPConfig, layout: SequenceLayout) -> None:
        super().__init__(spec, config, layout)
        if config.simtier:
            self.use_simtier(config.n_tiers)
        self.head = MLP(
            (spec.num_fields + 2 + int(config.simtier)) * config.embedding_dim, config.hidden_units, output_dim=1,
            dropout=config.dropout, batch_norm=config.batch_norm,
        )

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        n, b, mask, content = self.unpack(e)
        u = self.layout.user_len
        pooled = [masked_mean(b[:, :u], mask[:, :u]), masked_mean(b[:, u:], mask[:, u:])]  # 2 × (B, D)
        if self.simtier is not None:
            pooled.append(self.simtier_token(e, mask, content))  # (B, D)
        return self.head(torch.cat([n.flatten(1), *pooled], dim=1)).squeeze(-1)  # (B,)


def est_cost(model: SequenceCTRModel, batch: torch.Tensor | None = None, *, batch_size: int = 16) -> ModelCost:
    """Parameters and measured forward FLOPs per row, as ``ttsctr.flops.model_cost`` measures
    them (FlopCounterMode, eval mode, no_grad, train flags restored) but on a valid sequence
    batch: ``batch`` if given, else ``random_sequence_batch(model.spec, model.layout, batch_size)``.
    Item-table parameters count as embedding parameters, the content buffer not at all."""
    if batch is None:
        if batch_size < 1:
            raise ConfigError(f"est_cost: batch_size must be >= 1, got {batch_size}")
        batch = random_sequence_batch(model.spec, model.layout, batch_size)
    return model_cost(model, batch=batch)


# ----------------------------------------------------------------------------- registry members


def layout_of(spec: SequenceFeatureSpec) -> SequenceLayout:
    """The model-side layout of a :class:`~ttsctr.features.SequenceFeatureSpec`."""
    if not isinstance(spec, SequenceFeatureSpec):
        raise ConfigError(f"a sequence backbone needs a SequenceFeatureSpec (fields N, then behaviour slots); got "
                          f"{type(spec).__name__} with fields {list(spec.field_names[:5])}")
    return SequenceLayout(spec.num_context_fields, spec.user_len, spec.candidate_len, spec.n_items,
                          torch.as_tensor(spec.content, dtype=torch.float32), spec.candidate_index)


class _SpecIds:
    """Mixin of the registered sequence backbones: built from a ``SequenceFeatureSpec`` like every
    registry model (``build_model(name, spec)``), fed the trainer's global ids; the behaviour
    slots' ids become item indices (id − slot offset) before the model sees them."""

    def __init__(self, spec: FeatureSpec, config: ModelConfig) -> None:
        layout = layout_of(spec)  # refuses a plain FeatureSpec first
        super().__init__(spec.context_spec(), config, layout)  # EST / MeanPoolMLP / ... by the MRO
        self.spec = spec  # the group's view: every column of x is a field
        # subtracted from a whole row: 0 for the context fields, the slot offset for each slot
        id_offsets = [0] * spec.num_context_fields + list(spec.slot_offsets)
        self.register_buffer("id_offsets", torch.tensor(id_offsets, dtype=torch.long), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return super().embed(self._items(x))

    def _items(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.spec.num_fields:
            raise ConfigError(f"{type(self).__name__}: input has shape {tuple(x.shape)}; expected (batch, "
                              f"{self.spec.num_fields}) for fields {list(self.spec.field_names[:4])}, ...")
        return x - self.id_offsets


@register_model("est", presets=PRESETS, inputs="sequence")
class ESTBackbone(_SpecIds, EST):
    """EST from a ``SequenceFeatureSpec`` (the registry's ``est``): global ids in, (B,) logits out."""


@register_model("seq_mean_pool", presets=MEAN_POOL_PRESETS, inputs="sequence")
class MeanPoolBackbone(_SpecIds, MeanPoolMLP):
    """The mean-pooling baseline from a ``SequenceFeatureSpec`` (the registry's ``seq_mean_pool``)."""
