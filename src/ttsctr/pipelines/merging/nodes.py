"""Scaling evaluation of one ensemble from its materialised predictions.

Writes ``data/08_reporting/<dataset>/<ensemble>/scaling.{md,png}`` and ``ensemble.json`` (layout,
backbones, members, seeds: what the report shows beside the table) here; ``scaling.csv`` is the
node's output, saved by the catalog next to them. Beyond :data:`ttsctr.merging.SCALING_COLUMNS`
it has ``valid_auc`` (the same draws' mean AUC on the validation split) and ``data_version``, the
encoding every merged prediction was computed from; predictions of another version are refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ttsctr.data.io import atomic_file
from ttsctr.errors import ConfigError
from ttsctr.experiment import EnsemblePlan, check_baseline, ensemble_description
from ttsctr.merging import scaling_table
from ttsctr.merging.predictions import check_manifest_versions, load_member_pool, split_groups
from ttsctr.reporting import ensemble_markdown, logistic_numbers, scaling_plot

log = logging.getLogger(__name__)

DIVERSITY_SPLIT = "validation"  # diversity is a property of the members, measured off the test rows


def merge_ensemble(model_input_summary: dict[str, Any], merging: dict[str, Any], paths: dict[str, Any],
                   logistic_reference: dict[str, Any] | None, *manifests: dict[str, Any],
                   ensemble: EnsemblePlan, baseline: EnsemblePlan | None = None) -> pd.DataFrame:
    """The ensemble's scaling table (:func:`ttsctr.merging.scaling_table`) on ``merging.split``.

    ``manifests``: the ensemble's group prediction manifests, then (when ``baseline`` is given)
    the baseline ensemble's, whose independently trained members are the 1× reference of a
    grouped ensemble. Diversity is measured on the validation split. Writes ``scaling.md`` and
    ``scaling.png`` beside the catalog's ``scaling.csv``.
    """
    dataset = model_input_summary["dataset"]
    data_version = model_input_summary["data_version"]
    check_manifest_versions(manifests, data_version, f"merging {ensemble.name}")
    split = merging.get("split", "test")
    own, ref = list(manifests[: len(ensemble.groups)]), list(manifests[len(ensemble.groups):])
    pool = load_member_pool(own, split, ensemble)
    valid = pool if split == DIVERSITY_SPLIT else load_member_pool(own, DIVERSITY_SPLIT, ensemble)
    reference = None
    if baseline is not None:
        check_baseline(ensemble, baseline)
        reference = load_member_pool(ref, split, baseline)
    user_field = (merging.get("user_fields") or {}).get(dataset)
    groups = (split_groups(model_input_summary["model_input_dir"], own[0], split, user_field)
              if user_field else None)
    table = scaling_table(pool, scales=ensemble.scales, draws=ensemble.draws, seed=int(merging.get("seed", 0)),
                          rule=ensemble.merge_rule, alpha=float(merging.get("alpha", 0.05)),
                          reference=reference, diversity_pool=valid, name=ensemble.name, groups=groups)
    # the same draws on the validation split: the valid_auc of every scale (MLflow's runs compare it)
    valid_table = scaling_table(valid, scales=ensemble.scales, draws=ensemble.draws, seed=int(merging.get("seed", 0)),
                                rule=ensemble.merge_rule, alpha=float(merging.get("alpha", 0.05)), name=ensemble.name)
    out = Path(paths["reporting"]) / dataset / ensemble.name
    out.mkdir(parents=True, exist_ok=True)
    markdown = ensemble_markdown(
        table, ensemble.label, layout=ensemble.layout, dataset=dataset,
        bayes_auc=model_input_summary.get("bayes_optimal_auc"), logistic=logistic_reference, split=split,
        alpha=float(merging.get("alpha", 0.05)), reference=baseline.name if baseline is not None else None,
        diversity_split=DIVERSITY_SPLIT,
    )
    with atomic_file(out / "scaling.md") as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    with atomic_file(out / "ensemble.json") as tmp:  # what the table was measured on, for the report
        tmp.write_text(json.dumps({**ensemble_description(ensemble), "dataset": dataset, "data_version": data_version,
                                   "split": split}, indent=1), encoding="utf-8")
    lr = logistic_numbers(logistic_reference, split)
    scaling_plot(table, out / "scaling.png", title=f"{ensemble.name} on {dataset}",
                 bayes_auc=model_input_summary.get("bayes_optimal_auc"), lr_auc=lr[0] if lr else None)
    log.info("scaling of %s on %s:\n%s", ensemble.name, dataset, markdown)
    return table.assign(valid_auc=valid_table["auc_mean"].to_numpy(), data_version=data_version)
