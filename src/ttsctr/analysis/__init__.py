"""Why prediction merging works, and which members to merge (paper §3.6).

Plain library code, no Kedro; the ``analysis`` pipeline wires it to the trained members.

* :mod:`~ttsctr.analysis.distribution`: :func:`separation` (Eq. 14), :func:`sharpness`
  (Eq. 15), :func:`overlap` (overlap area, Fig. 7) and :func:`histogram_js`.
* Jensen–Shannon diversity between members: :func:`js_divergence` is the **per-row Bernoulli
  JS averaged over rows** (defined in :mod:`ttsctr.merging.diversity`, re-exported here);
  :func:`histogram_js` is the JS between two score histograms. Selection by diversity uses the
  Bernoulli one; the Fig. 6 tables report both.
* :mod:`~ttsctr.analysis.scale`: :func:`scale_statistics` (Fig. 5), :func:`pair_statistics`
  and :func:`diversity_correlations` (Fig. 6 left).
* :mod:`~ttsctr.analysis.selection`: :func:`choose_members` on the selection split,
  :func:`score_selections` on the evaluation split (Fig. 6 right), :func:`select_members`.
* :mod:`~ttsctr.analysis.figures`: the figures.
* :mod:`~ttsctr.analysis.power_law`: :func:`fit_power_law` (``y = E·x^α``, EST §6.4 scaling
  laws) and :func:`plot_power_law`.
"""

from ttsctr.analysis.distribution import class_moments, histogram_js, overlap, separation, sharpness
from ttsctr.analysis.power_law import PowerLawFit, fit_power_law, plot_power_law
from ttsctr.analysis.scale import (
    PAIR_COLUMNS,
    SCALE_COLUMNS,
    diversity_correlations,
    pair_statistics,
    scale_statistics,
)
from ttsctr.analysis.selection import (
    CHOICE_COLUMNS,
    DEFAULT_STRATEGIES,
    SELECTION_COLUMNS,
    SELECTION_STRATEGIES,
    check_selectable,
    choose_members,
    score_selections,
    select_members,
    selection_table,
)
from ttsctr.merging.diversity import js_divergence, mean_pairwise_js, pairwise_js

__all__ = [
    "CHOICE_COLUMNS",
    "DEFAULT_STRATEGIES",
    "PAIR_COLUMNS",
    "PowerLawFit",
    "SCALE_COLUMNS",
    "SELECTION_COLUMNS",
    "SELECTION_STRATEGIES",
    "check_selectable",
    "choose_members",
    "class_moments",
    "diversity_correlations",
    "fit_power_law",
    "histogram_js",
    "js_divergence",
    "mean_pairwise_js",
    "overlap",
    "pair_statistics",
    "pairwise_js",
    "plot_power_law",
    "scale_statistics",
    "score_selections",
    "select_members",
    "selection_table",
    "separation",
    "sharpness",
]
