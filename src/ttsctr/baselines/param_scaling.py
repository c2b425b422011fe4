"""FLOPs-matched parameter scaling (paper §3.2, Fig. 3): configurations of a backbone at k× its
measured forward FLOPs per row, along each scaling dimension the backbone has.

A *dimension* is one or two *axes*; an axis turns a factor ``s >= 1`` into config overrides of
the base preset:

==========  ===========  =======================================================================
model       dimension    what grows
==========  ===========  =======================================================================
wukong      layers       ``num_layers`` (depth)
wukong      nf_nl_k      ``fmb_embeddings`` (n_F), ``lcb_embeddings`` (n_L), ``fmb_rank`` (k)
                         together (the paper's Table 5 "K_Nf_Nl" dimension)
rankmixer   layers       ``num_layers`` (L)
rankmixer   dim          ``token_dim`` (D, a multiple of the token count) and the head widths
dcnv2       depth        ``cross_layers``
dcnv2       width        ``hidden_units`` of the deep tower
finalmlp    depth        layers of both streams (``mlp1/mlp2_hidden_units``, last width repeated)
finalmlp    width        widths of both streams
(each)      both         the model's depth axis and its width axis, each about √k
==========  ===========  =======================================================================

Targets are met by measuring, not by formula: every candidate is built and its forward pass
counted by :func:`ttsctr.flops.model_cost` on the dataset's feature spec. An integer axis (depth)
is scanned value by value; a width axis is bisected on ``s`` (FLOPs grow monotonically with it).
``both`` finds the depth whose FLOPs multiple is closest to √k, bisects the width (never
narrower than the base) with that depth and its neighbours, and keeps, among those within the
tolerance (or 5%, if tighter), the one nearest the √k depth. A configuration is accepted when its multiple is within ``tolerance`` (15% by
default) of the target; a target no configuration of the dimension reaches is a
:class:`~ttsctr.errors.ConfigError` naming the parameter, raised before any training.
The embedding width is never scaled: a larger table costs parameters, not FLOPs per row.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import model_cost
from ttsctr.models import build_model, model_config

__all__ = ["SCALING_DIMENSIONS", "ScaledConfig", "scaled_config", "scaling_plan"]

Overrides = dict[str, Any]


@dataclass(frozen=True)
class Axis:
    """One knob: ``overrides(base_config, s)`` for a factor ``s >= 1``; ``integer`` axes take whole
    steps of ``unit`` (their factor is ``value / base_value``)."""

    name: str
    overrides: Callable[[Any, float], Overrides]
    integer: bool
    base_value: Callable[[Any], int] = lambda cfg: 1


def _depth(field: str) -> Axis:
    return Axis(field, lambda cfg, s: {field: max(1, round(getattr(cfg, field) * s))}, True,
                lambda cfg: getattr(cfg, field))


def _scale_units(units: Sequence[int], s: float, multiple: int = 1) -> tuple[int, ...]:
    return tuple(max(multiple, multiple * round(u * s / multiple)) for u in units)


def _widths(*fields: str) -> Axis:
    return Axis("+".join(fields), lambda cfg, s: {f: _scale_units(getattr(cfg, f), s) for f in fields}, False)


def _scalars(*fields: str) -> Axis:
    return Axis("+".join(fields), lambda cfg, s: {f: max(1, round(getattr(cfg, f) * s)) for f in fields}, False)


def _token_dim_and_head(spec_fields: int | None = None) -> Callable[[Any, float], Overrides]:
    def overrides(cfg: Any, s: float) -> Overrides:
        # token_dim must stay a multiple of the token count, so it moves in coarse steps; the head
        # widths move with it and fill the FLOPs between those steps
        tokens = cfg.num_tokens if cfg.tokenizer == "slice" else None
        if cfg.token_dim is None:
            raise ConfigError("param_scaling: rankmixer's 'dim' dimension needs an explicit token_dim in its preset")
        multiple = tokens or 1
        return {"token_dim": max(multiple, multiple * round(cfg.token_dim * s / multiple)),
                "hidden_units": _scale_units(cfg.hidden_units, s)}

    return overrides


def _stream_depth(cfg: Any, s: float) -> Overrides:
    out = {}
    for f in ("mlp1_hidden_units", "mlp2_hidden_units"):
        units = tuple(getattr(cfg, f))
        n = max(1, round(len(units) * s))
        out[f] = units[:n] + (units[-1],) * max(0, n - len(units))
    return out


SCALING_DIMENSIONS: dict[str, dict[str, tuple[Axis, ...]]] = {
    "wukong": {
        "layers": (_depth("num_layers"),),
        "nf_nl_k": (_scalars("fmb_embeddings", "lcb_embeddings", "fmb_rank"),),
    },
    "rankmixer": {
        "layers": (_depth("num_layers"),),
        "dim": (Axis("token_dim+hidden_units", _token_dim_and_head(), False),),
    },
    "dcnv2": {
        "depth": (_depth("cross_layers"),),
        "width": (_widths("hidden_units"),),
    },
    "finalmlp": {
        "depth": (Axis("stream_depth", _stream_depth, True, lambda cfg: len(cfg.mlp1_hidden_units)),),
        "width": (_widths("mlp1_hidden_units", "mlp2_hidden_units"),),
    },
}
for _dims in SCALING_DIMENSIONS.values():
    _dims["both"] = (_dims.get("layers", _dims.get("depth"))[0],
                     next(axes[0] for name, axes in _dims.items() if name not in ("layers", "depth")))


@dataclass(frozen=True)
class ScaledConfig:
    """A configuration of ``model`` at ``target``× the base preset's FLOPs along ``dimension``."""

    model: str
    preset: str
    dimension: str
    target: float
    overrides: Mapping[str, Any]
    flops_per_row: float
    base_flops_per_row: float
    dense_params: int
    embedding_params: int

    @property
    def flops_multiple(self) -> float:
        return self.flops_per_row / self.base_flops_per_row

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides.items()}
        d["flops_multiple"] = self.flops_multiple
        return d


class _Meter:
    """Measured FLOPs of candidate overrides, cached (a candidate is built once per spec)."""

    _caches: dict[tuple[str, str, FeatureSpec], dict[str, tuple[float, int, int]]] = {}

    def __init__(self, model: str, preset: str, spec: FeatureSpec) -> None:
        self.model, self.preset, self.spec = model, preset, spec
        self.cache = self._caches.setdefault((model, preset, spec), {})

    def __call__(self, overrides: Overrides) -> tuple[float, int, int]:
        key = repr(sorted(overrides.items()))
        if key not in self.cache:
            cost = model_cost(build_model(self.model, self.spec, self.preset, **overrides), batch_size=8)
            self.cache[key] = (cost.flops_per_row, cost.dense_params, cost.embedding_params)
        return self.cache[key]


def _scan_integer(axis: Axis, cfg: Any, meter: _Meter, base: float, target: float, extra: Overrides,
                  limit: int = 4096) -> tuple[Overrides, float, int]:
    """Value of an integer axis closest to ``target``: FLOPs grow with the value, so the first value
    at or above the target is found by doubling and bisection, then compared with the one below."""
    start = axis.base_value(cfg)

    def at(value: int) -> tuple[Overrides, float, int]:
        ov = {**extra, **axis.overrides(cfg, value / start)}
        return ov, meter(ov)[0] / base, value

    lo, hi = 1, max(1, start)
    while at(hi)[1] < target and hi < limit:
        lo, hi = hi, min(limit, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if at(mid)[1] < target:
            lo = mid
        else:
            hi = mid
    return min((at(v) for v in {lo, hi}), key=lambda c: abs(math.log(c[1] / target)))


def _bisect_width(axis: Axis, cfg: Any, meter: _Meter, base: float, target: float, extra: Overrides,
                  s_max: float = 256.0, steps: int = 40, s_min: float | None = None) -> tuple[Overrides, float]:
    cfg = dataclasses.replace(cfg, **extra) if extra else cfg  # widths scale what the depth axis built
    lo, hi = (1.0 / s_max if s_min is None else s_min), s_max
    best: tuple[float, Overrides, float] | None = None
    for _ in range(steps):
        s = math.sqrt(lo * hi)
        ov = {**extra, **axis.overrides(cfg, s)}
        multiple = meter(ov)[0] / base
        gap = abs(math.log(multiple / target))
        if best is None or gap < best[0]:
            best = (gap, ov, multiple)
        if multiple < target:
            lo = s
        else:
            hi = s
        if hi / lo < 1.001:
            break
    assert best is not None
    return best[1], best[2]


def scaled_config(model: str, dimension: str, target: float, spec: FeatureSpec, *, preset: str = "small",
                  tolerance: float = 0.15, where: str = "param_scaling") -> ScaledConfig:
    """The configuration of ``model`` along ``dimension`` closest to ``target``× the preset's FLOPs.

    ``where`` names the parameter in errors (e.g. ``param_scaling.models.wukong``).
    """
    dims = SCALING_DIMENSIONS.get(model)
    if dims is None:
        raise ConfigError(f"{where}: model {model!r} has no scaling dimensions; models: {sorted(SCALING_DIMENSIONS)}")
    if dimension not in dims:
        raise ConfigError(f"{where}: unknown dimension {dimension!r} for {model}; dimensions: {sorted(dims)}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target >= 1:
        raise ConfigError(f"{where}: scaling targets must be numbers >= 1, got {target!r}")
    if not 0 < tolerance < 1:
        raise ConfigError(f"{where}.flops_tolerance must be in (0, 1), got {tolerance!r}")
    cfg = model_config(model, preset)
    meter = _Meter(model, preset, spec)
    base_flops, dense, emb = meter({})
    if target == 1:
        return ScaledConfig(model, preset, dimension, 1.0, {}, base_flops, base_flops, dense, emb)
    axes = dims[dimension]
    if len(axes) == 2:  # depth to about sqrt(target), then width for the rest
        depth, width = axes
        start = depth.base_value(cfg)
        value = _scan_integer(depth, cfg, meter, base_flops, math.sqrt(target), {})[2]
        # coarse width steps (RankMixer's token_dim) can miss the target from one depth: try its
        # neighbours too, but always deeper than the base (else it is the width dimension)
        depths = range(max(start + 1, value - 2), max(start + 1, value - 2) + 5)
        candidates = [(v, *_bisect_width(width, cfg, meter, base_flops, float(target), depth.overrides(cfg, v / start),
                                         s_min=1.0)) for v in depths]
        # within 5% (or the tolerance, if tighter), the depth nearest the sqrt(k) depth (balanced);
        # else the closest multiple
        good = [c for c in candidates if abs(c[2] / target - 1) <= min(tolerance, 0.05)]
        chosen = min(good, key=lambda c: (abs(c[0] - value), c[0])) if good else \
            min(candidates, key=lambda c: abs(math.log(c[2] / target)))
        overrides, multiple = chosen[1], chosen[2]
    else:
        search = _scan_integer if axes[0].integer else _bisect_width
        overrides, multiple = search(axes[0], cfg, meter, base_flops, float(target), {})[:2]
    if abs(multiple / target - 1) > tolerance:
        raise ConfigError(
            f"{where}: {model} cannot reach {target:g}x its FLOPs along {dimension!r}: the closest "
            f"configuration {overrides} gives {multiple:.2f}x (tolerance {tolerance:.0%}); drop this "
            "scale or dimension"
        )
    flops, dense, emb = meter(overrides)
    return ScaledConfig(model, preset, dimension, float(target), overrides, flops, base_flops, dense, emb)


def scaling_plan(models: Mapping[str, Sequence[str]], scales: Sequence[float], spec: FeatureSpec, *,
                 preset: str = "small", tolerance: float = 0.15, where: str = "param_scaling") -> list[ScaledConfig]:
    """Every (model, dimension, scale) configuration, all checked before anything trains.

    Errors name ``<where>.dimensions.<model>``, ``<where>.scales`` or ``<where>.flops_tolerance``.
    """
    if not isinstance(models, Mapping) or not models:
        raise ConfigError(f"{where}.dimensions must map model names to lists of dimensions, got {models!r}")
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise ConfigError(f"{where}.scales must be a non-empty list of multiples >= 1, got {scales!r}")
    for scale in scales:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 1:
            raise ConfigError(f"{where}.scales must be a non-empty list of multiples >= 1, got {list(scales)!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ConfigError(f"{where}.flops_tolerance must be a number in (0, 1), got {tolerance!r}")
    plan = []
    for model, dimensions in models.items():
        here = f"{where}.dimensions.{model}"
        if isinstance(dimensions, str) or not isinstance(dimensions, Sequence) or not dimensions \
                or not all(isinstance(d, str) for d in dimensions):
            raise ConfigError(f"{here} must be a list of dimensions, got {dimensions!r}")
        for dimension in dimensions:
            for scale in scales:
                plan.append(scaled_config(model, dimension, scale, spec, preset=preset, tolerance=tolerance, where=here))
    return plan
