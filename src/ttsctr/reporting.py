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
        lines.append(f"Logistic regression (same {split} split{c}): AUC {_fmt(lr[0])}, logloss {_fmt(lr[1])}")
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
    lines.append(_md_row(["Method", "Members", "Distinct draws", "AUC↑", "AUC sd", "Logloss↓", "ΔAUC vs 1×",
                          "p t-test", "p DeLong", "Sig."]))
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for row in d.itertuples(index=False):
        lines.append(_md_row([
            scale_label(row.scale, layout) if not reference else f"{_fmt_scale(row.scale)}×",
            str(int(row.n_members)),
            str(int(row.n_draws)),
            _fmt(row.auc_mean),
            _fmt(row.auc_std),
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
                     + "\n".join(f"- {r['uri']} (scale {r['scale']}×)" for r in registered) + "\n")
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



def scaling_figure(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    title: str = "",
    bayes_auc: float | None = None,
    lr_auc: float | None = None,
) -> Any:
    """The scaling plot as a matplotlib ``Figure`` (Agg canvas, no pyplot): AUC (left) and
    logloss (right) against scale on a log2 x-axis.

    Error bars (± sd) only where a scale rests on at least two distinct draws (``n_draws``;
    tables without it: where the sd is finite and positive). Significant AUCs get a filled
    marker; a dotted line marks each ensemble's mean 1× AUC (``auc_1x``), the reference of the
    tests. The AUC axis is scaled to the plotted data, never stretched to ``bayes_auc`` or
    ``lr_auc``: those are written as text in the panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    tabs = _check_tables({"": table} if isinstance(table, pd.DataFrame) else table)
    bayes = _check_finite("scaling_plot: bayes_auc", bayes_auc)
    lr = _check_finite("scaling_plot: lr_auc", lr_auc)

    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_auc, ax_ll = fig.subplots(1, 2)
    all_scales: set[float] = set()
    auc_extent: list[float] = []
    sig_labelled = False
    for name, df in tabs.items():
        d = df.sort_values("scale")
        x = d["scale"].to_numpy(dtype=float)
        all_scales.update(x.tolist())
        label = name or None
        auc = d["auc_mean"].to_numpy(dtype=float)
        auc_sd = d["auc_std"].to_numpy(dtype=float)
        ll = d["logloss_mean"].to_numpy(dtype=float)
        ll_sd = d["logloss_std"].to_numpy(dtype=float)
        if "n_draws" in d.columns:
            bars = d["n_draws"].to_numpy() >= 2
        else:
            bars = np.isfinite(auc_sd) & (auc_sd > 0)
        (line,) = ax_auc.plot(x, auc, marker="o", mfc="white", label=label)
        color = line.get_color()
        if bars.any():
            ax_auc.errorbar(x[bars], auc[bars], yerr=auc_sd[bars], fmt="none", ecolor=color, capsize=3)
        sig = d["significant"].to_numpy(dtype=bool)
        if sig.any():
            sig_label = None if sig_labelled else "significant vs 1× (DeLong)"
            sig_labelled = True
            ax_auc.plot(x[sig], auc[sig], "o", color=color, label=sig_label)
        auc_extent += list(auc) + list((auc + auc_sd)[bars]) + list((auc - auc_sd)[bars])
        if "auc_1x" in d.columns and np.isfinite(d["auc_1x"].iloc[0]):
            ref = float(d["auc_1x"].iloc[0])
            ax_auc.axhline(ref, ls=":", lw=1.0, color=color)
            auc_extent.append(ref)
        ax_ll.plot(x, ll, marker="o", color=color, label=label)
        if bars.any():
            ax_ll.errorbar(x[bars], ll[bars], yerr=ll_sd[bars], fmt="none", ecolor=color, capsize=3)
    finite = [v for v in auc_extent if math.isfinite(v)]
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(0.15 * (hi - lo), 5e-4)
        ax_auc.set_ylim(lo - pad, hi + pad)
    notes = []
    if bayes is not None:
        notes.append(f"Bayes-optimal AUC {bayes:.4f}")
    if lr is not None:
        notes.append(f"logistic regression AUC {lr:.4f}")
    if notes:
        ax_auc.text(0.02, 0.98, "\n".join(notes), transform=ax_auc.transAxes, ha="left", va="top",
                    fontsize="small", color="0.3")
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
    if ax_auc.get_legend_handles_labels()[1]:
        ax_auc.legend(fontsize="small", loc="lower right")
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
        for key in ("auc_mean", "logloss_mean", "n_draws", "p_ttest", "p_delong", "significant"):
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
