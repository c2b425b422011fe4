"""Markdown and MLflow logging of the analyses (the ``analysis`` pipeline's outputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from PIL import Image

from ttsctr.baselines.report import markdown_table
from ttsctr.reporting import format_p

__all__ = ["analysis_markdown", "log_analysis"]


def _scale_summary(stats: pd.DataFrame) -> pd.DataFrame:
    agg = stats.groupby(["ensemble", "scale"], sort=False).agg(
        members=("n_members", "first"), draws=("draw", "count"), auc=("auc", "mean"), separation=("separation", "mean"),
        separation_sd=("separation", "std"), sharpness=("sharpness", "mean"), overlap=("overlap", "mean"),
        js_diversity=("js_diversity", "mean"))
    return agg.reset_index()


def analysis_markdown(dataset: str, data_version: str, descriptions: Sequence[Mapping[str, Any]], stats: pd.DataFrame,
                      correlations: pd.DataFrame, selection: pd.DataFrame, selectable: Sequence[str],
                      settings: Mapping[str, Any]) -> str:
    """The analysis report of one dataset: Fig. 5 and Fig. 6 tables with what they rest on."""
    lines = [f"# Why merging works on {dataset} (paper §3.6)", "",
             f"Data version {data_version}. Separation, sharpness, overlap area and pairs on the test split; "
             "members chosen on the validation split only, then scored on the test split.", ""]
    for d in descriptions:
        lines.append(f"- **{d['name']}**: {d['layout']} {'+'.join(d['backbones'])}, {d['members']} members "
                     f"(presets {', '.join(d['presets'])}; seeds {d['seeds'][0]}–{d['seeds'][-1]}), group size "
                     f"{d['group_size']}" + (f", tested against {d['baseline']}" if d["baseline"] else ""))
    lines += ["", "## Fig. 5: separation and sharpness by scale", "",
              "Mean over the distinct draws of each scale (draws = how many distinct ensembles the mean rests on; "
              "draws of one scale can share members).", ""]
    lines.append(markdown_table(_scale_summary(stats), formats={"separation_sd": ".4f", "js_diversity": ".5f"}))
    lines += ["## Fig. 6 (left): diversity, separation gain and AUC gain over pairs of units", "",
              "JS: `js_bernoulli` is the per-row Bernoulli Jensen–Shannon divergence averaged over rows; "
              "`js_histogram` the JS between the two score histograms "
              f"({settings.get('histogram_bins', 50)} bins). Pairs share units, so p is descriptive.", ""]
    lines.append(markdown_table(correlations.drop(columns=["data_version"], errors="ignore"),
                                formats={"pearson_r": ".3f", "p_value": format_p}))
    lines += ["## Fig. 6 (right): member selection under a budget", ""]
    if len(selection):
        agg = selection.groupby(["ensemble", "k", "strategy"], sort=False)["auc"].agg(["mean", "std", "count"])
        cells = agg.apply(lambda r: f"{r['mean']:.4f}" if r["count"] == 1 else
                          f"{r['mean']:.4f} ± {r['std']:.4f} ({int(r['count'])})", axis=1)
        wide = cells.unstack("strategy").reset_index().fillna("–")
        order = {name: i for i, name in enumerate(dict.fromkeys(selection["ensemble"]))}
        wide = wide.sort_values(["ensemble", "k"], key=lambda c: c.map(order) if c.name == "ensemble" else c,
                                kind="stable")
        wide = wide[["ensemble", "k", *dict.fromkeys(selection["strategy"])]]
        lines.append("Test AUC of the members each strategy chose on the validation split. `exhaustive` is "
                     "skipped where C(M, K) exceeds its limit; `random` is mean ± sd over its distinct draws "
                     "(count in brackets).")
        lines.append("")
        lines.append(markdown_table(wide))
    skipped = [d["name"] for d in descriptions if d["name"] not in selectable]
    if skipped:
        lines.append(f"Selection not run for {', '.join(skipped)}: grouped members were trained jointly and cannot "
                     "be split by a selection strategy.")
        lines.append("")
    return "\n".join(lines)


def log_analysis(dataset: str, tables: Mapping[str, pd.DataFrame], markdown: str,
                 images: Sequence[Image.Image], settings: Mapping[str, Any]) -> str | None:
    """A nested MLflow run ``analysis`` with the tables, figures, Markdown and headline metrics
    (Pearson r per ensemble, test AUC of each strategy's largest budget); its run id, or None
    when tracking is off."""
    from ttsctr import tracking

    if not tracking.tracking_active():
        return None
    import mlflow

    metrics: dict[str, float] = {}
    for r in tables["correlations"].itertuples():
        metrics[f"{r.ensemble}.r.{r.x}.{r.y}"] = r.pearson_r
    sel = tables["selection"]
    if len(sel):
        top = sel[sel["k"] == sel.groupby("ensemble")["k"].transform("max")]
        for (ens, strategy), auc in top.groupby(["ensemble", "strategy"])["auc"].mean().items():
            metrics[f"{ens}.selection.{strategy}.test_auc"] = float(auc)
    version = tables["stats"]["data_version"].iloc[0] if "data_version" in tables["stats"].columns else None
    tags = {"analysis": "analysis", "dataset": dataset, **({"data_version": str(version)} if version else {})}
    with tracking.nested_run("analysis", tags=tags) as run:
        tracking.log_flat_params(dict(settings))
        mlflow.log_metrics(tracking.finite_metrics(metrics))  # finite_metrics makes the keys MLflow-safe
        mlflow.log_text(markdown, "analysis/analysis.md")
        for name, frame in tables.items():
            mlflow.log_text(frame.to_csv(index=False), f"analysis/{name}.csv")
        for name, image in zip(("separation_sharpness", "diversity", "selection"), images):
            mlflow.log_image(image, f"analysis/{name}.png")
        return run.info.run_id if run is not None else None
