"""Test-time scaling on top of parameter scaling (paper Table 5).

For each parameter scale of a model, the best tuned configuration of that scale (from the
parameter-scaling studies, :mod:`ttsctr.baselines.scaling_study`) is trained with K seeds
(``tts_members``; the paper uses 16) and their predictions merged. The table gives, per
parameter scale, the single model ("Base"), the merged K ("Test-time K×") and the gain.
Member 0 is the tuned trial itself; each merged number rests on one set of K members.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ttsctr.baselines.fitting import Splits, fit_group, merged_test_probability, scores
from ttsctr.baselines.scaling_study import TunedConfig, tuned_member
from ttsctr.errors import ConfigError
from ttsctr.merging.significance import delong_test

__all__ = ["orthogonality_table"]


def orthogonality_table(splits: Splits, tuned: Sequence[TunedConfig], training: Mapping[str, Any], tts_members: int,
                        root: str | Path, *, dataset: str, reuse_from: Sequence[str | Path] = ()) -> pd.DataFrame:
    if isinstance(tts_members, bool) or not isinstance(tts_members, int) or tts_members < 2:
        raise ConfigError(f"orthogonality.tts_members must be an integer >= 2, got {tts_members!r}")
    labels = splits.test[1]
    best: dict[tuple[str, float], TunedConfig] = {}
    for t in tuned:  # the best dimension per (model, scale), chosen on validation AUC
        key = (t.scaled.model, t.scaled.target)
        if key not in best or t.best.result["valid_auc"] > best[key].best.result["valid_auc"]:
            best[key] = t
    rows = []
    for (model, scale), t in sorted(best.items()):
        # member 0 is the tuned trial itself; seeds 1.. are trained here with its hyperparameters
        members = [t.best] + [fit_group(splits, [member], settings, root, reuse_from=reuse_from)
                              for member, settings in (tuned_member(t.scaled, t.study.best_params, seed, training)
                                                       for seed in range(1, tts_members))]
        single = t.best.test_probability
        merged = merged_test_probability(members)
        base, tts = scores(labels, single), scores(labels, merged)
        rows.append({"dataset": dataset, "model": model, "param_scale": scale,
                     "dimension": "base" if scale == 1 else t.scaled.dimension,
                     "tts_members": tts_members, "base_auc": base["auc"], "base_logloss": base["logloss"],
                     "tts_auc": tts["auc"], "tts_logloss": tts["logloss"], "auc_gain": tts["auc"] - base["auc"],
                     "logloss_gain": tts["logloss"] - base["logloss"],
                     "p_value": delong_test(labels, merged, single).p_value, "draws": 1})
    return pd.DataFrame(rows)
