"""Nodes of ``kedro run --pipeline analysis`` (paper §3.6): why merging works, which members to serve.

Per ensemble:

* ``analyse_scaling`` reads the **test** predictions: separation, sharpness, overlap area and JS
  diversity per distinct draw and scale (Fig. 5), and every pair of units (Fig. 6 left).
* ``choose_members`` (independently trained ensembles only) reads the **validation**
  predictions and nothing else: the members each strategy picks at each budget.
* ``score_members`` applies those choices to the **test** predictions (Fig. 6 right).

``summarise_analysis`` gathers all ensembles into ``data/08_reporting/<dataset>/analysis/``
(CSV, PNG, Markdown, ``summary.json``) and logs them in a nested MLflow run ``analysis``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ttsctr.analysis import (
    CHOICE_COLUMNS,
    DEFAULT_STRATEGIES,
    PAIR_COLUMNS,
    choose_members,
    diversity_correlations,
    pair_statistics,
    scale_statistics,
    score_selections,
)
from ttsctr.analysis.figures import diversity_figure, selection_figure, separation_sharpness_figure
from ttsctr.analysis.report import analysis_markdown, log_analysis
from ttsctr.baselines.settings import check_keys
from ttsctr.data.version import require_same_version
from ttsctr.errors import ConfigError
from ttsctr.experiment import EnsemblePlan, ensemble_description
from ttsctr.merging.predictions import check_manifest_versions, load_member_pool

log = logging.getLogger(__name__)

SELECTION_SPLIT = "validation"
EVALUATION_SPLIT = "test"
ANALYSIS_KEYS = ("draws", "seed", "overlap_bins", "histogram_bins", "max_pairs", "selection")
SELECTION_KEYS = ("strategies", "budgets", "random_draws", "exhaustive_limit")


def _settings(analysis: dict[str, Any]) -> dict[str, Any]:
    check_keys(analysis, ANALYSIS_KEYS, "analysis")
    check_keys(analysis.get("selection") or {}, SELECTION_KEYS, "analysis.selection")
    return analysis


def analyse_scaling(model_input_summary: dict[str, Any], analysis: dict[str, Any], *manifests: dict[str, Any],
                    ensemble: EnsemblePlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 5 and Fig. 6 (left) tables of one ensemble on the test split."""
    settings = _settings(analysis)
    check_manifest_versions(manifests, model_input_summary["data_version"], f"analysing {ensemble.name}")
    pool = load_member_pool(list(manifests), EVALUATION_SPLIT, ensemble)
    seed = int(settings.get("seed", 0))
    stats = scale_statistics(pool, scales=ensemble.scales, draws=int(settings.get("draws", 8)), seed=seed,
                             rule=ensemble.merge_rule, bins=int(settings.get("overlap_bins", 100)))
    stats.insert(0, "ensemble", ensemble.name)
    stats.insert(1, "label", ensemble_description(ensemble)["label"])
    max_pairs = settings.get("max_pairs")
    if pool.n_groups < 2:  # one training unit (a single group): no pairs to compare
        pairs = pd.DataFrame(columns=PAIR_COLUMNS)
    else:
        pairs = pair_statistics(pool, rule=ensemble.merge_rule, max_pairs=None if max_pairs is None else int(max_pairs),
                                seed=seed, histogram_bins=int(settings.get("histogram_bins", 50)))
    pairs.insert(0, "ensemble", ensemble.name)
    return stats, pairs


def choose_members_on_validation(model_input_summary: dict[str, Any], analysis: dict[str, Any],
                                 *manifests: dict[str, Any], ensemble: EnsemblePlan) -> dict[str, Any]:
    """The members each strategy picks, chosen from the validation predictions alone."""
    settings = _settings(analysis)
    selection = settings.get("selection") or {}
    check_manifest_versions(manifests, model_input_summary["data_version"], f"selecting members of {ensemble.name}")
    pool = load_member_pool(list(manifests), SELECTION_SPLIT, ensemble)
    budgets = [int(k) for k in selection.get("budgets", [1, 2, 4, 8]) if int(k) <= pool.n_members]
    if not budgets:
        raise ConfigError(f"analysis.selection.budgets: no budget fits {ensemble.name}'s {pool.n_members} members")
    choices = choose_members(pool, budgets, tuple(selection.get("strategies", DEFAULT_STRATEGIES)),
                             seed=int(settings.get("seed", 0)), rule=ensemble.merge_rule,
                             exhaustive_limit=int(selection.get("exhaustive_limit", 5000)),
                             random_draws=int(selection.get("random_draws", 10)))
    return {"ensemble": ensemble.name, "split": SELECTION_SPLIT, "data_version": model_input_summary["data_version"],
            "choices": [{**row, "members": list(row["members"])} for row in choices.to_dict(orient="records")]}


def score_members_on_test(model_input_summary: dict[str, Any], selection: dict[str, Any], *manifests: dict[str, Any],
                          ensemble: EnsemblePlan) -> pd.DataFrame:
    """The validation-chosen members merged and scored on the test split."""
    require_same_version(selection.get("data_version"), model_input_summary["data_version"],
                         what=f"scoring the selection of {ensemble.name}", source="the member selection")
    check_manifest_versions(manifests, model_input_summary["data_version"], f"scoring the selection of {ensemble.name}")
    pool = load_member_pool(list(manifests), EVALUATION_SPLIT, ensemble)
    choices = pd.DataFrame(selection["choices"], columns=CHOICE_COLUMNS)
    choices["members"] = choices["members"].map(tuple)
    scored = score_selections(choices, pool, ensemble.merge_rule)
    scored.insert(0, "ensemble", ensemble.name)
    return scored


def summarise_analysis(model_input_summary: dict[str, Any], analysis: dict[str, Any], *tables: pd.DataFrame,
                       ensembles: tuple[EnsemblePlan, ...], selectable: tuple[str, ...]) -> tuple[Any, ...]:
    """All ensembles' analysis tables, figures, Markdown and a summary with provenance.

    ``tables``: (scale statistics, pair statistics) per ensemble in ``ensembles`` order, then the
    selection scores of each ensemble in ``selectable``.
    """
    dataset = model_input_summary["dataset"]
    n = len(ensembles)
    stats = pd.concat(tables[0:2 * n:2], ignore_index=True)
    pairs = pd.concat(tables[1:2 * n:2], ignore_index=True)
    selection = (pd.concat(tables[2 * n:], ignore_index=True) if selectable
                 else pd.DataFrame(columns=["ensemble", *CHOICE_COLUMNS, "auc"]))
    correlations = pd.concat(
        [diversity_correlations(pairs[pairs["ensemble"] == e.name]).assign(ensemble=e.name) for e in ensembles],
        ignore_index=True)[["ensemble", "x", "y", "pearson_r", "p_value", "n_pairs", "n_units"]]
    for frame in (stats, pairs, selection, correlations):
        frame.insert(1, "data_version", model_input_summary["data_version"])
    descriptions = [ensemble_description(e) for e in ensembles]
    markdown = analysis_markdown(dataset, model_input_summary["data_version"], descriptions, stats, correlations,
                                 selection, selectable, analysis)
    images = (separation_sharpness_figure(stats, dataset), diversity_figure(pairs, correlations, dataset),
              selection_figure(selection, dataset))
    # the MLflow run is found by its tags (analysis, dataset): the summary stays the same on a rerun
    log_analysis(dataset, {"stats": stats, "pairs": pairs, "correlations": correlations, "selection": selection},
                 markdown, images, analysis)
    summary = {"dataset": dataset, "data_version": model_input_summary["data_version"],
               "selection_split": SELECTION_SPLIT, "evaluation_split": EVALUATION_SPLIT,
               "ensembles": descriptions, "selectable": list(selectable), "settings": analysis}
    return (summary, stats, pairs, correlations, selection, markdown, *images)
