"""Training-free test-time scaling against training-based diversity (paper Figs. 7–8).

Two members of one backbone are trained: ``Naive`` (dropout 0) and ``DP`` (trained with dropout
``dropout_trained_rate``; same seed). Five prediction sources on the test split:

* ``Naive``, ``DP`` — the deterministic forward passes;
* ``Naive+MC``, ``DP+MC`` — MC-dropout at ``mc_rate`` averaged over ``mc_passes`` passes;
* ``Naive+FM`` — frequency-aware feature masking (frequencies from the training split, top
  ``keep_fraction`` values kept) averaged over ``mask_paths`` paths.

:func:`ttsctr.baselines.training_free.source_matrix` compares every pair (correlation, overlap
area, change in overlap and AUC after merging the pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ttsctr.baselines.fitting import Splits, fit_group
from ttsctr.baselines.training_free import (
    feature_frequencies,
    feature_masking_logits,
    frequency_mask,
    mc_dropout_logits,
    merge_passes,
    source_matrix,
)
from ttsctr.training import MemberSpec, TrainConfig

__all__ = ["training_free_sources", "training_free_table"]


def training_free_sources(splits: Splits, model: str, training: Mapping[str, Any], root: str | Path, *,
                          preset: str = "small", seed: int = 0, dropout_trained_rate: float = 0.1,
                          mc_rate: float = 0.1, mc_passes: int = 8, keep_fraction: float = 0.9,
                          mask_paths: int = 8) -> dict[str, Any]:
    training = {**training, "progress": False}
    batch = TrainConfig.from_dict(dict(training)).eval_batch_size
    naive = fit_group(splits, [MemberSpec(model, seed, preset, {"dropout": 0.0})], training, root)
    dp = fit_group(splits, [MemberSpec(model, seed, preset, {"dropout": dropout_trained_rate})], training, root)
    x = splits.test[0]
    naive_group, dp_group = naive.load(), dp.load()
    naive_model, dp_model = naive_group.members[0], dp_group.members[0]
    precision = naive_group.precision  # the deterministic rows' precision (the training config's)
    mask = frequency_mask(feature_frequencies(splits.train[0], splits.spec), splits.spec, keep_fraction)
    return {
        "Naive": naive.test_probability,
        "Naive+MC": merge_passes(mc_dropout_logits(naive_model, x, rate=mc_rate, passes=mc_passes, seed=seed,
                                                   batch_size=batch, precision=precision)),
        "Naive+FM": merge_passes(feature_masking_logits(naive_model, x, mask, paths=mask_paths, seed=seed,
                                                        batch_size=batch, precision=precision)),
        "DP": dp.test_probability,
        "DP+MC": merge_passes(mc_dropout_logits(dp_model, x, rate=mc_rate, passes=mc_passes, seed=seed,
                                                batch_size=batch, precision=precision)),
    }


def training_free_table(splits: Splits, model: str, training: Mapping[str, Any], root: str | Path, *, dataset: str,
                        **settings: Any) -> pd.DataFrame:
    sources = training_free_sources(splits, model, training, root, **settings)
    table = source_matrix(sources, splits.test[1])
    table.insert(0, "model", model)
    table.insert(0, "dataset", dataset)
    return table
