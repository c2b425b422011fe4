"""Baselines the merged ensembles are measured against.

* :mod:`~ttsctr.baselines.logistic` — logistic regression on one-hot ids, the floor of every table;
* :mod:`~ttsctr.baselines.param_scaling`, :mod:`~ttsctr.baselines.tuning`,
  :mod:`~ttsctr.baselines.scaling_study` — FLOPs-matched parameter scaling tuned with Optuna (Fig. 3, 4a);
* :mod:`~ttsctr.baselines.width_scaling` — Multi-Embed and D-MoE against prediction merging (Table 4);
* :mod:`~ttsctr.baselines.weight_merging`, :mod:`~ttsctr.baselines.model_merging` — weight averaging,
  plain and permutation-aligned (Table 6);
* :mod:`~ttsctr.baselines.orthogonality` — test-time scaling on top of parameter scaling (Table 5);
* :mod:`~ttsctr.baselines.training_free`, :mod:`~ttsctr.baselines.training_free_study` — MC-dropout and
  feature masking (Figs. 7–8);
* :mod:`~ttsctr.baselines.efficiency`, :mod:`~ttsctr.baselines.efficiency_study` — training and
  inference time (Fig. 4b–c);
* :mod:`~ttsctr.baselines.fitting` — training a group once and keeping its logits, shared by all.

The logistic reference is imported on first use (scikit-learn is slow to import, and the
efficiency workers import this package).
"""

from typing import Any

__all__ = ["LogisticReference", "fit_logistic_regression"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ttsctr.baselines import logistic

        return getattr(logistic, name)
    raise AttributeError(f"module 'ttsctr.baselines' has no attribute {name!r}")
