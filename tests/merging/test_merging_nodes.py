"""The merging and reporting nodes without Kedro, on tiny prediction files, and the served merge rule."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from projecthelpers import write_group_predictions
from ttsctr.data.version import DataVersionError
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.training import GroupModel, MemberSpec, build_group
from ttsctr.experiment import plan_ensemble
from ttsctr.merging import MERGE_RULES, member_diversity, merge_pool
from ttsctr.pipelines.merging import create_pipeline as merging_pipeline
from ttsctr.merging.predictions import load_member_pool
from ttsctr.pipelines.merging.nodes import merge_ensemble
from ttsctr.pipelines.reporting import create_pipeline as reporting_pipeline
from ttsctr.pipelines.reporting.nodes import summarise_experiment
from ttsctr.serving import MergedEnsembleModel, predict_merged

LR = {"dataset": "synthetic", "test_auc": 0.6012, "test_logloss": 0.6543, "valid_auc": 0.6, "valid_logloss": 0.65,
      "C": 1.0, "seconds": 1.5}
SUMMARY = {"dataset": "synthetic", "bayes_optimal_auc": 0.8123, "data_version": "00ff00ff00ff00ff"}
MERGING = {"seed": 0, "alpha": 0.05, "split": "test"}


@pytest.fixture(scope="module")
def plans():
    single = plan_ensemble("d4", {"members": [{"backbone": "dcnv2", "seeds": 4}], "scales": [1, 2, 4], "draws": 2})
    grouped = plan_ensemble("dg4", {"members": [{"backbone": "dcnv2", "seeds": 4, "first_seed": 10}], "group_size": 2,
                                    "scales": [2, 4], "draws": 2, "baseline": "d4"})
    return single, grouped


@pytest.fixture(scope="module")
def predictions(tmp_path_factory, plans):
    rng = np.random.default_rng(0)
    truths = {}
    for split, n in (("validation", 1500), ("test", 3000)):
        t = 1.5 * rng.normal(size=n) - 1.0
        truths[split] = (t, (rng.random(n) < 1 / (1 + np.exp(-t))).astype(np.int64))
    root = tmp_path_factory.mktemp("predictions")
    return {p.name: write_group_predictions(root, p, rng, truths, SUMMARY["data_version"]) for p in plans}


def test_merge_node_tables_report_and_plot(tmp_path, plans, predictions) -> None:
    single, _ = plans
    table = merge_ensemble(SUMMARY, MERGING, {"reporting": str(tmp_path)}, LR, *predictions["d4"], ensemble=single)
    assert table["scale"].tolist() == [1, 2, 4] and table.loc[0, "n_draws"] == 4 and table.loc[2, "n_draws"] == 1
    # diversity is measured on the validation split
    valid = load_member_pool(predictions["d4"], "validation", single)
    assert table.loc[0, "pairwise_r"] == pytest.approx(member_diversity(valid).mean_r, rel=1e-12)
    test = load_member_pool(predictions["d4"], "test", single)
    assert table.loc[2, "auc_mean"] == pytest.approx(
        __import__("ttsctr.metrics").metrics.roc_auc(test.labels, merge_pool(test)), rel=1e-12)
    out = tmp_path / "synthetic" / "d4"
    md = (out / "scaling.md").read_text()
    assert "Bayes-optimal test AUC (planted model): 0.8123" in md
    assert "Logistic regression (same test split, C = 1): AUC 0.6012, logloss 0.6543" in md
    assert "| 4× | 4 | 1 |" in md and "n/a" in md and "(validation split)" in md
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert set(table["data_version"]) == {SUMMARY["data_version"]}


def test_predictions_of_another_encoding_are_refused(tmp_path, plans, predictions) -> None:
    single, _ = plans
    stale = [dict(m) for m in predictions["d4"]]
    stale[2]["data_version"] = "0123456789abcdef"
    with pytest.raises(DataVersionError, match=r"predictions of d4/group_02 was computed from data version 0123456789abcdef"):
        merge_ensemble(SUMMARY, MERGING, {"reporting": str(tmp_path)}, LR, *stale, ensemble=single)
    assert not (tmp_path / "synthetic" / "d4").exists()  # refused before anything was written
    table = merge_ensemble(SUMMARY, MERGING, {"reporting": str(tmp_path)}, LR, *predictions["d4"], ensemble=single)
    with pytest.raises(DataVersionError, match="scaling table of d4"):
        summarise_experiment({**SUMMARY, "data_version": "fedcba9876543210"}, {"reporting": str(tmp_path)}, MERGING,
                             LR, table, {"registered": []}, ensembles=(single,))


def test_user_field_adds_group_auc_to_the_table_and_report(tmp_path, plans, predictions) -> None:
    import pyarrow as pa

    from ttsctr.metrics import group_auc, roc_auc

    single, _ = plans
    test = load_member_pool(predictions["d4"], "test", single)
    users = np.arange(test.n_rows) % 37  # 37 users, each with both classes
    model_input = tmp_path / "model_input"
    model_input.mkdir()
    pq.write_table(pa.table({"label": test.labels.astype(np.int8), "user_id": users.astype(np.int32)}),
                   model_input / "test.parquet")
    summary = {**SUMMARY, "model_input_dir": str(model_input)}
    merging = {**MERGING, "user_fields": {"synthetic": "user_id"}}
    table = merge_ensemble(summary, merging, {"reporting": str(tmp_path)}, LR, *predictions["d4"], ensemble=single)
    whole = merge_pool(test)
    assert table.loc[2, "gauc_mean"] == pytest.approx(group_auc(test.labels, whole, users), rel=1e-12)
    singles = [group_auc(test.labels, 1 / (1 + np.exp(-test.logits[:, j])), users) for j in range(4)]
    assert table.loc[0, "gauc_1x"] == pytest.approx(np.mean(singles), rel=1e-12)
    assert table.loc[2, "gauc_mean"] != pytest.approx(roc_auc(test.labels, whole))  # per-user, not pooled
    assert "GAUC↑" in (tmp_path / "synthetic" / "d4" / "scaling.md").read_text()
    with pytest.raises(ConfigError, match="no column 'uid' for the group AUC"):
        merge_ensemble(summary, {**MERGING, "user_fields": {"synthetic": "uid"}}, {"reporting": str(tmp_path)}, LR,
                       *predictions["d4"], ensemble=single)


def test_grouped_node_uses_the_baseline_members_as_1x(tmp_path, plans, predictions) -> None:
    single, grouped = plans
    table = merge_ensemble(SUMMARY, MERGING, {"reporting": str(tmp_path)}, LR, *predictions["dg4"], *predictions["d4"],
                           ensemble=grouped, baseline=single)
    ref = load_member_pool(predictions["d4"], "test", single)
    aucs = [__import__("ttsctr.metrics").metrics.roc_auc(ref.labels, ref.logits[:, j]) for j in range(4)]
    assert (table["n_1x"] == 4).all() and table.loc[0, "auc_1x"] == pytest.approx(np.mean(aucs), rel=1e-12)
    assert table["p_delong"].notna().all()  # the group of 2 is tested against single members too
    md = (tmp_path / "synthetic" / "dg4" / "scaling.md").read_text()
    assert "independently trained single units of `d4`" in md
    with pytest.raises(ConfigError, match="same backbones"):
        merge_ensemble(SUMMARY, MERGING, {"reporting": str(tmp_path)}, LR, *predictions["dg4"], *predictions["dg4"],
                       ensemble=grouped, baseline=grouped)


def test_pipelines_wire_baseline_predictions_and_logistic_reference(plans) -> None:
    single, grouped = plans
    nodes = {n.name: n for n in merging_pipeline([single, grouped]).nodes}  # namespace.name, once
    assert sorted(nodes) == ["d4.merge_ensemble", "dg4.merge_ensemble"]
    assert nodes["dg4.merge_ensemble"].inputs == [
        "model_input_summary", "params:tts.merging", "params:tts.paths", "logistic_reference",
        "dg4__group_00__group_predictions", "dg4__group_01__group_predictions",
        *[f"d4__group_0{i}__group_predictions" for i in range(4)],
    ]
    assert nodes["d4.merge_ensemble"].inputs[-1] == "d4__group_03__group_predictions"
    with pytest.raises(ConfigError, match="baseline 'd4' is not among"):
        merging_pipeline([grouped])
    summary = next(n for n in reporting_pipeline([single, grouped]).nodes if n.name == "summarise_experiment")
    assert summary.inputs[:4] == ["model_input_summary", "params:tts.paths", "params:tts.merging", "logistic_reference"]


def test_summary_node_writes_the_report_and_metrics(tmp_path, plans, predictions, capsys) -> None:
    single, grouped = plans
    paths = {"reporting": str(tmp_path)}
    t1 = merge_ensemble(SUMMARY, MERGING, paths, LR, *predictions["d4"], ensemble=single)
    t2 = merge_ensemble(SUMMARY, MERGING, paths, LR, *predictions["dg4"], *predictions["d4"], ensemble=grouped, baseline=single)
    # what the reporting pipeline gets: the tables after their CSV round trip
    back = []
    for t in (t1, t2):
        t.to_csv(tmp_path / "t.csv", index=False)
        back.append(pd.read_csv(tmp_path / "t.csv"))
    metrics = summarise_experiment(SUMMARY, paths, MERGING, LR, *back, {"registered": []}, {"registered": []},
                                   ensembles=(single, grouped))
    text = (tmp_path / "synthetic" / "scaling_tables.md").read_text()
    assert text in capsys.readouterr().out  # printed as written
    assert "Bayes-optimal test AUC (planted model): 0.8123" in text
    assert "Logistic regression (same test split, C = 1): AUC 0.6012, logloss 0.6543" in text
    assert "| Dataset | Method | dcnv2 AUC↑ | dcnv2 Logloss↓ | dcnv2 (g=2) AUC↑ | dcnv2 (g=2) Logloss↓ |" in text
    assert "### dcnv2 (g=2)" in text and "independently trained single units of `d4`" in text
    assert "| 4× | 4 | 1 |" in text and "n/a" in text
    json.dumps(metrics, allow_nan=False)
    assert metrics["lr_auc"] == 0.6012 and metrics["bayes_optimal_auc"] == 0.8123
    assert metrics["d4"]["n_draws_4x"] == 1 and "p_ttest_4x" not in metrics["d4"]  # undefined: one distinct draw
    assert metrics["d4"]["auc_4x"] == pytest.approx(t1.loc[2, "auc_mean"], rel=1e-12)
    assert metrics["dg4"]["n_single"] == 4 and "p_delong_2x" in metrics["dg4"]
    assert 0 < metrics["d4"]["pairwise_r"] < 1


# ---- serving merges with the configured rule ---------------------------------------------------


SPEC = FeatureSpec(("a", "b", "c"), (4, 4, 4))


def _group(seeds: tuple[int, ...]) -> GroupModel:
    """A real group of logistic-regression members with spread-out weights: (B, M) member logits."""
    group = build_group(SPEC, [MemberSpec("lr", s) for s in seeds])
    with torch.no_grad():
        for i, member in enumerate(group.members):
            member.embedding.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(100 + seeds[i]))
    return group.eval()


def _ids(rng: np.random.Generator, n: int = 200) -> np.ndarray:
    return (rng.integers(0, 4, size=(n, 3)) + np.array(SPEC.offsets)).astype(np.int32)


@pytest.mark.parametrize("rule", ["mean_prob", "mean_logit"])
def test_served_ensemble_merges_like_the_tables(rule) -> None:
    rng = np.random.default_rng(5)
    x = _ids(rng)
    g1, g2 = _group((0,)), _group((1, 2))
    logits = np.concatenate([g1(torch.from_numpy(x)).detach().numpy(), g2(torch.from_numpy(x)).detach().numpy()],
                            axis=1).astype(np.float64)
    expected = MERGE_RULES[rule](logits)  # Eq. 13 with weights 1/3, 2/3 = the flat merge of the 3 members
    weights = np.array([1 / 3, 2 / 3])
    np.testing.assert_allclose(predict_merged([g1, g2], weights, x, batch_size=64, rule=rule), expected, rtol=1e-12)
    model = MergedEnsembleModel(rule)
    model.encoder = SimpleNamespace(encode_raw_frame=lambda f: np.array(f, dtype=np.int32), field_names=("a", "b", "c"), fields=())
    model.groups, model.group_weights = [g1, g2], weights
    served = model.predict(None, pd.DataFrame(x, columns=["a", "b", "c"]))["probability"].to_numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-12)
    # the two rules differ here, so the test above can tell them apart
    other = MERGE_RULES["mean_logit" if rule == "mean_prob" else "mean_prob"](logits)
    assert np.max(np.abs(other - expected)) > 1e-3


def test_served_rule_is_validated_and_old_models_default_to_mean_prob() -> None:
    with pytest.raises(ConfigError, match="unknown merge rule"):
        MergedEnsembleModel("median")
    old = MergedEnsembleModel.__new__(MergedEnsembleModel)  # unpickled version logged before the rule existed
    old.encoder = SimpleNamespace(encode_raw_frame=lambda f: np.array(f, dtype=np.int32), field_names=("a", "b", "c"),
                                  fields=())
    g = _group((3, 4))
    old.groups, old.group_weights = [g], np.array([1.0])
    x = _ids(np.random.default_rng(1), 2)
    served = old.predict(None, pd.DataFrame(x, columns=["a", "b", "c"]))["probability"].to_numpy()
    with torch.no_grad():
        logits = g(torch.from_numpy(x)).numpy().astype(np.float64)
    np.testing.assert_allclose(served, MERGE_RULES["mean_prob"](logits), rtol=1e-12)
