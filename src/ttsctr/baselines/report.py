"""Markdown in the paper's layout, figures and MLflow logging of the baseline comparisons.

Every comparison produces a long-form table (CSV), a Markdown rendering laid out like the
paper's table or figure it reproduces, and a PNG. :func:`log_comparison` logs all three and
headline metrics into a nested MLflow run ``baselines.<comparison>`` when tracking is on.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from ttsctr.reporting import format_p  # noqa: E402

__all__ = ["markdown_table", "param_scaling_markdown", "param_scaling_figure", "width_scaling_markdown",
           "width_scaling_figure", "model_merging_markdown", "model_merging_figure", "orthogonality_markdown",
           "orthogonality_figure", "training_free_markdown", "training_free_figure", "efficiency_markdown",
           "efficiency_figure", "figure_image", "log_comparison", "publish"]


def _cell(value: Any, fmt: str | Callable[[Any], str] | None) -> str:
    if callable(fmt):
        return fmt(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return format(value, fmt or ".4f")
    return str(value)


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None,
                   formats: Mapping[str, str | Callable[[Any], str]] | None = None) -> str:
    """A GitHub Markdown table of ``df[columns]``; floats as ``formats[col]`` (default 4 decimals)."""
    columns = list(columns or df.columns)
    formats = dict(formats or {})
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in df[columns].iterrows():
        lines.append("| " + " | ".join(_cell(row[c], formats.get(c)).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def figure_image(fig: plt.Figure) -> Image.Image:
    """The figure as a PIL image (what Kedro's ``pillow.ImageDataset`` saves); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer)
    image.load()
    return image


def _header(title: str, dataset: str, notes: Sequence[str]) -> str:
    return f"# {title} — {dataset}\n\n" + "".join(f"{n}\n\n" for n in notes)


# ----------------------------------------------------------------------------- parameter scaling


def param_scaling_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    """Fig. 3 as a table (AUC / logloss per FLOPs multiple, each method) and Fig. 4a (tuning cost)."""
    out = [_header("Parameter scaling (tuned with Optuna) vs test-time scaling at equal FLOPs", dataset, notes)]
    for model, d in table.groupby("model", sort=False):
        out.append(f"## {model}\n")
        d = d.sort_values(["scale", "method"])
        out.append(markdown_table(d, ["method", "scale", "flops_multiple", "test_auc", "test_logloss", "valid_auc",
                                      "trials", "pruned", "trials_until_best", "tuning_seconds", "p_value"],
                                  {"scale": lambda v: f"{v:g}×", "flops_multiple": ".2f", "tuning_seconds": ".0f",
                                   "p_value": format_p}))
        out.append("")
    return "\n".join(out)


def param_scaling_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(2, len(models), figsize=(4.2 * len(models), 6.5), squeeze=False)
    for j, model in enumerate(models):
        d = table[table["model"] == model]
        for method, m in d.groupby("method", sort=False):
            m = m.sort_values("flops_multiple")
            style = dict(marker="o", lw=2.2, color="black") if method == "tts" else dict(marker="s", lw=1.2)
            axes[0, j].plot(m["flops_multiple"], m["test_auc"], label=method, **style)
            axes[1, j].plot(m["scale"], m["tuning_seconds"], label=method, **style)
        axes[0, j].set_xscale("log", base=2)
        axes[1, j].set_xscale("log", base=2)
        axes[0, j].set_title(f"{model} ({dataset})")
        axes[0, j].set_xlabel("FLOPs multiple")
        axes[0, j].set_ylabel("test AUC")
        axes[1, j].set_xlabel("scale")
        axes[1, j].set_ylabel("tuning seconds")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    return figure_image(fig)


# ----------------------------------------------------------------------------- width scaling


def width_scaling_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    """Table 4: rows = configurations, columns = ME / D-MoE / PM (AUC, logloss); * = PM significant."""
    from scipy.stats import ttest_rel

    d = table.groupby(["configuration", "method"], sort=False)[["test_auc", "test_logloss"]].mean()
    lines = ["| Model | ME AUC | ME Logloss | D-MoE AUC | D-MoE Logloss | PM AUC | PM Logloss | PM vs | p | test |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for config in dict.fromkeys(table["configuration"]):
        c = table[table["configuration"] == config]
        pm = c[c["method"] == "PM"].sort_values("seed")
        if len(pm) == 1:  # one draw: DeLong on the test rows
            p, test, versus = float(pm["p_value"].iloc[0]), "DeLong", pm["pm_vs"].iloc[0]
        else:  # several draws: paired t-test over draws against each draw's better baseline
            versus = pm["pm_vs"].mode().iloc[0]
            other = [float(c[(c["seed"] == s) & (c["method"] == v)]["test_auc"].iloc[0])
                     for s, v in zip(pm["seed"], pm["pm_vs"])]
            p, test = float(ttest_rel(pm["test_auc"].to_numpy(), np.asarray(other)).pvalue), f"paired t ({len(pm)} draws)"
        cells = [config]
        for method in ("ME", "D-MoE", "PM"):
            r = d.loc[(config, method)]
            star = "*" if method == "PM" and p < 0.05 else ""
            cells += [f"{r['test_auc']:.4f}{star}", f"{r['test_logloss']:.4f}"]
        cells += [versus, format_p(p), test]
        lines.append("| " + " | ".join(cells) + " |")
    return _header("Width scaling vs prediction merging (Table 4)", dataset, notes) + "\n".join(lines) + "\n"


def width_scaling_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    d = table.groupby(["configuration", "method"], sort=False)["test_auc"].mean().unstack()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    d[["ME", "D-MoE", "PM"]].plot.bar(ax=ax, rot=0)
    lo, hi = float(d.min().min()), float(d.max().max())
    ax.set_ylim(lo - 0.5 * (hi - lo + 1e-4), hi + 0.3 * (hi - lo + 1e-4))
    ax.set_ylabel("test AUC")
    ax.set_title(f"Width scaling vs PM ({dataset})")
    fig.tight_layout()
    return figure_image(fig)


# ----------------------------------------------------------------------------- model merging


def model_merging_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    """Table 6: rows = method × K, columns = backbones (AUC, logloss)."""
    models = list(dict.fromkeys(table["model"]))
    header = "| Method | " + " | ".join(f"{m} AUC | {m} Logloss" for m in models) + " |"
    lines = [header, "|---|" + "---|---|" * len(models)]
    keys = list(dict.fromkeys(zip(table["method"], table["members"])))
    for method, k in keys:
        label = "Backbone" if method == "backbone" else f"{k}×-{method}"
        cells = [label]
        for m in models:
            r = table[(table["model"] == m) & (table["method"] == method) & (table["members"] == k)]
            cells += [f"{r['test_auc'].iloc[0]:.4f}", f"{r['test_logloss'].iloc[0]:.4f}"] if len(r) else ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return _header("Model (weight) merging vs prediction merging (Table 6)", dataset, notes) + "\n".join(lines) + "\n"


def _model_panels(table: pd.DataFrame, dataset: str, xlabel: str, draw: Callable[[Any, pd.DataFrame], None]) -> Image.Image:
    """One panel per model (log2 x axis, test AUC): ``draw(axes, rows of that model)`` plots into it."""
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        draw(ax, table[table["model"] == model])
        ax.set_xscale("log", base=2)
        ax.set_title(f"{model} ({dataset})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test AUC")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_image(fig)


def model_merging_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    def draw(ax: Any, d: pd.DataFrame) -> None:
        for method, m in d[d["method"] != "backbone"].groupby("method", sort=False):
            ax.plot(m["members"], m["test_auc"], marker="o", label=method)
        base = d[d["method"] == "backbone"]["test_auc"]
        if len(base):
            ax.axhline(float(base.iloc[0]), color="grey", ls="--", lw=1, label="backbone")

    return _model_panels(table, dataset, "members K", draw)


# ----------------------------------------------------------------------------- orthogonality


def orthogonality_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    """Table 5: per model, Base and Test-time K× at each parameter scale, gains in 1e-4 in parentheses."""
    out = [_header("Test-time scaling on top of parameter scaling (Table 5)", dataset, notes)]
    for model, d in table.groupby("model", sort=False):
        d = d.sort_values("param_scale")
        k = int(d["tts_members"].iloc[0])
        head = "| Scaling | " + " | ".join(f"Param {s:g}× AUC | Param {s:g}× Logloss" for s in d["param_scale"]) + " |"
        lines = [f"## {model}\n", head, "|---|" + "---|---|" * len(d)]
        lines.append("| Base | " + " | ".join(f"{r.base_auc:.4f} | {r.base_logloss:.4f}" for r in d.itertuples()) + " |")
        lines.append(f"| Test-time {k}× | " + " | ".join(
            f"{r.tts_auc:.4f} ({r.auc_gain * 1e4:+.0f}) | {r.tts_logloss:.4f} ({r.logloss_gain * 1e4:+.0f})"
            for r in d.itertuples()) + " |")
        lines.append("| dimension | " + " | ".join(f"{r.dimension} | p {format_p(r.p_value)}" for r in d.itertuples()) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def orthogonality_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    def draw(ax: Any, d: pd.DataFrame) -> None:
        d = d.sort_values("param_scale")
        ax.plot(d["param_scale"], d["base_auc"], marker="s", label="Base")
        ax.plot(d["param_scale"], d["tts_auc"], marker="o", label=f"Test-time {int(d['tts_members'].iloc[0])}×")

    return _model_panels(table, dataset, "parameter scale", draw)


# ----------------------------------------------------------------------------- training-free


def training_free_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    """Fig. 7 as a matrix (diagonal: overlap area; above: correlation; below: overlap change after
    merging) and Fig. 8 (AUC gain of every merged pair)."""
    from ttsctr.baselines.training_free import source_matrix_wide

    wide = source_matrix_wide(table.drop(columns=["dataset", "model"], errors="ignore"), "paper")
    gains = source_matrix_wide(table.drop(columns=["dataset", "model"], errors="ignore"), "auc_gain")
    out = [_header("Training-free test-time scaling vs training-based diversity (Figs. 7–8)", dataset, notes)]
    out.append("Diagonal: overlap area; above: prediction correlation; below: change in overlap after merging the pair.\n")
    out.append(markdown_table(wide.reset_index().rename(columns={"index": "source"}),
                              formats={c: ".4f" for c in wide.columns}))
    out.append("\nAUC gain of the merged pair over its better member:\n")
    out.append(markdown_table(gains.reset_index().rename(columns={"index": "source"}),
                              formats={c: "+.5f" for c in gains.columns}))
    return "\n".join(out)


def training_free_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    from ttsctr.baselines.training_free import source_matrix_wide

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, value, title in ((axes[0], "correlation", "prediction correlation"),
                             (axes[1], "auc_gain", "AUC gain of the merged pair")):
        wide = source_matrix_wide(table.drop(columns=["dataset", "model"], errors="ignore"), value)
        im = ax.imshow(wide.to_numpy(dtype=float), cmap="viridis")
        ax.set_xticks(range(len(wide.columns)), wide.columns, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(wide.index)), wide.index, fontsize=8)
        for (i, j), v in np.ndenumerate(wide.to_numpy(dtype=float)):
            ax.text(j, i, f"{v:.4f}" if value == "correlation" else f"{v * 1e4:+.1f}", ha="center", va="center",
                    fontsize=7, color="white")
        ax.set_title(f"{title} ({dataset})")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return figure_image(fig)


# ----------------------------------------------------------------------------- efficiency


def efficiency_markdown(table: pd.DataFrame, dataset: str, notes: Sequence[str] = ()) -> str:
    out = [_header("Efficiency: parameter scaling vs test-time scaling (Fig. 4b–c)", dataset, notes)]
    out.append(markdown_table(table, [c for c in table.columns if c not in ("dataset", "data_version")],
                              {"seconds_per_epoch": ".2f", "latency_p50_ms": ".2f", "latency_p90_ms": ".2f",
                               "latency_mean_ms": ".2f", "flops_multiple": ".2f", "train_ratio_vs_param": ".2f",
                               "latency_ratio_vs_param": ".2f"}))
    return "\n".join(out)


def efficiency_figure(table: pd.DataFrame, dataset: str) -> Image.Image:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = [f"{r.model}\n{r.method}" for r in table.itertuples()]
    axes[0].bar(labels, table["seconds_per_epoch"])
    axes[0].set_ylabel("training seconds per epoch")
    axes[1].bar(labels, table["latency_p50_ms"])
    axes[1].set_ylabel("inference ms per batch (p50)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(dataset)
    fig.tight_layout()
    return figure_image(fig)


# ----------------------------------------------------------------------------- tracking


def publish(name: str, table: pd.DataFrame, dataset: str, notes: Sequence[str], params: Mapping[str, Any],
            metrics: Mapping[str, float]) -> tuple[str, Image.Image]:
    """The comparison's Markdown and figure (``<name>_markdown`` / ``<name>_figure`` of this module),
    logged with ``metrics`` by :func:`log_comparison`; returns (markdown, image)."""
    markdown = globals()[f"{name}_markdown"](table, dataset, notes)
    image = globals()[f"{name}_figure"](table, dataset)
    log_comparison(name, dataset, table, markdown, image, params, metrics)
    return markdown, image


def log_comparison(name: str, dataset: str, table: pd.DataFrame, markdown: str, image: Image.Image,
                   params: Mapping[str, Any], metrics: Mapping[str, float]) -> str | None:
    """A nested MLflow run ``baselines.<name>`` with flat params, metrics and the three artefacts;
    returns its run id (None when tracking is off)."""
    from ttsctr import tracking

    if not tracking.tracking_active():
        return None
    import mlflow

    tags = {"comparison": name, "dataset": dataset}
    if "data_version" in table.columns and table["data_version"].nunique() == 1:
        tags["data_version"] = str(table["data_version"].iloc[0])  # the report links tables to their run by it
    with tracking.nested_run(f"baselines.{name}", tags=tags) as run:
        tracking.log_flat_params(dict(params))
        mlflow.log_metrics(tracking.finite_metrics(metrics))
        mlflow.log_text(markdown, f"{name}/{name}.md")
        mlflow.log_text(table.to_csv(index=False), f"{name}/{name}.csv")
        mlflow.log_image(image, f"{name}/{name}.png")
        return run.info.run_id if run is not None else None
