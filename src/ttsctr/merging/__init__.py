"""Prediction merging (paper §2.3, Eq. 10–13), significance testing and scaling evaluation.

Plain library code, no Kedro. The modules:

* :mod:`~ttsctr.merging.rules`: merge rules — :func:`merge_probabilities` (Eq. 10, the paper's
  rule), :func:`merge_logits` (``sigmoid(mean logit)``), :func:`merge_groups` (Eq. 13);
  :data:`MERGE_RULES` names them for configuration and serving.
* :mod:`~ttsctr.merging.pool`: :class:`MemberPool` (the evaluation-split logits of all trained
  members, their labels, training groups and architectures; its units), seeded draws
  (:func:`draw_members`, :func:`distinct_draws`) and :func:`merge_pool`.
* :mod:`~ttsctr.merging.significance`: the paper's t-test (:func:`ttest_two_sided`, scipy) and
  DeLong's test for correlated AUCs on one test set (:func:`delong_test`, own implementation
  of the fast algorithm of Sun & Xu 2014).
* :mod:`~ttsctr.merging.diversity`: pairwise Pearson correlation of member logits and
  Bernoulli Jensen–Shannon divergence (:func:`member_diversity`).
* :mod:`~ttsctr.merging.scaling`: :func:`scaling_table` (Tables 1–3) and :data:`SCALING_COLUMNS`.
"""

from ttsctr.merging.diversity import (
    NEAR_IDENTICAL_R,
    NEAR_IDENTICAL_WARNING,
    MemberDiversity,
    _mean_offdiag,
    js_divergence,
    mean_pairwise_js,
    member_diversity,
    pairwise_correlation,
    pairwise_js,
)
from ttsctr.merging.pool import (
    MemberPool,
    _check_seed,
    _draw_groups,
    _Evaluator,
    _Stratum,
    distinct_draws,
    draw_members,
    merge_pool,
)
from ttsctr.merging.rules import (
    MERGE_RULES,
    MergeRule,
    _as_2d,
    _get_rule,
    _logit,
    get_rule,
    merge_groups,
    merge_logits,
    merge_probabilities,
    sigmoid,
)
from ttsctr.merging.scaling import SCALING_COLUMNS, _mean_std, scaling_table
from ttsctr.merging.significance import (
    DeLongResult,
    delong_components,
    delong_contrast,
    delong_covariance,
    delong_test,
    ttest_two_sided,
)

__all__ = [
    "DeLongResult",
    "MERGE_RULES",
    "MemberDiversity",
    "MemberPool",
    "MergeRule",
    "NEAR_IDENTICAL_R",
    "NEAR_IDENTICAL_WARNING",
    "SCALING_COLUMNS",
    "delong_components",
    "delong_contrast",
    "delong_covariance",
    "delong_test",
    "distinct_draws",
    "draw_members",
    "get_rule",
    "js_divergence",
    "mean_pairwise_js",
    "member_diversity",
    "merge_groups",
    "merge_logits",
    "merge_probabilities",
    "merge_pool",
    "pairwise_correlation",
    "pairwise_js",
    "scaling_table",
    "sigmoid",
    "ttest_two_sided",
]
