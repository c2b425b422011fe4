"""Figures of the analyses (paper Figures 5 and 6), as PIL images for Kedro's ``pillow.ImageDataset``.

Each takes the long tables of :mod:`ttsctr.analysis.scale` / :mod:`ttsctr.analysis.selection`
with an ``ensemble`` column (and ``label`` for Fig. 5) and draws one series or panel per
ensemble.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ttsctr.baselines.report import figure_image, plt

__all__ = ["diversity_figure", "selection_figure", "separation_sharpness_figure"]


def separation_sharpness_figure(stats: pd.DataFrame, dataset: str) -> Image.Image:
    """Fig. 5: separation of the distinct draws by scale (box plots, one box per series and
    scale) and sharpness against scale (one point per draw, series mean as a line)."""
    labels = list(dict.fromkeys(stats["label"]))
    scales = sorted(stats["scale"].unique())
    fig, (ax_sep, ax_sharp) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(labels), 1)
    colours = plt.cm.tab10(np.arange(len(labels)) % 10)
    for i, label in enumerate(labels):
        part = stats[stats["label"] == label]
        data, pos = [], []
        for j, s in enumerate(scales):
            vals = part.loc[part["scale"] == s, "separation"].to_numpy(float)
            if vals.size:
                data.append(vals)
                pos.append(j - 0.4 + width * (i + 0.5))
        if data:
            box = ax_sep.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, manage_ticks=False)
            for patch in box["boxes"]:
                patch.set_facecolor(colours[i])
                patch.set_alpha(0.6)
        ax_sep.plot([], [], color=colours[i], lw=6, alpha=0.6, label=label)
        mean = part.groupby("scale")["sharpness"].mean()
        ax_sharp.scatter(part["scale"], part["sharpness"], color=colours[i], alpha=0.5, s=18)
        ax_sharp.plot(mean.index, mean.to_numpy(), color=colours[i], marker="o", label=label)
    ax_sep.set_xticks(range(len(scales)), [f"{s}×" for s in scales])
    ax_sep.set_xlabel("members merged (K)")
    ax_sep.set_ylabel("separation (Eq. 14)")
    ax_sep.set_title("separation over distinct draws")
    ax_sep.legend(fontsize=8)
    ax_sharp.set_xscale("log", base=2)
    ax_sharp.set_xticks(scales, [f"{s}×" for s in scales])
    ax_sharp.set_xlabel("members merged (K)")
    ax_sharp.set_ylabel("sharpness (Eq. 15)")
    ax_sharp.set_title("sharpness against scale")
    ax_sharp.legend(fontsize=8)
    fig.suptitle(f"Separation and sharpness on {dataset} (test split)")
    fig.tight_layout()
    return figure_image(fig)


def diversity_figure(pairs: pd.DataFrame, correlations: pd.DataFrame, dataset: str) -> Image.Image:
    """Fig. 6 left, one row per ensemble: JS divergence against separation gain, and separation
    gain against AUC gain, over pairs of units, with Pearson r in the titles."""
    ensembles = list(dict.fromkeys(pairs["ensemble"]))
    fig, axes = plt.subplots(len(ensembles), 2, figsize=(11, 3.8 * len(ensembles)), squeeze=False)
    for row, name in enumerate(ensembles):
        part = pairs[pairs["ensemble"] == name]
        corr = correlations[correlations["ensemble"] == name].set_index(["x", "y"])["pearson_r"]
        for ax, (x, y, xl, yl) in zip(axes[row], (
                ("js_bernoulli", "separation_gain", "JS divergence (nats, per-row Bernoulli)", "separation gain"),
                ("separation_gain", "auc_gain", "separation gain", "AUC gain over the pair's mean"))):
            ax.scatter(part[x], part[y], s=16, alpha=0.7)
            r = corr.get((x, y), float("nan"))
            ax.set_title(f"{name}: r = {r:.3f} over {len(part)} pairs", fontsize=10)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
    fig.suptitle(f"Diversity, separation and AUC on {dataset} (test split)")
    fig.tight_layout()
    return figure_image(fig)


def selection_figure(scores: pd.DataFrame, dataset: str) -> Image.Image:
    """Fig. 6 right, one panel per ensemble: test AUC of each strategy's choice against the
    budget K (random: mean ± sd over its draws)."""
    ensembles = list(dict.fromkeys(scores["ensemble"]))
    if not ensembles:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "selection not run: no independently trained ensemble\n(grouped members cannot be split)",
                ha="center", va="center")
        return figure_image(fig)
    fig, axes = plt.subplots(1, len(ensembles), figsize=(5.5 * len(ensembles), 4), squeeze=False)
    for ax, name in zip(axes[0], ensembles):
        part = scores[scores["ensemble"] == name]
        for strategy, rows in part.groupby("strategy", sort=False):
            agg = rows.groupby("k")["auc"].agg(["mean", "std", "count"])
            if (agg["count"] > 1).any():
                ax.errorbar(agg.index, agg["mean"], yerr=agg["std"].fillna(0), marker="o", capsize=3,
                            label=f"{strategy} (mean ± sd of {int(agg['count'].max())})")
            else:
                ax.plot(agg.index, agg["mean"], marker="o", label=strategy)
        ax.set_xlabel("budget K (members merged)")
        ax.set_ylabel("test AUC")
        ax.set_title(f"{name}: chosen on validation, scored on test", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Member selection strategies on {dataset}")
    fig.tight_layout()
    return figure_image(fig)
