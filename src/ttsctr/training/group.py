"""Members and groups: :class:`MemberSpec`, :class:`GroupModel`, :func:`build_group`, :func:`group_loss`.

A *group* is a set of CTR backbones trained jointly on the binary cross-entropy of their
averaged probability (grouped training, Eq. 11-12); independent training is a group of one.
A member's initial weights depend only on its own spec (backbone, preset, overrides), its
``seed`` and the initialisation scheme: it is built and initialised under
``torch.manual_seed(seed)``, so the same member starts from the same weights in whichever group.
"""

from __future__ import annotations

import hashlib
import json
import math
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.models import CTRModel, build_model

__all__ = ["MemberSpec", "GroupModel", "build_group", "group_loss", "merged_probability", "DEFAULT_WEIGHT_INIT"]

DEFAULT_WEIGHT_INIT = "xavier_normal"


def _freeze_override(value: Any, where: str) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_override(v, where) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{where}: override values must be numbers, strings, booleans or lists; got {type(value).__name__}")


def _thaw_override(value: Any) -> Any:
    return [_thaw_override(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class MemberSpec:
    """One member of an ensemble: which backbone, which preset (+ overrides), which init seed.

    Hashable and JSON-able (:meth:`to_dict` / :meth:`from_dict`); ``overrides`` is stored
    as a plain dict with sorted keys and lists turned into tuples.
    """

    backbone: str
    seed: int
    preset: str = "default"
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ConfigError(f"MemberSpec.backbone must be a model name, got {self.backbone!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"MemberSpec.seed must be an integer in [0, 2**63), got {self.seed!r}")
        if not isinstance(self.preset, str) or not self.preset:
            raise ConfigError(f"MemberSpec.preset must be a preset name, got {self.preset!r}")
        if not isinstance(self.overrides, Mapping):
            raise ConfigError(f"MemberSpec.overrides must be a mapping, got {type(self.overrides).__name__}")
        where = f"member {self.backbone}/{self.preset}/seed {self.seed}"
        clean = {}
        for key in sorted(self.overrides):
            if not isinstance(key, str):
                raise ConfigError(f"{where}: override keys must be strings, got {key!r}")
            clean[key] = _freeze_override(self.overrides[key], where)
        object.__setattr__(self, "backbone", self.backbone.lower())
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "overrides", clean)

    def __hash__(self) -> int:
        return hash((self.backbone, self.seed, self.preset, json.dumps(self.to_dict()["overrides"], sort_keys=True)))

    @property
    def name(self) -> str:
        """Short readable id, e.g. ``fnn-small-s3`` (``+<hash>`` when there are overrides)."""
        base = f"{self.backbone}-{self.preset}-s{self.seed}"
        if self.overrides:
            digest = hashlib.sha1(json.dumps(self.to_dict()["overrides"], sort_keys=True).encode()).hexdigest()[:8]
            base += f"+{digest}"
        return base

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "seed": self.seed,
            "preset": self.preset,
            "overrides": {k: _thaw_override(v) for k, v in self.overrides.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MemberSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"member spec: unknown keys {unknown}; known keys: {sorted(known)}")
        missing = sorted({"backbone", "seed"} - set(data))
        if missing:
            raise ConfigError(f"member spec: missing keys {missing} in {dict(data)!r}")
        return cls(**dict(data))

    def build(self, spec: FeatureSpec, weight_init: str = DEFAULT_WEIGHT_INIT) -> CTRModel:
        """The member's backbone with its initial weights; the caller's RNG state is left untouched.

        ``weight_init`` (see :func:`ttsctr.layers.init.initialize_weights`) re-draws the dense
        layers after construction, still under the member's seed; ``torch_default`` keeps the
        modules' own initialisation.
        """
        from ttsctr.layers.init import initialize_weights

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = build_model(self.backbone, spec, self.preset, **self.overrides)
            initialize_weights(model, weight_init)
            return model


# --------------------------------------------------------------------------- model


class GroupModel(nn.Module):
    """Members trained and served as one unit (Eq. 11): ``forward`` gives every member's logit."""

    def __init__(
        self,
        members: Sequence[CTRModel],
        member_specs: Sequence[MemberSpec] | None = None,
        spec: FeatureSpec | None = None,
    ) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ConfigError("a group needs at least one member")
        if member_specs is not None and len(member_specs) != len(members):
            raise ConfigError(f"{len(members)} member models but {len(member_specs)} member specs")
        self.spec = spec if spec is not None else members[0].spec
        for i, m in enumerate(members):
            if not isinstance(m, CTRModel):
                raise ConfigError(f"group member {i} is a {type(m).__name__}, not a CTRModel")
            if m.spec.num_fields != self.spec.num_fields or m.spec.num_features != self.spec.num_features:
                raise ConfigError(
                    f"group member {i} was built for {m.spec.num_fields} fields / {m.spec.num_features} features; "
                    f"the group's feature spec has {self.spec.num_fields} / {self.spec.num_features}"
                )
        self.members = nn.ModuleList(members)
        # Arithmetic of evaluation and prediction: set by train() to the config's precision and
        # stored in checkpoints, so stored predictions match what early stopping saw.
        self.precision: str = "fp32"
        # The encoding the weights were trained on (ttsctr.data.version); None until trained or loaded.
        self.data_version: str | None = None
        self.member_specs: tuple[MemberSpec, ...] | None = tuple(member_specs) if member_specs is not None else None

    @property
    def size(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) integer ids -> (B, M) member logits."""
        return torch.stack([m(x) for m in self.members], dim=1)

    def merged_probability(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B,): the mean of the members' probabilities (Eq. 10/11)."""
        return torch.sigmoid(self(x).float()).mean(dim=1)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """Sum of the members' :meth:`~ttsctr.models.CTRModel.auxiliary_loss` terms of the last
        forward pass (``None`` when no member has one), added to the BCE by the trainer."""
        terms = [t for t in (m.auxiliary_loss() for m in self.members) if t is not None]
        return torch.stack([t.float() for t in terms]).sum() if terms else None


def build_group(
    spec: FeatureSpec, members: Sequence[MemberSpec], weight_init: str = DEFAULT_WEIGHT_INIT
) -> GroupModel:
    """A group of freshly initialised members; member ``i`` is built under ``torch.manual_seed(members[i].seed)``.

    Pass the training config's ``weight_init`` (``TrainConfig.weight_init``) so the members start
    from the recipe's initialisation.
    """
    members = [m if isinstance(m, MemberSpec) else MemberSpec.from_dict(m) for m in members]
    if not members:
        raise ConfigError("build_group: at least one member is required")
    dupes = sorted({m.name for m in members if members.count(m) > 1})
    if dupes:
        raise ConfigError(f"build_group: members {dupes} appear more than once (they would be identical copies)")
    return GroupModel([m.build(spec, weight_init) for m in members], members, spec)


def group_loss(member_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE of the group's averaged probability ``p = mean_m sigmoid(l_m)`` (Eq. 11, Eq. 3).

    Computed in log space so huge logits stay finite:
    ``log p = logsumexp_m(logsigmoid(l_m)) - log M`` and
    ``log(1-p) = logsumexp_m(logsigmoid(-l_m)) - log M``. Each member's logit then gets
    ``(1/M) dL/dp * sigmoid'(l_m)`` (Eq. 12). For M = 1 this is exactly
    ``F.binary_cross_entropy_with_logits``, which is what is computed then.
    """
    logits = member_logits.float()
    if logits.dim() == 1:
        logits = logits.unsqueeze(1)
    if logits.dim() != 2:
        raise ConfigError(f"group_loss: member logits must be (batch, members), got shape {tuple(member_logits.shape)}")
    y = y.to(dtype=logits.dtype).reshape(-1)
    if y.shape[0] != logits.shape[0]:
        raise ConfigError(f"group_loss: {logits.shape[0]} rows of logits but {y.shape[0]} labels")
    m = logits.shape[1]
    if m == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y)
    log_m = math.log(m)
    log_p = torch.logsumexp(F.logsigmoid(logits), dim=1) - log_m
    log_q = torch.logsumexp(F.logsigmoid(-logits), dim=1) - log_m
    return -(y * log_p + (1.0 - y) * log_q).mean()




def merged_probability(logits: np.ndarray) -> np.ndarray:
    """(N, M) member logits -> (N,) float64 mean member probability (Eq. 10)."""
    logits = np.asarray(logits, dtype=np.float64)
    return expit(logits).mean(axis=1) if logits.ndim == 2 else expit(logits)
