"""Width scaling against prediction merging (paper Table 4).

For each configuration (``W*2`` = two Wukong experts, ``R*2``, ``R+W``) three models of the same
experts and the same FLOPs are trained on the same split:

* **ME** — Multi-Embed (:mod:`ttsctr.models.multi_embed`): one embedding table per expert,
  interaction outputs averaged before one prediction head, one BCE;
* **D-MoE** — the same plus the de-correlation regulariser (:mod:`ttsctr.models.dmoe`, λ from
  ``dmoe_weight``);
* **PM** — the experts as independently trained backbones (expert ``m`` of draw ``seed`` with
  seed ``seed · M + m``, so draws share no member), predictions averaged (Eq. 10).

Per draw, ``pm_vs`` is the better of ME and D-MoE by *validation* AUC and ``p_value`` a
two-sided DeLong test of PM against it on the test rows. With several ``seeds`` (draws) the
report tests the per-draw AUC differences with a paired t-test over draws, as the paper does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ttsctr.baselines.fitting import Splits, fit_group, merged_test_probability, scores
from ttsctr.errors import ConfigError
from ttsctr.merging.significance import delong_test
from ttsctr.training import MemberSpec

__all__ = ["width_scaling_table"]


def _check_configurations(configurations: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(configurations, Mapping) or not configurations:
        raise ConfigError(f"{where} must map names (W*2, R+W, ...) to lists of expert backbones, got {configurations!r}")
    out = {}
    for name, experts in configurations.items():
        if isinstance(experts, str) or not isinstance(experts, Sequence) or len(experts) < 2:
            raise ConfigError(f"{where}.{name} must list at least two expert backbones, got {experts!r}")
        out[str(name)] = [str(e) for e in experts]
    return out


def width_scaling_table(splits: Splits, configurations: Mapping[str, Sequence[str]], training: Mapping[str, Any],
                        root: str | Path, *, dataset: str, preset: str = "small", dmoe_weight: float = 0.01,
                        seeds: Sequence[int] = (0,), where: str = "width_scaling.experts") -> pd.DataFrame:
    """One row per (configuration, method, seed) plus the significance of PM against the better baseline."""
    configurations = _check_configurations(configurations, where)
    labels = splits.test[1]
    training = {**training, "progress": False}
    rows = []
    for name, experts in configurations.items():
        for seed in seeds:
            shared = {"experts": experts, "expert_preset": preset}
            fitted = {
                "ME": fit_group(splits, [MemberSpec("multi_embed", seed, preset, shared)], training, root),
                "D-MoE": fit_group(splits, [MemberSpec("dmoe", seed, preset,
                                                       {**shared, "decorrelation_weight": dmoe_weight})], training, root),
            }
            singles = [fit_group(splits, [MemberSpec(e, seed * len(experts) + i, preset)], training, root)
                       for i, e in enumerate(experts)]
            pm_probs = merged_test_probability(singles)
            probs = {"ME": fitted["ME"].test_probability, "D-MoE": fitted["D-MoE"].test_probability, "PM": pm_probs}
            valid = {"ME": fitted["ME"].result["valid_auc"], "D-MoE": fitted["D-MoE"].result["valid_auc"],
                     "PM": scores(splits.validation[1], merged_test_probability(singles, "validation"))["auc"]}
            better = max(("ME", "D-MoE"), key=lambda k: valid[k])
            test = delong_test(labels, probs["PM"], probs[better])
            for method, p in probs.items():
                s = scores(labels, p)
                if method == "PM":
                    flops = sum(g.result["flops_per_row"] for g in singles)
                    dense = sum(g.result["dense_params"] for g in singles)
                    seconds = sum(g.result["train_seconds"] for g in singles)
                else:
                    flops, dense, seconds = (fitted[method].result[k] for k in ("flops_per_row", "dense_params", "train_seconds"))
                rows.append({"dataset": dataset, "configuration": name, "experts": "+".join(experts), "method": method,
                             "seed": seed, "test_auc": s["auc"], "test_logloss": s["logloss"],
                             "valid_auc": valid[method], "flops_per_row": flops,
                             "dense_params": dense, "train_seconds": seconds,
                             "pm_vs": better if method == "PM" else "", "p_value": test.p_value if method == "PM" else np.nan,
                             "draws": 1})
    return pd.DataFrame(rows)
