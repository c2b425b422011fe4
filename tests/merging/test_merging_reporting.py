"""Markdown tables in the paper's layout, the scaling plot and DVC metrics."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool, scaling_table
from ttsctr.reporting import (
    dataset_markdown,
    ensemble_markdown,
    experiment_markdown,
    format_p,
    grouping_markdown,
    metrics_json,
    scaling_figure,
    scaling_markdown,
    scaling_plot,
    significance_markdown,
)

NAN = float("nan")


def _table(scales, aucs, lls, sig, *, n_draws=None, r=0.5) -> pd.DataFrame:
    """A scaling table as scaling_table writes it (CSV round trip: plain columns)."""
    n = len(scales)
    n_draws = n_draws or [8] + [4] * (n - 2) + [1]
    return pd.DataFrame(
        {
            "scale": scales,
            "n_members": scales,
            "n_draws": n_draws,
            "auc_mean": aucs,
            "auc_std": [NAN if d == 1 else 0.001 for d in n_draws],
            "logloss_mean": lls,
            "logloss_std": [NAN if d == 1 else 0.0005 for d in n_draws],
            "auc_1x": [aucs[0]] * n,
            "n_1x": [n_draws[0]] * n,
            "delong_auc_diff": [NAN] + [a - aucs[0] for a in aucs[1:]],
            "p_ttest": [NAN] + [0.01] * (n - 2) + [NAN],
            "p_delong": [NAN] + [0.0004] * (n - 1),
            "significant": sig,
            "pairwise_r": [r] * n,
            "pairwise_r_within": [r] * n,
            "pairwise_js": [0.0123] * n,
        }
    )


FNN = _table([1, 2, 4], [0.78884, 0.78971, 0.7903], [0.37612, 0.3755, 0.37444], [False, True, False])
IPNN = _table([1, 2], [0.7911, 0.79262], [0.3744, 0.3733], [False, True])


def test_homogeneous_markdown_exact() -> None:
    md = scaling_markdown({"FNN": FNN, "IPNN": IPNN}, layout="homogeneous", dataset="Avazu")
    assert md == (
        "| Dataset | Method | FNN AUC↑ | FNN Logloss↓ | IPNN AUC↑ | IPNN Logloss↓ |\n"
        "|---|---|---:|---:|---:|---:|\n"
        "| Avazu | Backbone | 0.7888 | 0.3761 | 0.7911 | 0.3744 |\n"
        "|  | 2× | 0.7897* | 0.3755 | 0.7926* | 0.3733 |\n"
        "|  | 4× | 0.7903 | 0.3744 | – | – |\n"
    )


def test_heterogeneous_markdown_exact_and_header_off() -> None:
    md = scaling_markdown({"Wukong+Rankmixer": FNN}, layout="heterogeneous")
    assert md == (
        "| Method | Wukong+Rankmixer AUC↑ | Wukong+Rankmixer Logloss↓ |\n"
        "|---|---:|---:|\n"
        "| 1× | 0.7888 | 0.3761 |\n"
        "| 2× | 0.7897* | 0.3755 |\n"
        "| 4× | 0.7903 | 0.3744 |\n"
    )
    body = scaling_markdown({"W+R": FNN}, layout="heterogeneous", dataset="Criteo", header=False)
    assert body.splitlines()[0] == "| Criteo | 1× | 0.7888 | 0.3761 |"


def test_star_follows_only_significant_aucs() -> None:
    md = scaling_markdown({"FNN": FNN})
    rows = md.splitlines()[2:]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert [c[1].endswith("*") for c in cells] == [False, True, False]
    assert not any(c[2].endswith("*") for c in cells)  # never on logloss


def test_markdown_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="layout"):
        scaling_markdown({"FNN": FNN}, layout="wide")
    with pytest.raises(ConfigError, match="missing columns"):
        scaling_markdown({"FNN": FNN.drop(columns=["auc_std"])})
    with pytest.raises(ConfigError, match="mapping"):
        scaling_markdown(FNN)


def test_grouping_markdown_exact() -> None:
    config = {
        "Avazu": {"DCNv2": {1: 1, 2: 2, 4: 4, 8: 8, 16: 8}, "Wukong": {1: 1, 2: 2, 4: 2}},
        "Criteo": {"RankMixer": {1: 1, 16: 1}},
    }
    assert grouping_markdown(config) == (
        "| Dataset | Model | 1× | 2× | 4× | 8× | 16× |\n"
        "|---|---|---:|---:|---:|---:|---:|\n"
        "| Avazu | DCNv2 | 1 | 2 | 4 | 8 | 8 |\n"
        "|  | Wukong | 1 | 2 | 2 | – | – |\n"
        "| Criteo | RankMixer | 1 | – | – | – | 1 |\n"
    )
    assert grouping_markdown({"DCNv2": {1: 1, 2: 2}}).splitlines()[2] == "| DCNv2 | 1 | 2 |"
    with pytest.raises(ConfigError, match="dividing the scale"):
        grouping_markdown({"DCNv2": {4: 3}})


def test_metrics_json_numbers_per_scale_and_ensemble() -> None:
    out = metrics_json({"FNN": FNN, "IPNN": IPNN})
    assert out["IPNN"] == {
        "auc_1x": 0.7911, "auc_2x": 0.79262,
        "logloss_1x": 0.3744, "logloss_2x": 0.3733,
        "n_draws_1x": 8, "n_draws_2x": 1,
        "p_delong_2x": 0.0004,  # undefined tests (1x reference, t-test of one draw) are left out
        "significant_1x": False, "significant_2x": True,
        "auc_single": 0.7911, "n_single": 8,
        "pairwise_r": 0.5, "pairwise_r_within": 0.5, "pairwise_js": 0.0123, "near_identical": False,
    }
    assert out["FNN"]["auc_4x"] == 0.7903 and out["FNN"]["p_ttest_2x"] == 0.01
    json.dumps(out, allow_nan=False)
    clones = metrics_json({"x": _table([1, 2], [0.7, 0.7], [0.5, 0.5], [False, False], r=0.995)})
    assert clones["x"]["near_identical"] is True


def test_format_p() -> None:
    assert [format_p(p) for p in (NAN, None, 0.5, 0.01234, 0.00012, 0.0)] == ["n/a", "n/a", "0.500", "0.012", "1.2e-04", "<1e-300"]


def test_significance_markdown_exact_with_n_a_and_warning() -> None:
    t = _table([1, 2, 4], [0.78884, 0.78971, 0.7903], [0.37612, 0.3755, 0.37444], [False, True, True], r=0.9953)
    md = significance_markdown(t, "DCNv2", diversity_split="validation")
    assert md == (
        "### DCNv2\n"
        "\n"
        "- 1× reference: mean AUC 0.7888 over 8 single members\n"
        "- members (validation split): mean pairwise correlation of logits r = 0.9953, "
        "mean pairwise JS divergence 0.012300 nats\n"
        "- **Warning: members are near-identical: merging cannot help** (mean pairwise r = 0.9953 > 0.99)\n"
        "\n"
        "| Method | Members | Distinct draws | AUC↑ | AUC sd | Logloss↓ | ΔAUC vs 1× | p t-test | p DeLong | Sig. |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n"
        "| Backbone | 1 | 8 | 0.7888 | 0.0010 | 0.3761 | n/a | n/a | n/a |  |\n"
        "| 2× | 2 | 4 | 0.7897 | 0.0010 | 0.3755 | +0.0009 | 0.010 | 4.0e-04 | * |\n"
        "| 4× | 4 | 1 | 0.7903 | n/a | 0.3744 | +0.0015 | n/a | 4.0e-04 | * |\n"
    )
    grouped = significance_markdown(t.iloc[1:], "DCNv2 (g=2)", reference="dcnv2_x8")
    assert "over 8 independently trained single units of `dcnv2_x8`" in grouped
    assert "| 2× | 2 |" in grouped and "Backbone" not in grouped
    het = significance_markdown(t.assign(pairwise_r=0.6, pairwise_r_within=0.95), "W+R", layout="heterogeneous")
    assert "r = 0.6000 (within an architecture 0.9500)" in het and "Warning" not in het
    assert "units (one member of each architecture, merged)" in het
    with pytest.raises(ConfigError, match="missing columns"):
        significance_markdown(t.drop(columns=["p_delong"]), "x")


LR = {"dataset": "synthetic", "test_auc": 0.71234, "test_logloss": 0.5321, "valid_auc": 0.7, "valid_logloss": 0.54,
      "C": 0.5, "seconds": 2.0}


def test_dataset_lines_bayes_and_logistic_regression() -> None:
    assert dataset_markdown("synthetic", bayes_auc=0.83561, logistic=LR) == (
        "Bayes-optimal test AUC (planted model): 0.8356\n\n"
        "Logistic regression (same test split, C = 0.5): AUC 0.7123, logloss 0.5321\n\n"
    )
    assert "AUC 0.7000, logloss 0.5400" in dataset_markdown("synthetic", logistic=LR, split="validation")
    assert dataset_markdown("criteo") == ""
    with pytest.raises(ConfigError, match="not 'criteo'"):
        dataset_markdown("criteo", logistic=LR)
    with pytest.raises(ConfigError, match="missing"):
        dataset_markdown("synthetic", logistic={"dataset": "synthetic", "valid_auc": 0.7})
    with pytest.raises(ConfigError, match="bayes_auc"):
        dataset_markdown("synthetic", bayes_auc=math.nan)


def test_experiment_report_has_every_part() -> None:
    het = _table([1, 2], [0.67, 0.68], [0.52, 0.51], [False, True], n_draws=[8, 1], r=0.7)
    text = experiment_markdown(
        "synthetic", {"dcnv2": FNN, "wukong+rankmixer": het},
        {"dcnv2": "homogeneous", "wukong+rankmixer": "heterogeneous"},
        bayes_auc=0.8356, logistic=LR, alpha=0.05, grouping={"dcnv2_x8": {1: 1, 2: 1, 4: 1}},
        registered=[{"uri": "models:/ttsctr-synthetic-dcnv2_x8/3", "scale": 4}], diversity_split="validation",
    )
    lines = text.splitlines()
    assert lines[0] == "# Test-time scaling on synthetic"
    assert "Bayes-optimal test AUC (planted model): 0.8356" in lines
    assert "Logistic regression (same test split, C = 0.5): AUC 0.7123, logloss 0.5321" in lines
    for part in ("## Table 1: homogeneous", "## Table 2: heterogeneous", "## Table 3: group size M/K per scale",
                 "### dcnv2", "### wukong+rankmixer", "- models:/ttsctr-synthetic-dcnv2_x8/3 (scale 4×)"):
        assert part in lines, part
    assert "|  | 2× | 0.6800* | 0.5100 |" in lines  # Table 2's paper layout, * by DeLong
    assert "| 2× | 2 | 1 | 0.6800 | n/a | 0.5100 | +0.0100 | n/a | 4.0e-04 | * |" in lines
    assert "p < 0.05" in text and "DeLong" in text
    with pytest.raises(ConfigError, match="layout"):
        experiment_markdown("synthetic", {"a": FNN}, {})


def test_ensemble_markdown_is_one_dataset_block() -> None:
    text = ensemble_markdown(FNN, "FNN", dataset="synthetic", bayes_auc=0.83, logistic=LR)
    assert text.startswith("# FNN on synthetic\n\nBayes-optimal test AUC (planted model): 0.8300\n")
    assert "| synthetic | Backbone | 0.7888 | 0.3761 |" in text and "## FNN" in text and "n/a" in text


def _errorbar_segments(ax) -> int:
    from matplotlib.container import ErrorbarContainer

    return sum(len(c.lines[2][0].get_segments()) for c in ax.containers if isinstance(c, ErrorbarContainer))


def test_plot_axis_follows_the_data_and_bars_need_two_draws() -> None:
    t = _table([1, 2, 4, 8], [0.64, 0.645, 0.65, 0.652], [0.53, 0.52, 0.51, 0.50], [False, True, True, True],
               n_draws=[8, 4, 2, 1])
    fig = scaling_figure(t, bayes_auc=0.8356, lr_auc=0.61)
    ax_auc, ax_ll = fig.axes
    lo, hi = ax_auc.get_ylim()
    assert lo <= 0.64 - 0.001 and 0.652 <= hi < 0.66  # not stretched to 0.8356 (nor down to 0.61)
    assert _errorbar_segments(ax_auc) == 3 and _errorbar_segments(ax_ll) == 3  # not at 8x (one draw)
    texts = " ".join(x.get_text() for x in ax_auc.texts)
    assert "Bayes-optimal AUC 0.8356" in texts and "logistic regression AUC 0.6100" in texts


def test_scaling_plot_writes_png_atomically(tmp_path, pool: MemberPool) -> None:
    table = scaling_table(pool, scales=(1, 2, 4, 16), draws=2)
    target = tmp_path / "plots" / "fnn_scaling.png"
    out = scaling_plot(table, target, title="FNN on synthetic", bayes_auc=0.83)
    assert out == target and target.exists()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["fnn_scaling.png"]  # no temp file left
    # several ensembles, no ceiling, overwrite in place
    scaling_plot({"a": table, "b": table}, target, title="", bayes_auc=None)
    assert target.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="bayes_auc"):
        scaling_plot(table, target, bayes_auc=math.nan)


def _errorbar_x(ax) -> list[float]:
    """The x of every drawn error bar (one vertical segment per bar)."""
    from matplotlib.container import ErrorbarContainer

    return sorted(float(seg[0][0]) for c in ax.containers if isinstance(c, ErrorbarContainer)
                  for seg in c.lines[2][0].get_segments())


def _hlines_at(ax, y: float) -> list:
    """Horizontal lines (axhline) drawn at ``y``."""
    return [ln for ln in ax.lines if len(set(ln.get_ydata())) == 1 and math.isclose(ln.get_ydata()[0], y)]


# a realistic synthetic run (data/08_reporting/synthetic/dcnv2_x8): AUC 0.783-0.792, ceiling 0.8468, LR 0.6698
REAL = _table([1, 2, 4, 8], [0.78505, 0.78854, 0.79037, 0.79129], [0.46122, 0.45668, 0.45434, 0.45319],
              [False, True, True, True], n_draws=[8, 8, 8, 1]).assign(
    auc_std=[0.00221, 0.00144, 0.00083, NAN], logloss_std=[0.00228, 0.00134, 0.00103, NAN])


def test_plot_auc_axis_is_not_stretched_to_the_ceiling_or_the_logistic_regression() -> None:
    fig = scaling_figure(REAL, title="dcnv2_x8 on synthetic", bayes_auc=0.8468, lr_auc=0.6698)
    ax_auc, ax_ll = fig.axes
    lo, hi = ax_auc.get_ylim()
    data_lo, data_hi = 0.78505 - 0.00221, 0.79129  # 1x mean - sd .. 8x mean
    margin = 0.5 * (data_hi - data_lo)  # padding plus the bands that hold the two notes
    assert data_lo - margin <= lo < data_lo and data_hi < hi <= data_hi + margin
    assert hi < 0.80 and lo > 0.775  # a gain of 0.006 fills the panel, not a fifth of it
    texts = [t.get_text() for t in ax_auc.texts]
    assert "↑ Bayes-optimal AUC 0.8468 (planted model), above the axis" in texts
    assert "↓ logistic regression AUC 0.6698, below the axis" in texts
    assert not _hlines_at(ax_auc, 0.8468) and not _hlines_at(ax_auc, 0.6698)  # notes, not lines
    assert _hlines_at(ax_auc, 0.78505)  # the 1x reference stays a dotted line
    ll_lo, ll_hi = ax_ll.get_ylim()
    assert 0.45319 - 0.002 < ll_lo < 0.45319 and 0.46122 + 0.00228 < ll_hi < 0.46122 + 0.00228 + 0.002
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["significant vs 1× (DeLong)", "mean 1× AUC (reference)"]


def test_plot_references_near_the_data_are_lines_on_the_axis() -> None:
    fig = scaling_figure(REAL, bayes_auc=0.7935, lr_auc=0.7790)  # both within half the data's span
    ax_auc = fig.axes[0]
    assert not ax_auc.texts
    lo, hi = ax_auc.get_ylim()
    for y, label in ((0.7935, "Bayes-optimal AUC 0.7935 (planted model)"), (0.7790, "logistic regression AUC 0.7790")):
        (line,) = _hlines_at(ax_auc, y)
        assert line.get_label() == label and lo < y < hi
        assert label in [t.get_text() for t in fig.legends[0].get_texts()]
    # one near, one far: the far one stays a note on its side
    fig = scaling_figure(REAL, bayes_auc=0.8468, lr_auc=0.7790)
    ax_auc = fig.axes[0]
    assert [t.get_text() for t in ax_auc.texts] == ["↑ Bayes-optimal AUC 0.8468 (planted model), above the axis"]
    assert _hlines_at(ax_auc, 0.7790) and ax_auc.get_ylim()[1] < 0.80
    # without references: no notes, no legend entries for them
    fig = scaling_figure(REAL)
    assert not fig.axes[0].texts and len(fig.legends[0].get_texts()) == 2


def test_plot_error_bars_only_for_several_distinct_draws() -> None:
    t = _table([1, 2, 4, 8, 16], [0.70, 0.71, 0.715, 0.72, 0.721], [0.5, 0.49, 0.48, 0.475, 0.47],
               [False, True, True, True, True], n_draws=[8, 4, 1, 2, 1])
    t.loc[t["scale"] == 4, ["auc_std", "logloss_std"]] = 0.0  # one draw: an sd of 0 is no spread either
    t.loc[t["scale"] == 8, ["auc_std", "logloss_std"]] = NAN  # sd unknown: nothing to draw
    fig = scaling_figure(t, bayes_auc=0.9)
    ax_auc, ax_ll = fig.axes
    assert _errorbar_x(ax_auc) == [1.0, 2.0] and _errorbar_x(ax_ll) == [1.0, 2.0]
    # several ensembles: each gets its own bars, the ensembles lead the legend
    fig = scaling_figure({"a": t, "b": t.assign(n_draws=[8, 4, 4, 4, 4], auc_std=0.001, logloss_std=0.001)})
    assert _errorbar_x(fig.axes[0]) == [1.0, 1.0, 2.0, 2.0, 4.0, 8.0, 16.0]
    labels = [x.get_text() for x in fig.legends[0].get_texts()]
    assert labels == ["a", "b", "significant vs 1× (DeLong)", "mean 1× AUC (reference)"]


def test_scaling_plot_png_of_a_realistic_table(tmp_path) -> None:
    target = tmp_path / "synthetic" / "dcnv2_x8" / "scaling.png"
    assert scaling_plot(REAL, target, title="dcnv2_x8 on synthetic", bayes_auc=0.8468, lr_auc=0.6698) == target
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 480)  # 10 x 4 inches at 120 dpi
