"""Weight averaging against prediction merging (paper Table 6), and whether merging can work at all.

For every backbone, K members (``counts``, e.g. 2, 4, 16) are merged four ways and scored on
the test split:

* ``pred`` — prediction merging of K independently trained members (Eq. 10);
* ``weights`` — their weights averaged (the paper's "K×-Model" rows);
* ``weights_aligned`` — averaged after aligning each member's MLP hidden units to member 0 by
  weight matching (:mod:`ttsctr.baselines.weight_merging`; what is and is not aligned is listed
  there);
* ``weights_shared_init`` / ``pred_shared_init`` — K members that share member 0's
  initialisation and differ only in data order (training ``data_seed`` 0..K-1), weights or
  predictions averaged: the setting in which language-model merging works (a common ancestor).

``backbone`` is member 0 alone. Each number rests on one set of K members (one draw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ttsctr.baselines.fitting import Splits, fit_group, merged_test_probability, scores
from ttsctr.baselines.weight_merging import merge_weights
from ttsctr.baselines.settings import name_list, whole_numbers
from ttsctr.errors import ConfigError
from ttsctr.training import GroupModel, MemberSpec, TrainConfig, predict_logits
from ttsctr.training.group import merged_probability

__all__ = ["model_merging_table"]


def _merged_model_probability(loaded: Sequence[GroupModel], splits: Splits, align: bool, batch_size: int) -> np.ndarray:
    """Test probabilities of the weight average of ``loaded`` groups' members (merge_weights copies them)."""
    models = [group.members[0] for group in loaded]
    merged = merge_weights(models, align=align) if len(models) > 1 else models[0]
    with torch.no_grad():  # in the members' own precision, like their prediction-merging rows
        logits = predict_logits(GroupModel([merged]), splits.test[0], batch_size=batch_size,
                                precision=loaded[0].precision)
    return merged_probability(logits)


def model_merging_table(splits: Splits, models: Sequence[str], counts: Sequence[int], training: Mapping[str, Any],
                        root: str | Path, *, dataset: str, preset: str = "small",
                        where: str = "model_merging") -> pd.DataFrame:
    counts = sorted(set(whole_numbers(counts, f"{where}.counts", minimum=2)))
    models = name_list(models, f"{where}.models")
    config = TrainConfig.from_dict(dict(training))
    if config.data_order == "file":
        raise ConfigError(f"{where}: training data_order 'file' reads the rows in file order for every member, so "
                          "members sharing their initialisation would be identical; use data_order member or shared")
    k_max = counts[-1]
    training = {**training, "progress": False}
    batch_size = config.eval_batch_size
    labels = splits.test[1]
    rows = []
    for model in models:
        independent = [fit_group(splits, [MemberSpec(model, seed, preset)], training, root) for seed in range(k_max)]
        shared_init = [fit_group(splits, [MemberSpec(model, 0, preset)], {**training, "data_seed": d}, root)
                       for d in range(k_max)]

        def row(method: str, k: int, probs: np.ndarray) -> dict[str, Any]:
            s = scores(labels, probs)
            return {"dataset": dataset, "model": model, "members": k, "method": method,
                    "test_auc": s["auc"], "test_logloss": s["logloss"], "draws": 1}

        rows.append(row("backbone", 1, independent[0].test_probability))
        loaded_ind, loaded_shared = [g.load() for g in independent], [g.load() for g in shared_init]  # once each
        for k in counts:
            ind, shared = independent[:k], shared_init[:k]
            rows.append(row("pred", k, merged_test_probability(ind)))
            rows.append(row("weights", k, _merged_model_probability(loaded_ind[:k], splits, False, batch_size)))
            rows.append(row("weights_aligned", k, _merged_model_probability(loaded_ind[:k], splits, True, batch_size)))
            rows.append(row("pred_shared_init", k, merged_test_probability(shared)))
            rows.append(row("weights_shared_init", k, _merged_model_probability(loaded_shared[:k], splits, False,
                                                                               batch_size)))
    return pd.DataFrame(rows)
