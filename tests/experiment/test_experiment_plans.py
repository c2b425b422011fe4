"""Ensemble plans: member layout, training groups, draw blocks and configuration errors."""

from __future__ import annotations

import pytest

from ttsctr.errors import ConfigError
from ttsctr.experiment import config_hash, plan_ensemble, plan_experiment


def test_homogeneous_plan_lays_out_seeds_and_groups() -> None:
    plan = plan_ensemble("dcnv2_x4", {"members": [{"backbone": "DCNv2", "seeds": 4}], "group_size": 2, "scales": [2, 4]})
    assert plan.layout == "homogeneous"
    assert plan.backbones == ("dcnv2",)
    assert [m.seed for m in plan.members] == [0, 1, 2, 3]
    assert [g.name for g in plan.groups] == ["group_00", "group_01"]
    assert [g.member_indices for g in plan.groups] == [(0, 1), (2, 3)]
    assert plan.block_of_member() == [0, 0, 1, 1]
    assert plan.members_at_scale(4) == 4


def test_heterogeneous_plan_interleaves_units() -> None:
    plan = plan_ensemble(
        "wr", {"members": [{"backbone": "wukong", "seeds": [7, 8]}, {"backbone": "rankmixer", "seeds": 2, "first_seed": 100}],
               "scales": [1, 2], "preset": "small"},
    )
    assert plan.layout == "heterogeneous"
    assert [(m.backbone, m.seed) for m in plan.members] == [("wukong", 7), ("rankmixer", 100), ("wukong", 8), ("rankmixer", 101)]
    assert len(plan.groups) == 4  # group_size 1: every member trained alone
    assert plan.members_at_scale(2) == 4
    assert plan.block_of_member() == [0, 0, 1, 1]  # a draw block is one Wukong and one RankMixer
    assert all(m.preset == "small" for m in plan.members)


def test_defaults_apply_and_entries_override() -> None:
    params = {
        "ensembles": "a + b",
        "defaults": {"preset": "small", "draws": 3},
        "ensemble_catalog": {
            "a": {"members": [{"backbone": "fnn", "seeds": 2}], "scales": [1, 2]},
            "b": {"members": [{"backbone": "fnn", "seeds": 2, "preset": "default"}], "draws": 7},
        },
    }
    a, b = plan_experiment(params)
    assert (a.draws, b.draws) == (3, 7)
    assert a.members[0].preset == "small" and b.members[0].preset == "default"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"members": [{"backbone": "transformer9000", "seeds": 2}]}, "unknown model 'transformer9000'"),
        ({"members": [{"backbone": "fnn", "seeds": 2}], "scales": [1, 4]}, "scale 4 is outside 1..2"),
        ({"members": [{"backbone": "fnn", "seeds": 4}], "group_size": 3}, "group_size 3 must divide the number of members (4)"),
        ({"members": [{"backbone": "fnn", "seeds": 4}], "group_size": 2, "scales": [1]}, "not made of whole training groups"),
        ({"members": [{"backbone": "fnn", "seeds": 2}, {"backbone": "dcn", "seeds": 3}]}, "same number of seeds"),
        ({"members": [{"backbone": "fnn", "seeds": 2, "overrides": {"depth": 3}}]}, "unknown config keys ['depth']"),
        ({"members": [{"backbone": "fnn", "seeds": [1, 1]}]}, "duplicates"),
        ({"members": []}, "at least one backbone"),
    ],
)
def test_bad_configurations_name_the_problem(config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_ensemble("bad", config)
    assert message in str(info.value)
    assert "ensemble 'bad'" in str(info.value) or "unknown model" in str(info.value)


def test_unknown_ensemble_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown ensembles \['nope'\]; defined in ensemble_catalog: \['a'\]"):
        plan_experiment({"ensemble_catalog": {"a": {"members": [{"backbone": "fnn"}]}}}, ["nope"])


def test_config_hash_is_stable_and_sensitive() -> None:
    a = config_hash({"x": [1, 2], "y": {"b": 1, "a": 2}})
    assert a == config_hash({"y": {"a": 2, "b": 1}, "x": [1, 2]})
    assert a != config_hash({"x": [1, 2], "y": {"b": 1, "a": 3}})


def test_registry_plans_follow_configuration_and_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipelines are generated from conf/base + conf/local; TTSCTR_ENSEMBLES narrows one run."""
    from projecthelpers import make_project
    from ttsctr.pipelines.plans import load_plans

    project = make_project(tmp_path, {"tts": {"training": {"max_epochs": 1}}})
    monkeypatch.delenv("TTSCTR_ENSEMBLES", raising=False)
    assert [p.name for p in load_plans(project)] == ["dcnv2_x8", "wukong_rankmixer_x8"]
    monkeypatch.setenv("TTSCTR_ENSEMBLES", "wukong_x16 + rankmixer_x16")
    plans = load_plans(project)
    assert [p.name for p in plans] == ["wukong_x16", "rankmixer_x16"]
    assert [len(p.groups) for p in plans] == [16, 16]


def test_grouped_ensemble_brings_its_independent_baseline() -> None:
    params = {
        "ensembles": ["g"],
        "ensemble_catalog": {
            "solo": {"members": [{"backbone": "fnn", "seeds": 4}], "scales": [1, 2, 4]},
            "g": {"members": [{"backbone": "fnn", "seeds": 4, "first_seed": 10}], "group_size": 2,
                  "baseline": "solo", "scales": [2, 4]},
        },
    }
    plans = plan_experiment(params)
    assert [p.name for p in plans] == ["solo", "g"]  # the baseline is trained in the same run, first
    assert plans[1].baseline == "solo" and plans[0].baseline is None
    both = plan_experiment(params, ["solo", "g"])
    assert [p.name for p in both] == ["solo", "g"]


@pytest.mark.parametrize(
    ("baseline_entry", "match"),
    [
        ({"members": [{"backbone": "fnn", "seeds": 4}], "group_size": 2, "scales": [2]}, "group_size 1"),
        ({"members": [{"backbone": "dcn", "seeds": 4}]}, "backbones"),
    ],
)
def test_bad_baselines_are_refused(baseline_entry: dict, match: str) -> None:
    params = {
        "ensembles": ["g"],
        "ensemble_catalog": {
            "solo": baseline_entry,
            "g": {"members": [{"backbone": "fnn", "seeds": 4}], "group_size": 2, "baseline": "solo", "scales": [2]},
        },
    }
    with pytest.raises(ConfigError, match=match):
        plan_experiment(params)
    params["ensemble_catalog"]["g"]["baseline"] = "missing"
    with pytest.raises(ConfigError, match="not defined in ensemble_catalog"):
        plan_experiment(params)


def test_grouped_ensemble_without_baseline_is_refused() -> None:
    params = {"ensembles": ["g"],
              "ensemble_catalog": {"g": {"members": [{"backbone": "fnn", "seeds": 4}], "group_size": 2, "scales": [2]}}}
    with pytest.raises(ConfigError, match="baseline: <ensemble>"):
        plan_experiment(params)
