"""The analysis nodes on tiny prediction files: selection never touches the test split; outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from projecthelpers import write_group_predictions
from ttsctr.data.version import DataVersionError
from ttsctr.experiment import plan_ensemble
from ttsctr.pipelines.analysis import create_pipeline, nodes

SUMMARY = {"dataset": "toy", "data_version": "00ff00ff00ff00ff"}
ANALYSIS = {"draws": 4, "seed": 0, "overlap_bins": 50, "histogram_bins": 20, "max_pairs": 10,
            "selection": {"strategies": ["exhaustive", "greedy", "top_auc", "diversity_js", "random"],
                          "budgets": [1, 2, 3, 4, 8], "random_draws": 4, "exhaustive_limit": 100}}


@pytest.fixture()
def plans_and_predictions(tmp_path: Path):
    single = plan_ensemble("d4", {"members": [{"backbone": "dcnv2", "seeds": 4}], "scales": [1, 2, 4], "draws": 2})
    grouped = plan_ensemble("dg4", {"members": [{"backbone": "dcnv2", "seeds": 4, "first_seed": 10}], "group_size": 2,
                                    "scales": [2, 4], "draws": 2, "baseline": "d4"})
    rng = np.random.default_rng(0)
    truths = {}
    for split, n in (("validation", 1500), ("test", 2500)):
        t = 1.5 * rng.normal(size=n) - 1.0
        truths[split] = (t, (rng.random(n) < 1 / (1 + np.exp(-t))).astype(np.int64))
    manifests = {p.name: write_group_predictions(tmp_path, p, rng, truths, SUMMARY["data_version"]) for p in (single, grouped)}
    return single, grouped, manifests


def test_selection_reads_the_validation_split_only(plans_and_predictions) -> None:
    single, _, manifests = plans_and_predictions
    for m in manifests["d4"]:  # the test rows do not exist while members are chosen
        Path(m["files"]["test"]).rename(m["files"]["test"] + ".hidden")
    chosen = nodes.choose_members_on_validation(SUMMARY, ANALYSIS, *manifests["d4"], ensemble=single)
    assert chosen["split"] == "validation" and chosen["data_version"] == SUMMARY["data_version"]
    strategies = {c["strategy"] for c in chosen["choices"]}
    assert strategies == {"exhaustive", "greedy", "top_auc", "diversity_js", "random"}
    assert {c["k"] for c in chosen["choices"]} == {1, 2, 3, 4}  # budget 8 exceeds the 4 members
    with pytest.raises(Exception, match="test.parquet"):
        nodes.score_members_on_test(SUMMARY, chosen, *manifests["d4"], ensemble=single)
    for m in manifests["d4"]:
        Path(m["files"]["test"] + ".hidden").rename(m["files"]["test"])
    scored = nodes.score_members_on_test(SUMMARY, chosen, *manifests["d4"], ensemble=single)
    assert len(scored) == len(chosen["choices"]) and scored["auc"].between(0.5, 1).all()
    greedy = scored[scored["strategy"] == "greedy"].set_index("k")["selection_auc"]
    random = scored[scored["strategy"] == "random"].groupby("k")["selection_auc"].mean()
    assert (greedy >= random - 1e-12).all()


def test_pipeline_wires_selection_to_validation_and_skips_grouped_ensembles(plans_and_predictions) -> None:
    single, grouped, _ = plans_and_predictions
    pipe = create_pipeline([single, grouped])
    names = {n.name for n in pipe.nodes}
    assert {"d4.choose_members", "d4.score_members", "d4.analyse_scaling", "dg4.analyse_scaling",
            "summarise_analysis"} <= names
    assert not any(n.startswith("dg4.") and "members" in n for n in names)
    choose = next(n for n in pipe.nodes if n.name == "d4.choose_members")
    assert choose.inputs == ["model_input_summary", "params:analysis", "d4__group_00__group_predictions",
                             "d4__group_01__group_predictions", "d4__group_02__group_predictions",
                             "d4__group_03__group_predictions"]  # manifests; the node opens their validation files


def test_summary_gathers_every_ensemble_and_refuses_other_data_versions(plans_and_predictions) -> None:
    single, grouped, manifests = plans_and_predictions
    tables = [*nodes.analyse_scaling(SUMMARY, ANALYSIS, *manifests["d4"], ensemble=single),
              *nodes.analyse_scaling(SUMMARY, ANALYSIS, *manifests["dg4"], ensemble=grouped)]
    chosen = nodes.choose_members_on_validation(SUMMARY, ANALYSIS, *manifests["d4"], ensemble=single)
    tables.append(nodes.score_members_on_test(SUMMARY, chosen, *manifests["d4"], ensemble=single))
    out = nodes.summarise_analysis(SUMMARY, ANALYSIS, *tables, ensembles=(single, grouped), selectable=("d4",))
    summary, stats, pairs, correlations, selection, markdown, *images = out
    assert summary["selectable"] == ["d4"] and summary["selection_split"] == "validation"
    assert [e["name"] for e in summary["ensembles"]] == ["d4", "dg4"]
    assert set(stats["label"]) == {"d4 (basic)", "dg4 (grouped ×2)"}
    assert (stats.loc[stats["ensemble"] == "dg4", "group_size"] == 2).all()
    assert set(pairs["ensemble"]) == {"d4", "dg4"} and len(pairs[pairs["ensemble"] == "dg4"]) == 1
    assert "Selection not run for dg4" in markdown and "## Fig. 5" in markdown
    assert len(images) == 3 and all(im.size[0] > 300 for im in images)
    other = {**SUMMARY, "data_version": "1111111111111111"}
    with pytest.raises(DataVersionError, match="data version 00ff00ff00ff00ff"):
        nodes.analyse_scaling(other, ANALYSIS, *manifests["d4"], ensemble=single)
    with pytest.raises(Exception, match=r"analysis.selection: unknown keys \['bogus'\]"):
        nodes.choose_members_on_validation(SUMMARY, {**ANALYSIS, "selection": {"bogus": 1}}, *manifests["d4"],
                                           ensemble=single)
