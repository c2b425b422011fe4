"""FLOPs-matched configurations: every generated multiple within 15% of its target, by measurement."""

from __future__ import annotations

import pytest

from ttsctr.baselines.param_scaling import SCALING_DIMENSIONS, scaled_config, scaling_plan
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import model_cost
from ttsctr.models import build_model

SPEC = FeatureSpec(tuple(f"f{i}" for i in range(12)), (30,) * 12)


@pytest.mark.parametrize("model", sorted(SCALING_DIMENSIONS))
def test_every_dimension_lands_within_tolerance_of_its_target(model):
    plan = scaling_plan({model: list(SCALING_DIMENSIONS[model])}, [1, 2, 8], SPEC)
    assert {(c.dimension, c.target) for c in plan} == {(d, float(t)) for d in SCALING_DIMENSIONS[model] for t in (1, 2, 8)}
    for c in plan:
        assert abs(c.flops_multiple / c.target - 1) <= 0.15, (c.dimension, c.target, c.flops_multiple)
        # the stored cost is what the configuration really costs when built again
        measured = model_cost(build_model(model, SPEC, "small", **c.overrides), batch_size=8).flops_per_row
        assert measured == pytest.approx(c.flops_per_row)
        if c.target == 1:
            assert c.overrides == {}


def test_dimensions_change_what_they_name():
    depth = scaled_config("dcnv2", "depth", 4, SPEC)
    width = scaled_config("dcnv2", "width", 4, SPEC)
    both = scaled_config("dcnv2", "both", 4, SPEC)
    assert set(depth.overrides) == {"cross_layers"} and depth.overrides["cross_layers"] > 2
    assert set(width.overrides) == {"hidden_units"} and width.overrides["hidden_units"][0] > 128
    assert both.overrides["cross_layers"] > 2 and both.overrides["hidden_units"][0] != 128
    wukong = scaled_config("wukong", "nf_nl_k", 2, SPEC)
    assert wukong.overrides["fmb_embeddings"] == wukong.overrides["lcb_embeddings"] == wukong.overrides["fmb_rank"] > 8
    mixer = scaled_config("rankmixer", "dim", 4, SPEC)
    assert mixer.overrides["token_dim"] % 8 == 0  # a multiple of the small preset's 8 tokens


def test_bad_scaling_requests_name_the_parameter():
    with pytest.raises(ConfigError, match=r"param_scaling.dimensions.dcnv2: unknown dimension 'height'.*depth"):
        scaling_plan({"dcnv2": ["height"]}, [1, 2], SPEC)
    with pytest.raises(ConfigError, match=r"param_scaling.dimensions.fnn: model 'fnn' has no scaling dimensions"):
        scaling_plan({"fnn": ["width"]}, [1, 2], SPEC)
    # one more cross layer adds about a quarter of the FLOPs: 1.1x lies between two whole depths
    with pytest.raises(ConfigError, match=r"dcnv2 cannot reach 1.1x its FLOPs along 'depth'.*tolerance 5%"):
        scaled_config("dcnv2", "depth", 1.1, SPEC, tolerance=0.05)
    with pytest.raises(ConfigError, match="targets must be numbers >= 1"):
        scaled_config("dcnv2", "width", 0.5, SPEC)
    with pytest.raises(ConfigError, match=r"param_scaling.scales must be a non-empty list of multiples >= 1"):
        scaling_plan({"dcnv2": ["width"]}, [1, 0.5], SPEC)
    with pytest.raises(ConfigError, match=r"param_scaling.flops_tolerance must be a number in \(0, 1\)"):
        scaling_plan({"dcnv2": ["width"]}, [1], SPEC, tolerance=2)
    with pytest.raises(ConfigError, match="param_scaling.dimensions.dcnv2 must be a list of dimensions"):
        scaling_plan({"dcnv2": "width"}, [1], SPEC)


def test_both_grows_depth_and_width_in_balance():
    c = scaled_config("dcnv2", "both", 4, SPEC)
    depth = c.overrides["cross_layers"] / 2
    width = c.overrides["hidden_units"][0] / 128
    assert depth > 1 and width >= 1 and abs(c.flops_multiple / 4 - 1) <= 0.15


def test_a_tuned_name_must_act_on_every_model_and_not_undo_a_scaled_dimension():
    from ttsctr.baselines.scaling_study import check_search_space

    plan = scaling_plan({"dcnv2": ["depth"], "wukong": ["layers"]}, [1, 2], SPEC)
    check_search_space({"learning_rate": None, "dropout": None}, plan)
    with pytest.raises(ConfigError, match=r"search_space.num_layers: not a training setting .* nor a config key of dcnv2"):
        check_search_space({"num_layers": None}, plan)
    with pytest.raises(ConfigError, match=r"search_space.cross_layers: tuning it would change what dcnv2's 'depth'"):
        check_search_space({"cross_layers": None}, plan[:2])
