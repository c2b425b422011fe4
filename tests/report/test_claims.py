"""Verdicts of the paper's claims computed from small hand-made result tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from ttsctr.errors import ConfigError
from ttsctr.report.claims import (CLAIMS, FRAME_COLUMNS, STATUSES, ClaimSettings, claims_frame,
                                  evaluate_claims)
from ttsctr.report.results import DatasetResults, EnsembleResult

# ----------------------------------------------------------------------------- builders


def scaling(aucs, *, members=None, scales=None, p_top=0.0, draws=None, n_1x=8):
    """A scaling.csv: 1x row untested, every later row tested with p 1e-6 except the top one
    (``p_top``); ``significant`` as the pipeline sets it at alpha 0.05."""
    n = len(aucs)
    scales = scales or [2 ** i for i in range(n)]
    members = members or scales
    draws = draws or [8] * (n - 1) + [1]
    ps = [math.nan] + [1e-6] * (n - 2) + [p_top] if n > 1 else [math.nan]
    diffs = [math.nan] + [a - aucs[0] for a in aucs[1:]]
    return pd.DataFrame({
        "scale": scales, "n_members": members, "n_draws": draws, "auc_mean": aucs,
        "auc_std": [0.001] * n, "logloss_mean": [0.45] * n, "auc_1x": [aucs[0]] * n, "n_1x": [n_1x] * n,
        "delong_auc_diff": diffs, "p_ttest": [math.nan] * n, "p_delong": ps,
        "significant": [bool(p < 0.05 and d > 0) for p, d in zip(ps, diffs)],
    })


def hom(name, aucs, **kw):
    return EnsembleResult(name, "homogeneous", (name.split("_")[0],), 1, None, scaling(aucs, **kw))


def het(name, aucs, **kw):
    backbones = tuple(name.split("_")[:-1])
    n = len(aucs)
    members = [len(backbones) * 2 ** i for i in range(n)]
    return EnsembleResult(name, "heterogeneous", backbones, 1, None, scaling(aucs, members=members, **kw))


def grouped(name, baseline, aucs, members):
    return EnsembleResult(name, "homogeneous", (name.split("_")[0],), 2, baseline,
                          scaling(aucs, members=members, scales=list(range(1, len(aucs) + 1))))


def data(*ensembles, **baselines):
    return DatasetResults("toy", {e.name: e for e in ensembles}, baselines)


def verdict(results, claim, settings=ClaimSettings()):
    out = {r.claim: r for r in evaluate_claims(results, settings)}
    return out[claim]


UP = [0.7851, 0.7885, 0.7904, 0.7913]


# ----------------------------------------------------------------------------- general


def test_order_statuses_and_empty_results_are_not_run():
    results = evaluate_claims(DatasetResults("empty", {}, {}))
    assert [r.claim for r in results] == list(CLAIMS) == [f"C{i}" for i in range(1, 9)]
    assert all(r.status == "not run" and r.comparisons == 0 and r.significant is None for r in results)
    assert all(r.dataset == "empty" and r.statement == CLAIMS[r.claim] for r in results)
    assert STATUSES == ("holds", "partly", "does not hold", "not run")


def test_claims_frame_long_layout():
    df = claims_frame([data(hom("dcnv2_x8", UP)), DatasetResults("other", {}, {})])
    assert tuple(df.columns) == FRAME_COLUMNS
    assert len(df) == 16 and list(df["dataset"].unique()) == ["toy", "other"]
    assert str(df["significant"].dtype) == "Int64"
    first = df.iloc[0]
    assert (first["claim"], first["status"], first["comparisons"], first["significant"]) == ("C1", "holds", 1, 1)
    assert df["significant"].isna().sum() == 15


# ----------------------------------------------------------------------------- C1


def test_c1_holds_with_evidence_numbers_and_draws():
    v = verdict(data(hom("dcnv2_x8", UP)), "C1")
    assert (v.status, v.comparisons, v.significant) == ("holds", 1, 1)
    assert "0.7851 → 0.7885 → 0.7904 → 0.7913" in v.evidence
    assert "8× vs 1× DeLong p < 1e-300" in v.evidence
    assert "(1 distinct draw" in v.evidence


def test_c1_partly_when_one_backbone_dips():
    v = verdict(data(hom("dcnv2_x8", UP), hom("wukong_x8", [0.74, 0.75, 0.749, 0.76], p_top=3e-4)), "C1")
    assert (v.status, v.comparisons, v.significant) == ("partly", 2, 2)
    assert "AUC falls 2×→4×" in v.evidence and "p = 3e-04" in v.evidence


def test_c1_does_not_hold_when_top_scale_not_significant_at_alpha():
    v = verdict(data(hom("dcnv2_x8", UP, p_top=0.03)), "C1")
    assert (v.status, v.significant) == ("holds", 1)
    v = verdict(data(hom("dcnv2_x8", UP, p_top=0.03)), "C1", ClaimSettings(alpha=0.01))
    assert (v.status, v.comparisons, v.significant) == ("does not hold", 1, 0)
    assert "p = 0.030" in v.evidence and "not significant" in v.evidence


def test_c1_takes_the_ensemble_with_more_scales_and_ignores_others():
    short = hom("dcnv2_x4", [0.79, 0.78, 0.77])
    results = data(short, hom("dcnv2_x8", UP), het("wukong_rankmixer_x8", [0.7, 0.71]),
                   grouped("dcnv2_grouped_x8", "dcnv2_x8", [0.78, 0.79], [2, 4]), hom("fnn_x1", [0.7]))
    v = verdict(results, "C1")
    assert (v.status, v.comparisons) == ("holds", 1)
    assert "dcnv2_x8" in v.evidence and "dcnv2_x4" not in v.evidence


def test_c1_not_run_without_a_multi_scale_homogeneous_ensemble():
    v = verdict(data(hom("fnn_x1", [0.7]), het("wukong_rankmixer_x8", [0.7, 0.71])), "C1")
    assert (v.status, v.comparisons, v.significant) == ("not run", 0, None)


def test_scaling_table_missing_column_raises_naming_it():
    bad = hom("dcnv2_x8", UP)
    bad = EnsembleResult(bad.name, bad.layout, bad.backbones, 1, None, bad.table.drop(columns=["auc_mean"]))
    with pytest.raises(ConfigError, match=r"dcnv2_x8.*'auc_mean'"):
        evaluate_claims(data(bad))


# ----------------------------------------------------------------------------- C2


def test_c2_partly_against_each_backbone_at_equal_k():
    results = data(hom("wukong_x8", [0.7369, 0.7409, 0.7433, 0.7444]),
                   hom("rankmixer_x8", [0.7217, 0.7294, 0.7334, 0.7351]),
                   het("wukong_rankmixer_x8", [0.7343, 0.7390, 0.7403]))  # K = 2, 4, 8
    v = verdict(results, "C2")
    assert (v.status, v.comparisons, v.significant) == ("partly", 6, None)
    assert "K=2 0.7343 vs 0.7409 (-0.0066)" in v.evidence
    assert "K=2 0.7343 vs 0.7294 (+0.0049)" in v.evidence
    assert "no paired test stored" in v.evidence and "1–8 distinct draws" in v.evidence


def test_c2_holds_and_does_not_hold():
    rm = hom("rankmixer_x8", [0.70, 0.71, 0.72, 0.73])
    v = verdict(data(rm, het("wukong_rankmixer_x8", [0.75, 0.76, 0.77])), "C2")
    assert (v.status, v.comparisons) == ("holds", 3)  # wukong missing: only rankmixer cells
    assert "no homogeneous wukong ensemble" in v.evidence
    v = verdict(data(rm, het("wukong_rankmixer_x8", [0.60, 0.61, 0.62])), "C2")
    assert (v.status, v.comparisons) == ("does not hold", 3)


def test_c2_not_run_without_matching_homogeneous_ensemble():
    v = verdict(data(hom("dcnv2_x8", UP), het("wukong_rankmixer_x8", [0.75, 0.76])), "C2")
    assert (v.status, v.comparisons, v.significant) == ("not run", 0, None)


# ----------------------------------------------------------------------------- C3


def test_c3_holds_at_a_group_size_above_at_every_k_and_is_partly_when_mixed():
    base = hom("dcnv2_x8", UP)  # n_members 1, 2, 4, 8
    mixed = grouped("dcnv2_grouped_x8", "dcnv2_x8", [0.7880, 0.7900, 0.7920], [2, 4, 8])
    v = verdict(data(base, mixed), "C3")
    assert (v.status, v.comparisons, v.significant) == ("partly", 1, None)  # one group size, above at 2/3 K
    assert "K=2 0.7880 vs 0.7885 (-0.0005)" in v.evidence and "K=8 0.7920 vs 0.7913 (+0.0007)" in v.evidence
    better = grouped("dcnv2_grouped4_x8", "dcnv2_x8", [0.7910, 0.7920], [4, 8])
    v = verdict(data(base, mixed, better), "C3")  # "at some group size": the second one is above at every K
    assert (v.status, v.comparisons) == ("holds", 2) and "1/2 group sizes" in v.evidence


def test_c3_does_not_hold_and_not_run():
    base = hom("dcnv2_x8", UP)
    g = grouped("dcnv2_grouped_x8", "dcnv2_x8", [0.7800, 0.7810], [2, 4])
    assert verdict(data(base, g), "C3").status == "does not hold"
    v = verdict(data(g), "C3")  # baseline absent
    assert (v.status, v.comparisons) == ("not run", 0)
    assert "dcnv2_x8 not present" in v.evidence


# ----------------------------------------------------------------------------- C4


def param_table(rows):
    cols = ["model", "scale", "method", "test_auc", "best_of_scale", "p_value", "draws"]
    return pd.DataFrame([dict(zip(cols, r + (1,))) for r in rows])


PARAM = param_table([
    ("wukong", 1.0, "param:base", 0.737, True, np.nan),
    ("wukong", 1.0, "tts", 0.737, False, np.nan),
    ("wukong", 2.0, "param:layers", 0.760, False, np.nan),  # better test AUC but not chosen
    ("wukong", 2.0, "param:nf_nl_k", 0.718, True, np.nan),
    ("wukong", 2.0, "tts", 0.7465, False, 0.0198),
    ("wukong", 4.0, "param:nf_nl_k", 0.746, True, np.nan),
    ("wukong", 4.0, "tts", 0.750, False, 0.73),
    ("dcnv2", 2.0, "param:width", 0.7312, True, np.nan),
    ("dcnv2", 2.0, "tts", 0.7287, False, 0.645),
    ("dcnv2", 4.0, "param:width", 0.7443, True, np.nan),
    ("dcnv2", 4.0, "tts", 0.7299, False, 0.024),
])


def test_c4_partly_against_best_of_scale_with_p_counts():
    v = verdict(data(param_scaling=PARAM), "C4")
    assert (v.status, v.comparisons, v.significant) == ("partly", 4, 2)
    assert "2× 0.7465 vs nf_nl_k 0.7180 (+0.0285, p = 0.020)" in v.evidence
    assert "4× 0.7299 vs width 0.7443 (-0.0144, p = 0.024)" in v.evidence
    assert "1 in favour, 1 against" in v.evidence and "1 draw" in v.evidence


def test_c4_holds_does_not_hold_not_run():
    wukong = PARAM[PARAM["model"] == "wukong"]
    assert verdict(data(param_scaling=wukong), "C4").status == "holds"
    assert verdict(data(param_scaling=PARAM[PARAM["model"] == "dcnv2"]), "C4").status == "does not hold"
    only_1x = PARAM[PARAM["scale"] == 1.0]
    v = verdict(data(param_scaling=only_1x), "C4")
    assert (v.status, v.comparisons, v.significant) == ("not run", 0, None)
    assert verdict(data(), "C4").evidence == "no param_scaling table"


def test_c4_missing_column_raises_naming_table_and_column():
    with pytest.raises(ConfigError, match=r"param_scaling.*'best_of_scale'"):
        evaluate_claims(data(param_scaling=PARAM.drop(columns=["best_of_scale"])))


# ----------------------------------------------------------------------------- C5


def width_table(rows):
    cols = ["configuration", "method", "seed", "test_auc", "pm_vs", "p_value", "draws"]
    return pd.DataFrame([dict(zip(cols, r + (1,))) for r in rows])


def test_c5_pm_against_the_better_baseline():
    t = width_table([
        ("W*2", "ME", 0, 0.7531, "", np.nan), ("W*2", "D-MoE", 0, 0.7364, "", np.nan),
        ("W*2", "PM", 0, 0.7619, "ME", 0.0219),
        ("R*2", "ME", 0, 0.7439, "", np.nan), ("R*2", "D-MoE", 0, 0.7650, "", np.nan),
        ("R*2", "PM", 0, 0.7608, "ME", 0.2),
    ])
    v = verdict(data(width_scaling=t), "C5")
    assert (v.status, v.comparisons, v.significant) == ("partly", 2, 1)
    assert "W*2: PM 0.7619 vs ME 0.7531 / D-MoE 0.7364 (+0.0088 over ME; DeLong p = 0.022 vs ME; 1 draw)" \
        in v.evidence
    assert "-0.0042 over D-MoE" in v.evidence
    assert verdict(data(width_scaling=t[t["configuration"] == "W*2"]), "C5").status == "holds"
    assert verdict(data(width_scaling=t[t["configuration"] == "R*2"]), "C5").status == "does not hold"
    no_pm = t[t["method"] != "PM"]
    assert verdict(data(width_scaling=no_pm), "C5").status == "not run"


def test_c5_several_draws_use_a_paired_t_test():
    pm, me = [0.76, 0.762, 0.765], [0.75, 0.755, 0.751]
    rows = []
    for seed in range(3):
        rows += [("R+W", "ME", seed, me[seed], "", np.nan), ("R+W", "D-MoE", seed, 0.70, "", np.nan),
                 ("R+W", "PM", seed, pm[seed], "ME", 0.5)]
    v = verdict(data(width_scaling=width_table(rows)), "C5")
    p = ttest_rel(pm, me).pvalue
    assert (v.status, v.comparisons, v.significant) == ("holds", 1, int(p < 0.05))
    assert f"paired t over 3 draws p = {p:.3f}" in v.evidence and "3 draws" in v.evidence


# ----------------------------------------------------------------------------- C6


def ortho(gains, ps):
    return pd.DataFrame({"model": ["wukong"] * len(gains), "param_scale": [2.0 ** i for i in range(len(gains))],
                         "dimension": ["layers"] * len(gains), "tts_members": 4, "auc_gain": gains,
                         "p_value": ps, "draws": 1})


def test_c6_statuses_and_significance():
    v = verdict(data(orthogonality=ortho([0.0128, 0.0199, 0.0034], [0.167, 0.036, 0.665])), "C6")
    assert (v.status, v.comparisons, v.significant) == ("holds", 3, 1)
    assert "2× layers +0.0199 (p = 0.036)" in v.evidence and "TTS 4×" in v.evidence
    assert verdict(data(orthogonality=ortho([0.01, -0.002], [0.01, 0.5])), "C6").status == "partly"
    assert verdict(data(orthogonality=ortho([-0.01, -0.002], [0.01, 0.5])), "C6").status == "does not hold"
    assert verdict(data(orthogonality=ortho([], [])), "C6").status == "not run"


# ----------------------------------------------------------------------------- C7


def merging(model, backbone, by_k):
    rows = [(model, 1, "backbone", backbone)]
    for k, methods in by_k.items():
        rows += [(model, k, m, a) for m, a in methods.items()]
    return pd.DataFrame(rows, columns=["model", "members", "method", "test_auc"]).assign(draws=1)


def test_c7_uses_plain_weights_at_the_largest_k():
    wukong = merging("wukong", 0.7226, {
        2: {"pred": 0.70, "weights": 0.7300},  # smaller K would fail; only the largest K counts
        8: {"pred": 0.7446, "weights": 0.5629, "weights_aligned": 0.5750, "weights_shared_init": 0.7411},
    })
    dcnv2 = merging("dcnv2", 0.7332, {8: {"pred": 0.7318, "weights": 0.7377, "weights_aligned": 0.60}})
    v = verdict(data(model_merging=wukong), "C7")
    assert (v.status, v.comparisons, v.significant) == ("holds", 1, None)
    assert "wukong K=8: backbone 0.7226, pred 0.7446 (+0.0220), weights 0.5629 (-0.1597)" in v.evidence
    assert "weights_aligned 0.5750" in v.evidence and "weights_shared_init 0.7411" in v.evidence
    v = verdict(data(model_merging=dcnv2), "C7")  # aligned collapses, plain does not: verdict on plain
    assert v.status == "does not hold" and "weights not below backbone" in v.evidence
    v = verdict(data(model_merging=pd.concat([dcnv2, wukong])), "C7")
    assert (v.status, v.comparisons) == ("partly", 2)


def test_c7_collapse_margin_and_not_run():
    small = merging("fnn", 0.75, {4: {"pred": 0.76, "weights": 0.745}})
    assert verdict(data(model_merging=small), "C7").status == "does not hold"
    assert verdict(data(model_merging=small), "C7", ClaimSettings(collapse_margin=0.001)).status == "holds"
    v = verdict(data(model_merging=merging("fnn", 0.75, {4: {"pred": 0.76}})), "C7")
    assert (v.status, v.comparisons) == ("not run", 0)


# ----------------------------------------------------------------------------- C8


def free(gains):
    rows = [("dcnv2", "Naive", "Naive", 0.0), ("dcnv2", "Naive", "DP", 0.002), ("dcnv2", "DP", "DP+MC", -0.0006)]
    rows += [("dcnv2", "Naive", v, g) for v, g in gains.items()]
    return pd.DataFrame(rows, columns=["model", "source_i", "source_j", "auc_gain"])


def test_c8_statuses_and_context_pairs():
    v = verdict(data(training_free=free({"Naive+MC": -0.00031, "Naive+FM": -0.00001})), "C8")
    assert (v.status, v.comparisons, v.significant) == ("holds", 2, None)
    assert "Naive + Naive+MC -0.00031" in v.evidence and "Naive + DP +0.00200" in v.evidence
    assert verdict(data(training_free=free({"Naive+MC": 0.003, "Naive+FM": 0.0})), "C8").status == "partly"
    assert verdict(data(training_free=free({"Naive+MC": 0.003, "Naive+FM": -0.002})), "C8").status == "does not hold"
    v = verdict(data(training_free=free({})), "C8")
    assert (v.status, v.comparisons) == ("not run", 0)


def test_c8_missing_column_raises():
    with pytest.raises(ConfigError, match=r"training_free.*'auc_gain'"):
        evaluate_claims(data(training_free=free({}).drop(columns=["auc_gain"])))


# ----------------------------------------------------------------------------- settings


def test_settings_from_mapping():
    assert ClaimSettings.from_mapping(None) == ClaimSettings()
    s = ClaimSettings.from_mapping({"alpha": 0.01, "no_gain_tolerance": 2e-3})
    assert (s.alpha, s.collapse_margin, s.no_gain_tolerance) == (0.01, 0.01, 0.002)
    with pytest.raises(ConfigError, match=r"report\.claims\.bogus"):
        ClaimSettings.from_mapping({"alpha": 0.05, "bogus": 1})
    with pytest.raises(ConfigError, match=r"report\.claims\.collapse_margin"):
        ClaimSettings.from_mapping({"collapse_margin": "0.01"})
    with pytest.raises(ConfigError, match=r"report\.claims\.alpha"):
        ClaimSettings.from_mapping({"alpha": True})
    with pytest.raises(ConfigError, match=r"report\.claims\.alpha"):
        ClaimSettings.from_mapping({"alpha": 1.5})
    with pytest.raises(ConfigError, match=r"report\.claims"):
        ClaimSettings.from_mapping([("alpha", 0.05)])


def test_result_values_are_checked():
    with pytest.raises(ConfigError, match="layout"):
        EnsembleResult("x_x2", "mixed", ("x",), 1, None, scaling(UP))
    with pytest.raises(ConfigError, match="group_size"):
        EnsembleResult("x_x2", "homogeneous", ("x",), 0, None, scaling(UP))
    with pytest.raises(ConfigError, match="named"):
        DatasetResults("toy", {"other": hom("dcnv2_x8", UP)}, {})
