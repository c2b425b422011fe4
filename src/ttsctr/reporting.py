"""Render scaling results as the paper's tables (Markdown), plots (PNG) and DVC metrics.

Input tables are the DataFrames of :func:`ttsctr.merging.scaling_table` (columns ``scale,
n_members, auc_mean, auc_std, logloss_mean, logloss_std, p_value, significant``), keyed by
ensemble name (a backbone such as ``"DCNv2"`` for Table 1, a combination such as
``"Wukong+Rankmixer"`` for Table 2).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError

__all__ = ["grouping_markdown", "metrics_json", "scale_label", "scaling_markdown", "scaling_plot"]

_REQUIRED = ("scale", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "significant")
_MISSING = "–"


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


def scaling_plot(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    title: str = "",
    bayes_auc: float | None = None,
) -> Path:
    """AUC (left) and logloss (right) against scale, log2 x-axis, error bars = std over draws.

    ``table`` is one scaling table or ``{name: table}`` (one line each). Significant AUCs get
    a filled marker. ``bayes_auc`` (e.g. the AUC of the true click probabilities on synthetic
    data) is drawn as a dashed horizontal ceiling. Uses the Agg canvas directly (no pyplot, no
    global backend switch). Written atomically: a temporary file in the target folder, then
    ``os.replace``; the format follows the suffix (``.png`` when none). Returns the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FixedFormatter, NullLocator

    tabs = _check_tables({"": table} if isinstance(table, pd.DataFrame) else table)
    if bayes_auc is not None and not (isinstance(bayes_auc, (int, float)) and math.isfinite(bayes_auc)):
        raise ConfigError(f"scaling_plot: bayes_auc must be a finite number or None, got {bayes_auc!r}")
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"

    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_auc, ax_ll = fig.subplots(1, 2)
    all_scales: set[float] = set()
    sig_labelled = False
    for name, df in tabs.items():
        d = df.sort_values("scale")
        x = d["scale"].to_numpy(dtype=float)
        all_scales.update(x.tolist())
        label = name or None
        line = ax_auc.errorbar(x, d["auc_mean"], yerr=d["auc_std"], marker="o", mfc="white", capsize=3, label=label)
        sig = d["significant"].to_numpy(dtype=bool)
        if sig.any():
            sig_label = None if sig_labelled else "significant vs backbone"
            sig_labelled = True
            ax_auc.plot(x[sig], d["auc_mean"].to_numpy()[sig], "o", color=line[0].get_color(), label=sig_label)
        ax_ll.errorbar(x, d["logloss_mean"], yerr=d["logloss_std"], marker="o", capsize=3, label=label)
    if bayes_auc is not None:
        ax_auc.axhline(float(bayes_auc), ls="--", color="0.4", lw=1.2, label=f"Bayes-optimal AUC ({bayes_auc:.4f})")
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
        ax_auc.legend(fontsize="small")
    if title:
        fig.suptitle(title)

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


def metrics_json(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float | None]]:
    """Headline AUCs for DVC metrics: ``{name: {"auc_1x": 0.7888, "auc_2x": ...}}``.

    Values are plain floats (JSON-serialisable; NaN becomes ``None``), keys follow ascending
    scale.
    """
    tabs = _check_tables(tables)
    out: dict[str, dict[str, float | None]] = {}
    for name, df in tabs.items():
        d = df.sort_values("scale")
        out[name] = {
            f"auc_{_fmt_scale(s)}x": (None if not np.isfinite(v) else float(v))
            for s, v in zip(d["scale"], d["auc_mean"].astype(float))
        }
    return out
