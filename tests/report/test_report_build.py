"""The report from a hand-made results tree: provenance, stale tables, missing values, unusable stores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from ttsctr.errors import ConfigError
from ttsctr.report import build_report

TTS = {"ensemble_catalog": {}, "paths": {"reporting": "data/08_reporting", "models": "data/06_models"}}


def _scaling(aucs: list[float], version: str) -> pd.DataFrame:
    n = len(aucs)
    return pd.DataFrame({"scale": [2 ** i for i in range(n)], "n_members": [2 ** i for i in range(n)],
                         "n_draws": [4] * (n - 1) + [1], "auc_mean": aucs, "auc_1x": [aucs[0]] * n,
                         "delong_auc_diff": [float("nan")] + [a - aucs[0] for a in aucs[1:]],
                         "p_delong": [float("nan")] + [1e-5] * (n - 1), "significant": [False] + [True] * (n - 1),
                         "data_version": version})


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    reporting = tmp_path / "data" / "08_reporting"
    model_input = tmp_path / "data" / "05_model_input"
    model_input.mkdir(parents=True)
    (model_input / "toy.summary.json").write_text(json.dumps({
        "dataset": "toy", "data_version": "v1", "rows": 100, "positives": 30, "raw_files": ["toy.txt"],
        "splits": {"train": {"rows": 80, "positive_rate": 0.3}, "test": {"rows": 0, "positive_rate": None}}}))
    good = reporting / "toy" / "dcnv2_x4"
    good.mkdir(parents=True)
    _scaling([0.70, 0.71, 0.72], "v1").to_csv(good / "scaling.csv", index=False)
    (good / "scaling.md").write_text("# dcnv2_x4\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (good / "ensemble.json").write_text(json.dumps({
        "name": "dcnv2_x4", "label": "dcnv2_x4 (basic)", "layout": "homogeneous", "backbones": ["dcnv2"],
        "group_size": 1, "members": 4, "presets": ["small"], "seeds": [0, 1, 2, 3], "scales": [1, 2, 4],
        "merge_rule": "mean_prob", "baseline": None}))
    old = reporting / "toy" / "fnn_x4"  # an older encoding, no ensemble.json, not in the catalog
    old.mkdir()
    _scaling([0.60, 0.59, 0.58], "v0").to_csv(old / "scaling.csv", index=False)
    width = reporting / "toy" / "width_scaling"
    width.mkdir()
    pd.DataFrame({"configuration": ["W*2"] * 3, "method": ["ME", "D-MoE", "PM"], "test_auc": [0.70, 0.69, 0.71],
                  "p_value": [float("nan")] * 3, "draws": [1, 1, 1], "data_version": "v1"}).to_csv(
        width / "table.csv", index=False)
    free = reporting / "onlybase" / "training_free"  # a dataset with one comparison and no summary
    free.mkdir(parents=True)
    pd.DataFrame({"model": "dcnv2", "source_i": ["Naive", "Naive"], "source_j": ["Naive+MC", "Naive+FM"],
                  "i": [0, 0], "j": [1, 2], "auc_gain": [0.0002, -0.0001]}).to_csv(free / "table.csv", index=False)
    return tmp_path


def test_report_from_a_tree_links_marks_stale_and_computes_claims(tree: Path) -> None:
    page, claims = build_report(tree, {"datasets": []}, TTS, "file:///nonexistent/mlruns", generated="now")
    by = claims.set_index(["dataset", "claim"])["status"]
    assert list(dict.fromkeys(claims["dataset"])) == ["onlybase", "toy"]
    assert by[("toy", "C1")] == "holds"            # dcnv2_x4 only: the stale fnn_x4 falls is left out
    assert "fnn" not in claims.set_index(["dataset", "claim"]).loc[("toy", "C1"), "evidence"]
    assert by[("toy", "C5")] == "holds" and pd.isna(claims.set_index(["dataset", "claim"]).loc[("toy", "C5"), "significant"])
    assert by[("onlybase", "C8")] == "holds"
    assert all(by[("onlybase", c)] == "not run" for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7"))
    assert "computed from data version v0, but the dataset is now encoded as v1" in page
    assert "no ensemble.json beside the table" in page
    assert "positive rate –" in page and "not found in the tracking store" in page  # missing rate, no usable store
    assert "<table>" in page and not re.search(r"""(src|href)=["']?(https?:|//)""", page)


def test_report_settings_are_checked(tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"report: unknown keys \['colour'\]"):
        build_report(tree, {"colour": "red"}, TTS, None)
    with pytest.raises(ConfigError, match=r"report.datasets: no results for \['avazu'\]"):
        build_report(tree, {"datasets": ["avazu"]}, TTS, None)
    with pytest.raises(ConfigError, match=r"report.claims.alpha"):
        build_report(tree, {"claims": {"alpha": 2}}, TTS, None)
    with pytest.raises(ConfigError, match="no results under"):
        build_report(tree / "empty", {}, TTS, None)
