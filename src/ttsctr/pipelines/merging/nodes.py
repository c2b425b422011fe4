"""Scaling evaluation of one ensemble from its materialised predictions.

Writes ``data/08_reporting/<dataset>/<ensemble>/scaling.{md,png}`` here; ``scaling.csv`` is the
node's output, saved by the catalog next to them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ttsctr.data.io import atomic_file
from ttsctr.experiment import EnsemblePlan
from ttsctr.merging import MemberPool, scaling_table
from ttsctr.reporting import scaling_markdown, scaling_plot

log = logging.getLogger(__name__)


def load_member_pool(manifests: list[dict[str, Any]], split: str, ensemble: EnsemblePlan) -> MemberPool:
    """All members' logits on ``split`` in member order, with their training group and backbone."""
    logits, names, groups, families, labels = [], [], [], [], None
    for manifest in sorted(manifests, key=lambda m: m["member_indices"][0]):
        table = pq.read_table(manifest["files"][split])
        y = table.column("label").to_numpy()
        if labels is None:
            labels = y
        elif not np.array_equal(labels, y):
            raise ValueError(f"{manifest['files'][split]}: labels differ from the other groups' ({split} split changed?)")
        group = next(g for g in ensemble.groups if g.name == manifest["group"])
        for name, index in zip(manifest["members"], manifest["member_indices"]):
            logits.append(table.column(f"{name}_logit").to_numpy())
            names.append(name)
            groups.append(group.index)
            families.append(ensemble.members[index].backbone)
    return MemberPool(
        logits=np.stack(logits, axis=1),
        labels=labels.astype(np.float64),
        group_of_member=np.asarray(groups),
        family_of_member=np.asarray(families),
        member_names=tuple(names),
    )


def merge_ensemble(model_input_summary: dict[str, Any], merging: dict[str, Any], paths: dict[str, Any],
                   *manifests: dict[str, Any], ensemble: EnsemblePlan) -> pd.DataFrame:
    pool = load_member_pool(list(manifests), merging.get("split", "test"), ensemble)
    table = scaling_table(pool, scales=ensemble.scales, draws=ensemble.draws, seed=int(merging.get("seed", 0)),
                          rule=ensemble.merge_rule, alpha=float(merging.get("alpha", 0.05)))
    out = Path(paths["reporting"]) / model_input_summary["dataset"] / ensemble.name
    out.mkdir(parents=True, exist_ok=True)
    markdown = scaling_markdown({ensemble.label: table}, layout=ensemble.layout, dataset=model_input_summary["dataset"])
    with atomic_file(out / "scaling.md") as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    scaling_plot(table, out / "scaling.png", title=f"{ensemble.name} on {model_input_summary['dataset']}",
                 bayes_auc=model_input_summary.get("bayes_optimal_auc"))
    log.info("scaling of %s on %s:\n%s", ensemble.name, model_input_summary["dataset"], markdown)
    return table
