"""Multi-Embed (ME) — Guo et al., "On the Embedding Collapse when Scaling up Recommendation
Models", ICML 2024: width scaling with one embedding table per interaction expert.

TTS paper §2.2.2, with M experts (``experts``, e.g. ``("wukong", "wukong")`` = W×2,
``("rankmixer", "wukong")`` = R+W)::

    e^(m) = E^(m)(x)                      (Eq. 5)  (B, F) ids -> (B, F, D_m), own table per expert
    h^(m) = P_m I^(m)(e^(m))              (Eq. 6)  (B, F, D_m) -> (B, H)
    h     = (1/M) Σ_m h^(m)               (Eq. 7)  (B, H)
    ŷ     = F(h) = w^T h + b                       (B,) logit

Each expert I^(m) is a full registry backbone (``build_model(name, spec, expert_preset)``)
whose logit layer is removed (:func:`remove_logit_layer`), so it returns its last hidden
representation (B, H_m); its embedding table becomes E^(m) and is owned by the ME model.
When the experts' widths differ, each expert with H_m != H = max_m H_m gets a bias-free
linear projection P_m (H_m -> H); with equal widths there is no projection (P_m = I). The
shared head F is one ``nn.Linear(H, 1)``: the logit layer removed from the first expert
with H_m = H, reused rather than drawn anew.

With M = 1 the model *is* the backbone: same parameters (the backbone's logit layer has
become F), same FLOPs, and — built under the same seed — the same initial weights.

Embedding interface: ``embed(x)`` returns the M tables' embeddings side by side,
``[e^(1) ‖ … ‖ e^(M)]`` (B, F, Σ_m D_m) (``embedding_dim`` = Σ_m D_m), and
``forward_embedded(e)`` splits that back per expert, so embedding-level variants (field
masking, noise) act on every table at once. ``model.embedding`` is E^(1) (the other tables
are ``extra_tables``), so code that validates ids with ``model.embedding.check_ids`` works.

Supported experts are backbones whose logit is exactly the output of one ``nn.Linear(H, 1)``
called last in the forward pass (Wukong, RankMixer, DCN-V2, DCN, FNN, IPNN); backbones that
add terms after it (DeepFM's FM term, FinalMLP's bilinear fusion) or have none (LR) raise a
``ConfigError``.

Presets: ``default`` — W×2 with Wukong's ``default`` preset; ``small`` — W×2 with Wukong's
``small`` preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.flops import random_ids
from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import build_model, register_model

# Width-scaling models; they cannot be experts of one another.
WIDTH_SCALING_MODELS = ("multi_embed", "dmoe")
# Rows of random ids used to find and verify the logit layer of an expert.
PROBE_ROWS = 4


@dataclass
class MultiEmbedConfig(ModelConfig):
    """``experts``: backbone names, one expert (with its own table) each, M = len(experts).
    ``expert_preset``: the registry preset every expert is built with.

    The shared knobs ``embedding_dim``, ``dropout``, ``batch_norm`` and ``embedding_init_std``
    default to None = each expert keeps its preset's value; a value is passed to every expert
    as an override.
    """

    experts: tuple[str, ...] = ("wukong", "wukong")
    expert_preset: str = "default"
    embedding_dim: int | None = None  # type: ignore[assignment]
    dropout: float | None = None  # type: ignore[assignment]
    batch_norm: bool | None = None  # type: ignore[assignment]
    embedding_init_std: float | None = None  # type: ignore[assignment]


SHARED_KNOBS = ("embedding_dim", "dropout", "batch_norm", "embedding_init_std")


def _module_paths(root: nn.Module) -> dict[int, list[str]]:
    paths: dict[int, list[str]] = {}
    for path, module in root.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(path)
    return paths


def _probe(backbone: CTRModel, ids: torch.Tensor, linears: list[nn.Linear]) -> tuple[torch.Tensor, list[tuple]]:
    """Eval-mode forward of ``backbone`` on ``ids``, recording every call of ``linears`` in order.

    Leaves every module's train/eval flag as it was and draws nothing from the global RNG.
    """
    calls: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        calls.append((module, inputs[0], output))

    hooks = [m.register_forward_hook(record) for m in linears]
    modes = {m: m.training for m in backbone.modules()}
    try:
        backbone.eval()
        with torch.no_grad():
            out = backbone(ids)
    finally:
        for hook in hooks:
            hook.remove()
        for m, training in modes.items():
            m.training = training
    return out, calls


def remove_logit_layer(backbone: CTRModel, name: str = "expert") -> tuple[str, nn.Linear, int]:
    """Replace the layer that produces ``backbone``'s logit by ``nn.Identity``, in place.

    Found by running the backbone once (eval mode, :data:`PROBE_ROWS` random ids) with a
    forward hook on every ``nn.Linear``: the logit layer is the last ``nn.Linear`` called,
    it must have ``out_features == 1``, be called exactly once, be registered at exactly
    one place, and its output must *be* the logit (bit-for-bit, so no term is added after
    it). After the replacement a second probe checks that the backbone now returns the
    layer's input h (B, H) — ``(B,)`` is read as (B, 1) when H = 1 — and that the removed
    layer maps h back to the original logit.

    Returns ``(path, removed layer, H)`` where ``path`` is the layer's name in
    ``backbone.named_modules()`` (e.g. ``"mlp.net.4"``). Raises ``ConfigError`` naming the
    backbone when it has no such layer.
    """
    unsupported = (
        f"{name}: {type(backbone).__name__} cannot be a width-scaling expert: its logit is not the output of "
        "one final nn.Linear(H, 1)"
    )
    linears = [m for m in backbone.modules() if isinstance(m, nn.Linear)]
    ids = random_ids(backbone.spec, PROBE_ROWS)
    logit, calls = _probe(backbone, ids, linears)
    if not calls:
        raise ConfigError(f"{unsupported} (it calls no nn.Linear)")
    last, h, out = calls[-1]
    if last.out_features != 1:
        raise ConfigError(f"{unsupported} (the last nn.Linear called has out_features={last.out_features})")
    if sum(m is last for m, _, _ in calls) != 1:
        raise ConfigError(f"{unsupported} (its last nn.Linear is called more than once)")
    if not torch.equal(out.reshape(-1), logit.reshape(-1)):
        raise ConfigError(f"{unsupported} (its forward adds other terms after the last nn.Linear)")
    paths = _module_paths(backbone)[id(last)]
    if len(paths) != 1:
        raise ConfigError(f"{unsupported} (its last nn.Linear is registered at {paths})")
    path = paths[0]
    hidden_dim = last.in_features
    parent_path, _, attr = path.rpartition(".")
    setattr(backbone.get_submodule(parent_path), attr, nn.Identity())
    stripped, _ = _probe(backbone, ids, [])
    if stripped.numel() != PROBE_ROWS * hidden_dim:
        raise ConfigError(
            f"{unsupported} (without {path} it returns shape {tuple(stripped.shape)}, "
            f"expected ({PROBE_ROWS}, {hidden_dim}))"
        )
    with torch.no_grad():
        again = last(stripped.reshape(PROBE_ROWS, hidden_dim)).reshape(-1)
    if not torch.allclose(again, logit.reshape(-1), rtol=1e-4, atol=1e-6):
        raise ConfigError(f"{unsupported} (its output without {path} does not map back to the logit)")
    return path, last, hidden_dim


class InteractionExpert(nn.Module):
    """One interaction expert I^(m) (Eq. 6), optionally followed by a projection P_m.

    ``backbone`` is a registry backbone whose logit layer (``logit_layer``, see
    :func:`remove_logit_layer`) is an ``nn.Identity`` and whose embedding table has been
    taken away (the ME model owns the tables), so only ``backbone.forward_embedded`` is
    used: (B, F, D_m) -> (B, H_m). ``projection``: ``nn.Linear(H_m, width, bias=False)``
    when ``hidden_dim != width``, else None. Output (B, width).
    """

    def __init__(self, backbone: CTRModel, logit_layer: str, hidden_dim: int, width: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.logit_layer = logit_layer
        self.hidden_dim = hidden_dim
        self.width = width
        # A bias would be redundant with the head's bias (the average of constants is a constant).
        self.projection = nn.Linear(hidden_dim, width, bias=False) if hidden_dim != width else None

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        h = self.backbone.forward_embedded(e).reshape(e.shape[0], self.hidden_dim)  # (B, H_m)
        return h if self.projection is None else self.projection(h)  # (B, H)


def _expert_names(config: MultiEmbedConfig, model: str) -> tuple[str, ...]:
    experts = config.experts
    if isinstance(experts, str) or not isinstance(experts, (tuple, list)):
        raise ConfigError(
            f"{model}: experts must be a list of backbone names (e.g. [wukong, wukong]), got {experts!r}"
        )
    if not experts:
        raise ConfigError(f"{model}: experts must name at least one backbone, got an empty list")
    for i, name in enumerate(experts):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{model}: experts[{i}] must be a backbone name, got {name!r}")
        if name.lower() in WIDTH_SCALING_MODELS:
            raise ConfigError(f"{model}: experts[{i}] is {name!r}; experts must be backbones, not width-scaling models")
    if not isinstance(config.expert_preset, str) or not config.expert_preset:
        raise ConfigError(f"{model}: expert_preset must be a preset name (e.g. small), got {config.expert_preset!r}")
    return tuple(name.lower() for name in experts)


@register_model(
    "multi_embed",
    presets={
        "default": MultiEmbedConfig(experts=("wukong", "wukong"), expert_preset="default"),
        "small": MultiEmbedConfig(experts=("wukong", "wukong"), expert_preset="small"),
    },
)
class MultiEmbed(CTRModel):
    """Multi-Embed (Eq. 5–7): M experts with their own tables, averaged hidden outputs, one head.

    Attributes: ``embedding`` (E^(1)), ``extra_tables`` (E^(2..M)), ``experts``
    (:class:`InteractionExpert` × M), ``head`` (``nn.Linear(H, 1)``), ``hidden_dim`` (H),
    ``embedding_dims`` ((D_1, …, D_M)), ``embedding_dim`` (Σ_m D_m, the width of ``embed``).
    """

    config_class = MultiEmbedConfig
    model_name = "multi_embed"

    def __init__(self, spec, config: MultiEmbedConfig) -> None:
        super().__init__(spec, config, own_embedding=False)  # the experts' tables, not one of its own
        names = _expert_names(config, self.model_name)
        shared: dict[str, Any] = {k: getattr(config, k) for k in SHARED_KNOBS if getattr(config, k) is not None}

        backbones, tables, stripped, logit_layers = [], [], [], []
        for m, name in enumerate(names):
            where = f"{self.model_name}: expert {m} ({name!r}, preset {config.expert_preset!r})"
            try:
                backbone = build_model(name, spec, config.expert_preset, **shared)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            path, logit_layer, hidden_dim = remove_logit_layer(backbone, where)
            table = backbone.embedding
            if not isinstance(table, FeatureEmbedding):
                raise ConfigError(f"{where}: expected a FeatureEmbedding table, got {type(table).__name__}")
            del backbone.embedding  # E^(m) is owned (and looked up) by the ME model
            backbones.append(backbone)
            tables.append(table)
            stripped.append((path, hidden_dim))
            logit_layers.append(logit_layer)
        width = max(h for _, h in stripped)  # H

        # Registration order fixes parameter names and init order: E^(1) is `embedding.weight`.
        self.embedding = tables[0]
        self.extra_tables = nn.ModuleList(tables[1:])
        self.experts = nn.ModuleList(
            InteractionExpert(b, path, h, width) for b, (path, h) in zip(backbones, stripped)
        )
        # F: the removed logit layer of the first widest expert, Linear(H, 1), kept rather than
        # drawn anew, so that ME with one expert starts from exactly the backbone's weights
        # under the same seed (nothing extra is drawn from the RNG).
        self.head = next(layer for layer, (_, h) in zip(logit_layers, stripped) if h == width)
        self.hidden_dim = width
        self.embedding_dims = tuple(t.embedding_dim for t in tables)
        self.embedding_dim = sum(self.embedding_dims)

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    @property
    def tables(self) -> list[FeatureEmbedding]:
        """E^(1), …, E^(M)."""
        return [self.embedding, *self.extra_tables]

    def _lookups(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = super().embed(x)  # checks (B, F); E^(1)(x): (B, F, D_1)
        return [first] + [table(x) for table in self.extra_tables]  # M × (B, F, D_m)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        e = self._lookups(x)
        return e[0] if len(e) == 1 else torch.cat(e, dim=-1)  # (B, F, Σ D_m)

    def expert_outputs(self, embeddings: list[torch.Tensor]) -> list[torch.Tensor]:
        """h^(m) (Eq. 6, after the projection P_m): M × (B, H)."""
        return [expert(e) for expert, e in zip(self.experts, embeddings)]

    def predict_from_experts(self, hs: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 7 and the head: M × (B, H) -> (B,) logits."""
        h = hs[0] if len(hs) == 1 else torch.stack(hs, dim=0).mean(dim=0)  # (B, H)
        return self.head(h).squeeze(-1)  # (B,)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        if e.dim() != 3 or e.shape[-1] != self.embedding_dim:
            raise ConfigError(
                f"{type(self).__name__}.forward_embedded: expected the tables' embeddings side by side, "
                f"(batch, {self.num_fields}, {self.embedding_dim}) with widths {list(self.embedding_dims)}; "
                f"got {tuple(e.shape)}"
            )
        parts = list(torch.split(e, list(self.embedding_dims), dim=-1))  # M × (B, F, D_m)
        return self.predict_from_experts(self.expert_outputs(parts))  # (B,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each expert reads its own table directly (no concatenate-then-split copy).
        return self.predict_from_experts(self.expert_outputs(self._lookups(x)))  # (B,)


