"""Render scaling results as the paper's tables (Markdown), plots (PNG) and DVC metrics.

Input tables are the DataFrames of :func:`ttsctr.merging.scaling_table` (columns
:data:`ttsctr.merging.SCALING_COLUMNS`), keyed by ensemble name (a backbone such as ``"DCNv2"``
for Table 1, a combination such as ``"Wukong+Rankmixer"`` for Table 2).

A report (:func:`experiment_markdown`, :func:`ensemble_markdown`) holds, per dataset: the
Bayes-optimal AUC when known and the logistic-regression reference on the same split; the
paper-layout Tables 1/2 (``*`` = significant improvement by DeLong's test); per ensemble the
mean single (1×) AUC, every scale's AUC/logloss, the number of distinct draws, the t-test and
DeLong p-values (``n/a`` where undefined), the members' mean pairwise correlation and JS
divergence and the near-identical warning; Table 3 (group sizes).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.merging.diversity import NEAR_IDENTICAL_R, NEAR_IDENTICAL_WARNING

__all__ = [
    "dataset_markdown",
    "ensemble_markdown",
    "experiment_markdown",
    "format_p",
    "grouping_markdown",
    "logistic_numbers",
    "metrics_json",
    "scale_label",
    "scaling_figure",
    "scaling_markdown",
    "scaling_plot",
    "significance_markdown",
]

_REQUIRED = ("scale", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "significant")
_DETAIL = (
    "scale", "n_members", "n_draws", "auc_mean", "auc_std", "logloss_mean", "auc_1x", "n_1x",
    "delong_auc_diff", "p_ttest", "p_delong", "significant", "pairwise_r", "pairwise_r_within", "pairwise_js",
)
_MISSING = "–"
_NA = "n/a"

LEGEND = (
    "`*`: AUC significantly above the mean single (1×) AUC by DeLong's test for correlated AUCs on "
    "this test set (two-sided, p < {alpha}); it compares the mean AUC of the scale's distinct draws with "
    "the mean AUC of all 1× units. p t-test: the paper's two-sided Welch t-test of the distinct draws' "
    "AUCs against the 1× units' AUCs (draws share members, so it is descriptive). n/a: undefined "
    "(a single distinct ensemble has no spread, or the row is the 1× reference itself)."
)


def _check_tables(tables: Any) -> dict[str, pd.DataFrame]:
    if isinstance(tables, pd.DataFrame) or not isinstance(tables, Mapping) or not tables:
        raise ConfigError("expected a non-empty mapping {ensemble name: scaling table DataFrame}")
    out = {}
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            raise ConfigError(f"table {name!r}: expected a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in _REQUIRED if c not in df.columns]
        if missing:
            raise ConfigError(f"table {name!r}: missing columns {missing} (found {list(df.columns)})")
        if df["scale"].duplicated().any():
            raise ConfigError(f"table {name!r}: duplicate scales {df['scale'][df['scale'].duplicated()].tolist()}")
        out[str(name)] = df
    return out


def _fmt_scale(scale: Any) -> str:
    s = float(scale)
    return str(int(s)) if s.is_integer() else f"{s:g}"


def scale_label(scale: Any, layout: str = "homogeneous") -> str:
    """Row label: ``"Backbone"`` for scale 1 of the homogeneous layout (Table 1), else ``"K×"``."""
    if layout == "homogeneous" and float(scale) == 1:
        return "Backbone"
    return f"{_fmt_scale(scale)}×"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def scaling_markdown(
    tables: Mapping[str, pd.DataFrame],
    layout: str = "homogeneous",
    dataset: str | None = None,
    *,
    header: bool = True,
) -> str:
    """One dataset block of Table 1 (``layout="homogeneous"``) or Table 2 (``"heterogeneous"``).

    Columns: ``Dataset`` (only when ``dataset`` is given; the name is written in the block's
    first row only, as in the paper), ``Method`` (the row label), then ``<name> AUC↑`` and
    ``<name> Logloss↓`` per ensemble in mapping order. Rows: the union of scales, ascending,
    labelled ``Backbone, 2×, 4×, ...`` (homogeneous) or ``1×, 2×, ...`` (heterogeneous). Values
    have 4 decimals; ``*`` follows the AUC of a row flagged ``significant``; a scale an
    ensemble lacks shows ``–``. ``header=False`` omits the two header lines so blocks of several
    datasets can be concatenated under one header. Ends with a newline.
    """
    if layout not in ("homogeneous", "heterogeneous"):
        raise ConfigError(f"scaling_markdown: layout must be 'homogeneous' or 'heterogeneous', got {layout!r}")
    tabs = _check_tables(tables)
    lead = (["Dataset"] if dataset is not None else []) + ["Method"]
    head = list(lead)
    for name in tabs:
        head += [f"{name} AUC↑", f"{name} Logloss↓"]
    lines = []
    if header:
        lines.append(_md_row(head))
        lines.append("|" + "|".join(["---"] * len(lead) + ["---:"] * (len(head) - len(lead))) + "|")
    scales = sorted({float(s) for df in tabs.values() for s in df["scale"]})
    indexed = {name: df.set_index(df["scale"].astype(float)) for name, df in tabs.items()}
    for i, s in enumerate(scales):
        cells = ([dataset if i == 0 else ""] if dataset is not None else []) + [scale_label(s, layout)]
        for name in tabs:
            df = indexed[name]
            if s not in df.index:
                cells += [_MISSING, _MISSING]
                continue
            row = df.loc[s]
            star = "*" if bool(row["significant"]) else ""
            cells += [f"{float(row['auc_mean']):.4f}{star}", f"{float(row['logloss_mean']):.4f}"]
        lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"




def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def format_p(p: Any) -> str:
    """A p-value for a table: ``n/a`` when undefined (NaN/None), 3 decimals from 0.001, else
    scientific; an underflowed 0 prints as ``<1e-300``."""
    v = _num(p)
    if not math.isfinite(v):
        return _NA
    if v == 0.0:
        return "<1e-300"
    return f"{v:.3f}" if v >= 0.001 else f"{v:.1e}"


def _fmt(x: Any, digits: int = 4, signed: bool = False) -> str:
    v = _num(x)
    if not math.isfinite(v):
        return _NA
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _check_finite(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number or None, got {value!r}")
    return float(value)


def logistic_numbers(logistic: Mapping[str, Any] | None, split: str = "test") -> tuple[float, float] | None:
    """``(auc, logloss)`` of the logistic-regression reference on ``split`` (``"test"`` or
    ``"validation"``) from the ``logistic_reference`` dict (``{"dataset", "test_auc",
    "test_logloss", "valid_auc", "valid_logloss", "C", "seconds"}``); ``None`` for no reference."""
    if logistic is None:
        return None
    if not isinstance(logistic, Mapping):
        raise ConfigError(f"logistic_reference: expected a mapping, got {type(logistic).__name__}")
    prefix = {"test": "test", "validation": "valid", "valid": "valid"}.get(split)
    if prefix is None:
        raise ConfigError(f"logistic_reference: no numbers for split {split!r}; expected 'test' or 'validation'")
    missing = [k for k in (f"{prefix}_auc", f"{prefix}_logloss") if k not in logistic]
    if missing:
        raise ConfigError(f"logistic_reference: missing {missing} (found {sorted(logistic)})")
    return _num(logistic[f"{prefix}_auc"]), _num(logistic[f"{prefix}_logloss"])


def dataset_markdown(
    dataset: str,
    *,
    bayes_auc: float | None = None,
    logistic: Mapping[str, Any] | None = None,
    split: str = "test",
) -> str:
    """The dataset's reference lines: Bayes-optimal AUC (when known, e.g. the planted model of
    the synthetic data) and the logistic regression on the same split; ``""`` when neither.

    A ``logistic`` dict of another dataset is refused (:class:`ConfigError`): it would be a
    stale file.
    """
    bayes = _check_finite("bayes_auc", bayes_auc)
    lines = []
    if bayes is not None:
        lines.append(f"Bayes-optimal {split} AUC (planted model): {bayes:.4f}")
    lr = logistic_numbers(logistic, split)
    if lr is not None:
        assert logistic is not None
        if logistic.get("dataset") not in (None, dataset):
            raise ConfigError(
                f"logistic_reference is for dataset {logistic.get('dataset')!r}, not {dataset!r}; "
                "rerun the training pipeline for this dataset"
            )
        c = f", C = {logistic['C']:g}" if isinstance(logistic.get("C"), (int, float)) else ""
        on = f", on the {logistic['fields']} fields" if logistic.get("fields") else ""
        lines.append(f"Logistic regression (same {split} split{c}{on}): AUC {_fmt(lr[0])}, logloss {_fmt(lr[1])}")
    return "".join(line + "\n\n" for line in lines)


def _check_detail(name: str, df: pd.DataFrame) -> None:
    missing = [c for c in _DETAIL if c not in df.columns]
    if missing:
        raise ConfigError(
            f"table {name!r}: missing columns {missing} (found {list(df.columns)}); "
            "expected a table of ttsctr.merging.scaling_table"
        )


def _first(df: pd.DataFrame, col: str) -> float:
    return _num(df[col].iloc[0]) if len(df) else float("nan")


def significance_markdown(
    table: pd.DataFrame,
    name: str,
    *,
    layout: str = "homogeneous",
    reference: str | None = None,
    diversity_split: str | None = None,
    heading: str = "###",
) -> str:
    """One ensemble's detail block: the 1× reference, diversity, the warning and, per scale,
    members, distinct draws, AUC (± sd), logloss, ΔAUC vs 1×, both p-values and the mark.

    ``reference`` names the ensemble of independently trained members that served as the 1×
    sample (grouped ensembles), ``None`` when the ensemble's own units did. ``diversity_split``
    says where the pairwise numbers were measured. ``n/a`` stands for undefined values.
    """
    _check_detail(name, table)
    d = table.sort_values("scale")
    if reference:
        what = f"independently trained single units of `{reference}`"
    elif layout == "heterogeneous":
        what = "units (one member of each architecture, merged)"
    else:
        what = "single members"
    lines = [f"{heading} {name}\n"]
    lines.append(f"- 1× reference: mean AUC {_fmt(_first(d, 'auc_1x'))} over {int(_first(d, 'n_1x'))} {what}")
    where = f" ({diversity_split} split)" if diversity_split else ""
    r, r_within, js = _first(d, "pairwise_r"), _first(d, "pairwise_r_within"), _first(d, "pairwise_js")
    div = f"- members{where}: mean pairwise correlation of logits r = {_fmt(r)}"
    if layout == "heterogeneous" and math.isfinite(r_within):
        div += f" (within an architecture {_fmt(r_within)})"
    div += f", mean pairwise JS divergence {_fmt(js, 6)} nats"
    lines.append(div)
    if math.isfinite(r) and r > NEAR_IDENTICAL_R:
        lines.append(f"- **Warning: {NEAR_IDENTICAL_WARNING}** (mean pairwise r = {r:.4f} > {NEAR_IDENTICAL_R})")
    lines.append("")
    with_gauc = "gauc_mean" in d.columns  # datasets with a user field (group AUC per user)
    lines.append(_md_row(["Method", "Members", "Distinct draws", "AUC↑", "AUC sd", *(["GAUC↑"] if with_gauc else []),
                          "Logloss↓", "ΔAUC vs 1×", "p t-test", "p DeLong", "Sig."]))
    lines.append("|---|---:|---:|---:|---:|" + ("---:|" if with_gauc else "") + "---:|---:|---:|---:|:---:|")
    for row in d.itertuples(index=False):
        lines.append(_md_row([
            scale_label(row.scale, layout) if not reference else f"{_fmt_scale(row.scale)}×",
            str(int(row.n_members)),
            str(int(row.n_draws)),
            _fmt(row.auc_mean),
            _fmt(row.auc_std),
            *([_fmt(row.gauc_mean)] if with_gauc else []),
            _fmt(row.logloss_mean),
            _fmt(row.delong_auc_diff, signed=True),
            format_p(row.p_ttest),
            format_p(row.p_delong),
            "*" if bool(row.significant) else "",
        ]))
    return "\n".join(lines) + "\n"


def ensemble_markdown(
    table: pd.DataFrame,
    name: str,
    *,
    layout: str = "homogeneous",
    dataset: str,
    bayes_auc: float | None = None,
    logistic: Mapping[str, Any] | None = None,
    split: str = "test",
    alpha: float = 0.05,
    reference: str | None = None,
    diversity_split: str | None = None,
) -> str:
    """One ensemble's ``scaling.md``: dataset reference lines, its paper-layout block, the
    legend and its detail block (:func:`significance_markdown`)."""
    parts = [f"# {name} on {dataset}\n", dataset_markdown(dataset, bayes_auc=bayes_auc, logistic=logistic, split=split)]
    parts.append(scaling_markdown({name: table}, layout=layout, dataset=dataset))
    parts.append(LEGEND.format(alpha=alpha) + "\n")
    parts.append(significance_markdown(table, name, layout=layout, reference=reference,
                                       diversity_split=diversity_split, heading="##"))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def experiment_markdown(
    dataset: str,
    tables: Mapping[str, pd.DataFrame],
    layouts: Mapping[str, str],
    *,
    bayes_auc: float | None = None,
    logistic: Mapping[str, Any] | None = None,
    split: str = "test",
    alpha: float = 0.05,
    references: Mapping[str, str | None] | None = None,
    grouping: Mapping[str, Mapping[int, int]] | None = None,
    registered: Sequence[Mapping[str, Any]] = (),
    diversity_split: str | None = None,
) -> str:
    """The whole report of one dataset (``scaling_tables.md``).

    ``tables`` maps a display name to its scaling table; ``layouts`` gives each name's layout
    (``homogeneous``: Table 1, ``heterogeneous``: Table 2); ``references`` the ensemble that
    served as 1× sample of a grouped ensemble; ``grouping`` Table 3 (``{name: {scale:
    group size}}``); ``registered`` the MLflow URIs (``{"uri", "scale"}``).
    """
    tabs = _check_tables(tables)
    for name in tabs:
        if layouts.get(name) not in ("homogeneous", "heterogeneous"):
            raise ConfigError(f"experiment_markdown: no layout 'homogeneous'/'heterogeneous' for {name!r}")
    refs = dict(references or {})
    parts = [f"# Test-time scaling on {dataset}\n",
             dataset_markdown(dataset, bayes_auc=bayes_auc, logistic=logistic, split=split)]
    for layout, title in (("homogeneous", "Table 1: homogeneous"), ("heterogeneous", "Table 2: heterogeneous")):
        chosen = {n: t for n, t in tabs.items() if layouts[n] == layout}
        if chosen:
            parts.append(f"## {title}\n\n" + scaling_markdown(chosen, layout=layout, dataset=dataset))
    parts.append(LEGEND.format(alpha=alpha) + "\n")
    details = [significance_markdown(t, n, layout=layouts[n], reference=refs.get(n), diversity_split=diversity_split)
               for n, t in tabs.items()]
    parts.append("## Significance and diversity per ensemble\n\n" + "\n".join(details))
    if grouping:
        parts.append("## Table 3: group size M/K per scale\n\n" + grouping_markdown({dataset: grouping}))
    if registered:
        parts.append("## Registered ensembles\n\n"
                     + "\n".join(f"- {r['uri']} (scale {r['scale']}×"
                                 + (f", version {r['version']})" if r.get("version") else ")") for r in registered)
                     + "\n")
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def grouping_markdown(config: Mapping[str, Any]) -> str:
    """Table 3: group size ``M/K`` (members per jointly trained group) per ensemble and scale.

    ``config`` is ``{dataset: {model: {scale: group_size}}}`` (columns ``Dataset, Model``) or
    ``{model: {scale: group_size}}`` (column ``Model`` only). Scale columns ``1×, 2×, ...`` are
    the union of scales, ascending; a missing entry shows ``–``. Every group size must be a
    positive integer dividing its scale (:class:`ConfigError` otherwise).
    """
    if not isinstance(config, Mapping) or not config:
        raise ConfigError("grouping_markdown: expected a non-empty mapping")
    first = next(iter(config.values()))
    nested = bool(isinstance(first, Mapping) and first and isinstance(next(iter(first.values())), Mapping))
    blocks: dict[str | None, Mapping[str, Any]] = dict(config) if nested else {None: config}
    scales: set[int] = set()
    for ds, models in blocks.items():
        if not isinstance(models, Mapping):
            raise ConfigError(f"grouping_markdown: dataset {ds!r} must map model -> {{scale: group size}}")
        for model, per_scale in models.items():
            if not isinstance(per_scale, Mapping):
                raise ConfigError(f"grouping_markdown: {model!r} must map scale -> group size, got {per_scale!r}")
            for scale, g in per_scale.items():
                try:
                    si, gi = int(scale), int(g)
                except (TypeError, ValueError):
                    raise ConfigError(f"grouping_markdown: {model!r} scale {scale!r}: group size {g!r} is not an integer") from None
                if si != float(scale) or gi != float(g) or si < 1 or gi < 1 or si % gi:
                    where = f"{ds}/{model}" if ds is not None else str(model)
                    raise ConfigError(
                        f"grouping_markdown: {where} at scale {scale}: group size {g} must be a positive integer "
                        "dividing the scale"
                    )
                scales.add(si)
    cols = sorted(scales)
    lead = (["Dataset"] if nested else []) + ["Model"]
    lines = [
        _md_row(lead + [f"{s}×" for s in cols]),
        "|" + "|".join(["---"] * len(lead) + ["---:"] * len(cols)) + "|",
    ]
    for ds, models in blocks.items():
        for i, (model, per_scale) in enumerate(models.items()):
            by = {int(k): int(v) for k, v in per_scale.items()}
            cells = ([str(ds) if i == 0 else ""] if nested else []) + [str(model)]
            cells += [str(by[s]) if s in by else _MISSING for s in cols]
            lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"



# Reference AUCs (Bayes-optimal, logistic regression) within this fraction of the data's span
# (0.5: the axis grows to at most 1.5 times the span) are drawn as lines; farther ones are notes.
_NEAR_FRACTION = 0.5
_PAD_FRACTION = 0.1  # margin around the plotted data, as a fraction of their span
_MIN_PAD = 5e-4  # ... and at least this much (a flat curve, a single scale)
_NOTE_BAND = 0.02  # room in the axes for the notes: this fraction of the axes height ...
_NOTE_LINE = 0.075  # ... plus this much per line of text


def _bar_rows(d: pd.DataFrame, sd: np.ndarray) -> np.ndarray:
    """Rows that get an error bar: at least two distinct draws (``n_draws > 1``) and a finite
    sd; a scale resting on one draw has no spread (its sd is NaN). Tables without ``n_draws``:
    where the sd is finite and positive."""
    finite = np.isfinite(sd)
    if "n_draws" in d.columns:
        draws = pd.to_numeric(d["n_draws"], errors="coerce").to_numpy(dtype=float)
        return finite & (np.nan_to_num(draws, nan=0.0) > 1)
    return finite & (sd > 0)


def _limits(values: Sequence[float], top_lines: int = 0, bottom_lines: int = 0) -> tuple[float, float] | None:
    """y-limits around ``values`` (NaNs dropped): their range, a margin of ``_PAD_FRACTION``
    of the span (at least ``_MIN_PAD``) and, above or below, a band for that many note lines
    (so a note never covers a point). None when nothing is finite."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    pad = max(_PAD_FRACTION * (hi - lo), _MIN_PAD)
    f_top = _NOTE_BAND + _NOTE_LINE * top_lines if top_lines else 0.0
    f_bot = _NOTE_BAND + _NOTE_LINE * bottom_lines if bottom_lines else 0.0
    height = (hi - lo + 2 * pad) / (1.0 - f_top - f_bot)
    return lo - pad - f_bot * height, hi + pad + f_top * height


def _is_near(value: float, lo: float, hi: float) -> bool:
    """Whether a reference AUC is close enough to the data ``[lo, hi]`` to be drawn as a line."""
    reach = _NEAR_FRACTION * max(hi - lo, 2 * _MIN_PAD)
    return lo - reach <= value <= hi + reach


def scaling_figure(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    title: str = "",
    bayes_auc: float | None = None,
    lr_auc: float | None = None,
) -> Any:
    """The scaling plot as a matplotlib ``Figure`` (Agg canvas, no pyplot): AUC (left) and
    logloss (right) against scale on a log2 x-axis.

    Error bars (± sd) only where a scale rests on at least two distinct draws (``n_draws > 1``
    and a finite sd; tables without ``n_draws``: where the sd is finite and positive). Open
    markers are not significant, filled ones significantly above the 1× AUC (DeLong); a dotted
    line marks each ensemble's mean 1× AUC (``auc_1x``), the reference of the tests.

    Both axes are scaled to the plotted data (means, ± sd where a bar is drawn, and on the AUC
    panel the 1× reference) with a margin of a tenth of their span. The Bayes-optimal AUC
    (``bayes_auc``) and the logistic-regression AUC (``lr_auc``) are drawn as labelled
    horizontal lines only when they lie within half the data's span of the data (then they
    join the limits); otherwise they are written as a note at the axis edge they lie beyond
    ("↑ ..., above the axis" at the top, "↓ ..., below the axis" at the bottom), in a band kept
    free of data, so that a ceiling at 0.85 does not flatten gains of 0.01 at 0.79.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    tabs = _check_tables({"": table} if isinstance(table, pd.DataFrame) else table)
    bayes = _check_finite("scaling_plot: bayes_auc", bayes_auc)
    lr = _check_finite("scaling_plot: lr_auc", lr_auc)

    fig = Figure(figsize=(10.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax_auc, ax_ll = fig.subplots(1, 2)
    all_scales: set[float] = set()
    auc_extent: list[float] = []
    ll_extent: list[float] = []
    colors: list[str] = []
    any_sig = any_ref = False
    for name, df in tabs.items():
        d = df.sort_values("scale")
        x = d["scale"].to_numpy(dtype=float)
        all_scales.update(x[np.isfinite(x)].tolist())
        label = name or None
        auc = d["auc_mean"].to_numpy(dtype=float)
        auc_sd = d["auc_std"].to_numpy(dtype=float)
        ll = d["logloss_mean"].to_numpy(dtype=float)
        ll_sd = d["logloss_std"].to_numpy(dtype=float)
        auc_bars = _bar_rows(d, auc_sd)
        ll_bars = _bar_rows(d, ll_sd)
        (line,) = ax_auc.plot(x, auc, marker="o", mfc="white", label=label)
        color = line.get_color()
        colors.append(color)
        if auc_bars.any():
            ax_auc.errorbar(x[auc_bars], auc[auc_bars], yerr=auc_sd[auc_bars], fmt="none", ecolor=color, capsize=3)
        sig = d["significant"].fillna(False).to_numpy(dtype=bool)
        if sig.any():
            any_sig = True
            ax_auc.plot(x[sig], auc[sig], "o", color=color)
        auc_extent += [*auc, *(auc + auc_sd)[auc_bars], *(auc - auc_sd)[auc_bars]]
        if "auc_1x" in d.columns and np.isfinite(d["auc_1x"].iloc[0]):
            ref = float(d["auc_1x"].iloc[0])
            any_ref = True
            ax_auc.axhline(ref, ls=":", lw=1.0, color=color)
            auc_extent.append(ref)
        ax_ll.plot(x, ll, marker="o", color=color, label=label)
        if ll_bars.any():
            ax_ll.errorbar(x[ll_bars], ll[ll_bars], yerr=ll_sd[ll_bars], fmt="none", ecolor=color, capsize=3)
        ll_extent += [*ll, *(ll + ll_sd)[ll_bars], *(ll - ll_sd)[ll_bars]]

    data = [v for v in auc_extent if math.isfinite(v)]
    above: list[str] = []
    below: list[str] = []
    for value, text, style in (
        (bayes, f"Bayes-optimal AUC {bayes:.4f} (planted model)" if bayes is not None else "", "--"),
        (lr, f"logistic regression AUC {lr:.4f}" if lr is not None else "", "-."),
    ):
        if value is None:
            continue
        if not data or _is_near(value, min(data), max(data)):
            ax_auc.axhline(value, ls=style, lw=1.0, color="0.45", label=text)
            auc_extent.append(value)
        elif value > max(data):
            above.append(f"↑ {text}, above the axis")
        else:
            below.append(f"↓ {text}, below the axis")
    note = {"transform": ax_auc.transAxes, "ha": "left", "fontsize": "small", "color": "0.3"}
    if above:
        ax_auc.text(0.02, 0.985, "\n".join(above), va="top", **note)
    if below:
        ax_auc.text(0.02, 0.015, "\n".join(below), va="bottom", **note)
    auc_lim = _limits(auc_extent, top_lines=len(above), bottom_lines=len(below))
    if auc_lim is not None:
        ax_auc.set_ylim(*auc_lim)
    ll_lim = _limits(ll_extent)
    if ll_lim is not None:
        ax_ll.set_ylim(*ll_lim)

    ticks = sorted(all_scales)
    for ax, ylabel in ((ax_auc, "AUC ↑"), (ax_ll, "Logloss ↓")):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FixedFormatter([f"{_fmt_scale(s)}×" for s in ticks]))
        ax.xaxis.set_minor_locator(NullLocator())
        if ticks:
            ax.set_xlim(min(ticks) / 1.4, max(ticks) * 1.4)
        ax.set_xlabel("scale (members merged)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    # the legend goes below the panels (inside it would cover points or the notes): the
    # ensembles, then what markers and dotted lines mean (in the ensemble's colour when there is
    # one, else grey), then the reference AUCs drawn as lines
    handles, labels = ax_auc.get_legend_handles_labels()
    ensembles = [(h, lab) for h, lab in zip(handles, labels) if lab in tabs]
    references = [(h, lab) for h, lab in zip(handles, labels) if lab not in tabs]
    key = colors[0] if len(colors) == 1 else "0.3"
    if any_sig:
        ensembles.append((Line2D([], [], ls="none", marker="o", color=key), "significant vs 1× (DeLong)"))
    if any_ref:
        ensembles.append((Line2D([], [], ls=":", lw=1.0, color=key), "mean 1× AUC (reference)"))
    entries = ensembles + references
    if entries:
        fig.legend(*zip(*entries), loc="outside lower center", ncols=min(len(entries), 4), fontsize="small",
                   frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def scaling_plot(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    title: str = "",
    bayes_auc: float | None = None,
    lr_auc: float | None = None,
) -> Path:
    """Write :func:`scaling_figure` to ``path``. Written atomically: a temporary file in the
    target folder, then ``os.replace``; the format follows the suffix (``.png`` when none).
    Returns the path."""
    fig = scaling_figure(table, title=title, bayes_auc=bayes_auc, lr_auc=lr_auc)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=120)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = _num(v)
    return f if math.isfinite(f) else None


def metrics_json(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """DVC metrics per ensemble, JSON-serialisable, keys by ascending scale; per-scale values that are
    undefined (NaN: the 1× row's tests, a t-test on one distinct draw) are left out.

    Per scale ``K``: ``auc_Kx``, ``logloss_Kx`` and, for tables of
    :func:`~ttsctr.merging.scaling_table`, ``n_draws_Kx``, ``p_ttest_Kx``, ``p_delong_Kx``,
    ``significant_Kx``; per ensemble ``auc_single`` (mean 1× AUC), ``n_single``,
    ``pairwise_r``, ``pairwise_r_within``, ``pairwise_js`` and ``near_identical``.
    """
    tabs = _check_tables(tables)
    out: dict[str, dict[str, Any]] = {}
    for name, df in tabs.items():
        d = df.sort_values("scale")
        entry: dict[str, Any] = {}
        for key in ("auc_mean", "gauc_mean", "logloss_mean", "n_draws", "p_ttest", "p_delong", "significant"):
            if key not in d.columns:
                continue
            prefix = key.removesuffix("_mean")
            for s, v in zip(d["scale"], d[key]):
                value = _json_value(v)
                if value is not None:  # an undefined test ("n/a") is no metric; DVC drops nulls anyway
                    entry[f"{prefix}_{_fmt_scale(s)}x"] = value
        for col, key in (("auc_1x", "auc_single"), ("n_1x", "n_single"), ("pairwise_r", "pairwise_r"),
                         ("pairwise_r_within", "pairwise_r_within"), ("pairwise_js", "pairwise_js")):
            if col in d.columns and len(d):
                entry[key] = _json_value(d[col].iloc[0])
        if "pairwise_r" in d.columns and len(d):
            r = _num(d["pairwise_r"].iloc[0])
            entry["near_identical"] = bool(math.isfinite(r) and r > NEAR_IDENTICAL_R)
        out[name] = entry
    return out
