"""Ensemble plans: which members exist, how they are grouped for training, how they are drawn.

Terminology (paper §2.3, Tables 1–3):
- A **member** is one backbone with one initialisation seed.
- A **unit** is what one "1×" means: one member for a homogeneous ensemble, one member of each
  listed backbone for a heterogeneous one (Table 2's 1× of Wukong+RankMixer merges one Wukong and
  one RankMixer; Table 4 compares it with two Wukongs). Scales are counted in units.
- A **training group** holds ``group_size`` members trained jointly on their averaged prediction
  (Eq. 11–12); ``group_size: 1`` is independent training. Members are laid out unit by unit
  (W0, R0, W1, R1, ...), so a heterogeneous group of 2 is one Wukong and one RankMixer.
  Table 3's "Scale of Group M/K" is this group size.
- A grouped ensemble's **baseline** is an ensemble of the same backbones trained independently
  (``group_size: 1``). Grouped members are not single models, so significance is measured
  against the baseline's members (paper §3.3 compares grouped training with independent
  training); :func:`plan_experiment` adds the baseline to the plans when it is not selected.
- A **draw block** is the smallest set of whole groups and whole units: ``max(group_size,
  unit_size)`` consecutive members. A scale-K ensemble merges ``K * unit_size`` members made of
  whole blocks; groups are merged weighted by size (Eq. 13).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from ttsctr.errors import ConfigError
from ttsctr.models.registry import get_entry, model_config
from ttsctr.training import MemberSpec

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class GroupPlan:
    ensemble: str
    name: str
    index: int
    members: tuple[MemberSpec, ...]
    member_indices: tuple[int, ...]  # positions of the members in the ensemble's member list


@dataclass(frozen=True)
class EnsemblePlan:
    name: str
    layout: str  # "homogeneous" | "heterogeneous"
    backbones: tuple[str, ...]
    num_units: int
    group_size: int
    scales: tuple[int, ...]
    draws: int
    merge_rule: str
    groups: tuple[GroupPlan, ...] = field(default=())
    baseline: str | None = None  # independently trained ensemble of the same backbones (grouped ensembles)

    @property
    def unit_size(self) -> int:
        return len(self.backbones)

    @property
    def members(self) -> tuple[MemberSpec, ...]:
        return tuple(m for g in self.groups for m in g.members)

    @property
    def block_size(self) -> int:
        return max(self.group_size, self.unit_size)

    def block_of_member(self) -> list[int]:
        return [i // self.block_size for i in range(self.num_units * self.unit_size)]

    def members_at_scale(self, scale: int) -> int:
        return scale * self.unit_size

    @property
    def label(self) -> str:
        return "+".join(b for b in self.backbones)


def _seeds(entry: Mapping[str, Any], where: str) -> list[int]:
    seeds = entry.get("seeds", 1)
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds must be >= 1, got {seeds}")
        first = int(entry.get("first_seed", 0))
        return list(range(first, first + seeds))
    if isinstance(seeds, Sequence) and seeds and all(isinstance(s, int) for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: seeds contain duplicates: {list(seeds)}")
        return list(seeds)
    raise ConfigError(f"{where}: seeds must be a positive int or a list of distinct ints, got {seeds!r}")


def plan_ensemble(name: str, config: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> EnsemblePlan:
    """Validate one ensemble's configuration and lay out its members and training groups."""
    where = f"ensemble {name!r}"
    if not _NAME.match(name) or "__" in name:
        raise ConfigError(f"{where}: names must be letters, digits and single underscores (they become Kedro "
                          "namespaces; '__' separates the parts of catalog dataset names)")
    cfg = {**(defaults or {}), **config}
    entries = cfg.get("members")
    if not entries:
        raise ConfigError(f"{where}: 'members' must list at least one backbone")
    backbones: list[str] = []
    seed_lists: list[list[int]] = []
    for i, entry in enumerate(entries):
        if "backbone" not in entry:
            raise ConfigError(f"{where}: members[{i}] has no 'backbone'")
        backbone = str(entry["backbone"]).lower()
        preset = entry.get("preset", cfg.get("preset", "default"))
        overrides = dict(entry.get("overrides") or {})
        try:  # fail now, not after hours of training
            get_entry(backbone)
            model_config(backbone, preset, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"{where}: members[{i}]: {exc}") from exc
        backbones.append(backbone)
        seed_lists.append(_seeds(entry, f"{where}: members[{i}] ({backbone})"))
    num_units = len(seed_lists[0])
    if any(len(s) != num_units for s in seed_lists):
        raise ConfigError(
            f"{where}: every backbone needs the same number of seeds (one of each per unit), got "
            + ", ".join(f"{b}: {len(s)}" for b, s in zip(backbones, seed_lists))
        )
    unit_size = len(backbones)
    num_members = num_units * unit_size
    group_size = int(cfg.get("group_size", 1))
    if group_size < 1 or num_members % group_size:
        raise ConfigError(f"{where}: group_size {group_size} must divide the number of members ({num_members})")
    if group_size % unit_size and unit_size % group_size:
        raise ConfigError(
            f"{where}: group_size {group_size} and the unit size {unit_size} (one member per backbone) "
            "must divide one another, so that groups hold whole units or units hold whole groups"
        )
    block = max(group_size, unit_size)
    scales = tuple(int(s) for s in cfg.get("scales", [1]))
    for scale in scales:
        if scale < 1 or scale > num_units:
            raise ConfigError(f"{where}: scale {scale} is outside 1..{num_units} (the number of units)")
        if (scale * unit_size) % block:
            raise ConfigError(
                f"{where}: scale {scale} ({scale * unit_size} members) is not made of whole training groups "
                f"of {group_size} members"
            )
    layout = cfg.get("layout") or ("homogeneous" if unit_size == 1 else "heterogeneous")
    baseline = cfg.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not _NAME.match(baseline) or baseline == name):
        raise ConfigError(f"{where}: baseline must name another ensemble of ensemble_catalog, got {baseline!r}")
    flat: list[MemberSpec] = []
    for unit in range(num_units):
        for i, entry in enumerate(entries):
            flat.append(
                MemberSpec(
                    backbone=backbones[i],
                    seed=seed_lists[i][unit],
                    preset=entry.get("preset", cfg.get("preset", "default")),
                    overrides=dict(entry.get("overrides") or {}),
                )
            )
    groups = tuple(
        GroupPlan(name, f"group_{g:02d}", g, tuple(flat[g * group_size : (g + 1) * group_size]),
                  tuple(range(g * group_size, (g + 1) * group_size)))
        for g in range(num_members // group_size)
    )
    return EnsemblePlan(
        name=name,
        layout=layout,
        backbones=tuple(backbones),
        num_units=num_units,
        group_size=group_size,
        scales=scales,
        draws=int(cfg.get("draws", 5)),
        merge_rule=str(cfg.get("merge_rule", "mean_prob")),
        groups=groups,
        baseline=baseline,
    )


def plan_experiment(tts_params: Mapping[str, Any], names: Sequence[str] | str | None = None) -> list[EnsemblePlan]:
    """Plans of the selected ensembles (``names`` or ``tts_params['ensembles']``)."""
    catalog = tts_params.get("ensemble_catalog") or {}
    selected = names if names is not None else tts_params.get("ensembles", [])
    if isinstance(selected, str):
        selected = [s for s in re.split(r"[\s+;]+", selected) if s]
    unknown = [n for n in selected if n not in catalog]
    if unknown:
        raise ConfigError(f"unknown ensembles {unknown}; defined in ensemble_catalog: {sorted(catalog)}")
    defaults = {k: v for k, v in (tts_params.get("defaults") or {}).items() if k != "baseline"}
    plans = {n: plan_ensemble(n, catalog[n], defaults) for n in selected}
    # A grouped ensemble is tested against its independently trained baseline, so the baseline's
    # members must be trained and predicted in the same run: add it (before its user) if missing.
    ordered: list[EnsemblePlan] = []
    for name in selected:
        plan = plans[name]
        if plan.group_size > 1 and plan.baseline is None:
            raise ConfigError(
                f"ensemble {name!r}: grouped members (group_size {plan.group_size}) are not single models; name "
                "the independently trained ensemble of the same backbones they are tested against with "
                "'baseline: <ensemble>' (e.g. dcnv2_grouped_x8 -> baseline: dcnv2_x8)"
            )
        if plan.baseline is not None:
            if plan.baseline not in catalog:
                raise ConfigError(
                    f"ensemble {name!r}: baseline {plan.baseline!r} is not defined in ensemble_catalog: {sorted(catalog)}"
                )
            base = plans.get(plan.baseline) or plan_ensemble(plan.baseline, catalog[plan.baseline], defaults)
            check_baseline(plan, base)
            if base.name not in {p.name for p in ordered}:
                ordered.append(base)
        if plan.name not in {p.name for p in ordered}:
            ordered.append(plan)
    return ordered


def check_baseline(plan: EnsemblePlan, base: EnsemblePlan) -> None:
    """Refuse a baseline that is not the same backbones trained independently."""
    where = f"ensemble {plan.name!r}: baseline {base.name!r}"
    if base.group_size != 1:
        raise ConfigError(
            f"{where} must train the same backbones independently (group_size 1), it has group_size {base.group_size}"
        )
    if base.backbones != plan.backbones:
        raise ConfigError(f"{where} must train the same backbones {list(plan.backbones)}; it has {list(base.backbones)}")
    if base.baseline is not None:
        raise ConfigError(f"{where} has a baseline of its own; baselines do not chain")


def config_hash(payload: Any) -> str:
    """Stable short hash of a JSON-able payload (used to recognise already-trained groups)."""
    text = json.dumps(payload, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def ensemble_description(plan: EnsemblePlan) -> dict[str, Any]:
    """What an ensemble is made of: name, a plot label, layout, backbones, group size, members,
    presets and seeds, scales, and the baseline a grouped ensemble is tested against."""
    members = plan.members
    kind = "basic" if plan.group_size == 1 else f"grouped ×{plan.group_size}"
    return {
        "name": plan.name,
        "label": f"{plan.name} ({kind})",
        "layout": plan.layout,
        "backbones": list(plan.backbones),
        "group_size": plan.group_size,
        "members": len(members),
        "presets": sorted({m.preset for m in members}),
        "seeds": [int(m.seed) for m in members],
        "scales": list(plan.scales),
        "merge_rule": plan.merge_rule,
        "baseline": plan.baseline,
    }
