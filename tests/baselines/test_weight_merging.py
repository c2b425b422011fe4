"""Weight averaging and Git Re-Basin weight matching of MLP hidden units (Table 6 baseline)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from ttsctr.baselines.weight_merging import (
    align_to,
    average_weights,
    merge_weights,
    mlp_permutations,
    permute_model,
    weight_distance,
)
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import random_ids
from ttsctr.models import build_model
from ttsctr.training.group import MemberSpec, build_group

# Two CPU cores are shared by several test runs.
torch.set_num_threads(1)

BACKBONES = ("dcnv2", "finalmlp", "wukong", "rankmixer", "fnn")


@pytest.fixture
def tiny_spec() -> FeatureSpec:
    return FeatureSpec(field_names=tuple(f"f{i}" for i in range(5)), vocab_sizes=(10,) * 5)


def _model(name: str, spec: FeatureSpec, seed: int, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, spec, "small", **overrides)
    # Fresh BatchNorms are weight 1, bias 0, mean 0, var 1 — identical for every unit, so a
    # wrong permutation of them would go unnoticed. Give every unit its own values.
    generator = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                n = module.num_features
                module.weight.copy_(1 + 0.3 * torch.randn(n, generator=generator))
                module.bias.copy_(0.3 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.3 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return model.eval()


def _random_perms(model: nn.Module, seed: int) -> dict[str, list[np.ndarray]]:
    """A random permutation for every permutable MLP hidden layer (layer widths from the identity matching)."""
    rng = np.random.default_rng(seed)
    widths = mlp_permutations(model, model)
    return {name: [rng.permutation(len(p)) for p in perms] for name, perms in widths.items()}


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    state_b = b.state_dict()
    for key, tensor in a.state_dict().items():
        assert torch.equal(tensor, state_b[key]), key


# --------------------------------------------------------------------------- averaging


def test_averaging_identical_members_is_the_identity(tiny_spec):
    model = _model("fnn", tiny_spec, seed=0, batch_norm=True)
    copies = [model, copy.deepcopy(model), copy.deepcopy(model)]
    merged = average_weights(copies)
    assert merged is not model
    _assert_same_weights(merged, model)


def test_average_of_two_members_is_the_hand_computed_mean(tiny_spec):
    a = _model("dcnv2", tiny_spec, seed=0, batch_norm=True)
    b = _model("dcnv2", tiny_spec, seed=1, batch_norm=True)
    b.mlp.net[1].num_batches_tracked.fill_(7)  # integer buffer: must come from the first model
    merged = average_weights([a, b])
    assert torch.allclose(merged.mlp.net[0].weight, (a.mlp.net[0].weight + b.mlp.net[0].weight) / 2)
    assert torch.allclose(merged.mlp.net[1].running_var, (a.mlp.net[1].running_var + b.mlp.net[1].running_var) / 2)
    assert int(merged.mlp.net[1].num_batches_tracked) == int(a.mlp.net[1].num_batches_tracked)
    weighted = average_weights([a, b], weights=[1.0, 3.0])  # normalised to (0.25, 0.75)
    expected = 0.25 * a.output.weight + 0.75 * b.output.weight
    assert torch.allclose(weighted.output.weight, expected)
    # the inputs are untouched
    assert not torch.allclose(a.output.weight, weighted.output.weight)


def test_mismatched_architectures_are_a_config_error(tiny_spec):
    fnn = _model("fnn", tiny_spec, seed=0)
    with pytest.raises(ConfigError, match="FNN"):
        average_weights([fnn, _model("dcnv2", tiny_spec, seed=0)])
    wider = _model("fnn", tiny_spec, seed=0, hidden_units=(128, 32))
    with pytest.raises(ConfigError, match=r"'mlp\.net\.3\.weight'.*\(32, 128\) vs \(64, 128\)"):
        merge_weights([fnn, wider], align=True)
    with pytest.raises(ConfigError, match="different state-dict keys.*'mlp.net.3.weight'"):
        average_weights([fnn, _model("fnn", tiny_spec, seed=0, batch_norm=True)])
    with pytest.raises(ConfigError, match="one number per model"):
        average_weights([fnn, fnn], weights=[1.0])


# --------------------------------------------------------------------------- permutation


@pytest.mark.parametrize(
    "name, overrides",
    [(name, {}) for name in BACKBONES] + [("fnn", {"batch_norm": True}), ("wukong", {"batch_norm": True})],
    ids=[*BACKBONES, "fnn-bn", "wukong-bn"],
)
def test_permutation_preserves_logits_and_weight_matching_inverts_it(tiny_spec, name, overrides):
    model = _model(name, tiny_spec, seed=0, **overrides)
    perms = _random_perms(model, seed=1)
    assert any(len(p) for p in perms.values())
    permuted = permute_model(model, perms)
    ids = random_ids(tiny_spec, 256, seed=2)
    with torch.no_grad():
        assert torch.allclose(permuted(ids), model(ids), atol=1e-5, rtol=1e-5)
    assert weight_distance(model, permuted) > 1.0  # the permutation really moved the weights

    found = mlp_permutations(model, permuted)
    for mlp_name, layer_perms in perms.items():
        for applied, recovered in zip(layer_perms, found[mlp_name]):
            # permuted unit i is original unit applied[i]; the match puts it back at applied[i].
            assert np.array_equal(applied[recovered], np.arange(len(applied)))
    _assert_same_weights(align_to(model, permuted), model)


def test_model_without_mlp_aligns_to_itself(tiny_spec):
    a, b = _model("lr", tiny_spec, seed=0), _model("lr", tiny_spec, seed=1)
    assert mlp_permutations(a, b) == {}
    _assert_same_weights(align_to(a, b), b)
    _assert_same_weights(merge_weights([a, b], align=True), merge_weights([a, b], align=False))


def test_permute_model_rejects_bad_permutations(tiny_spec):
    model = _model("fnn", tiny_spec, seed=0)
    with pytest.raises(ConfigError, match="no MLP named"):
        permute_model(model, {"head": []})
    with pytest.raises(ConfigError, match="2 permutable hidden layers"):
        permute_model(model, {"mlp": [np.arange(128)]})
    with pytest.raises(ConfigError, match="permutation of 64 units"):
        permute_model(model, {"mlp": [np.arange(128), np.zeros(64, dtype=int)]})


# --------------------------------------------------------------------------- merging


@pytest.mark.parametrize("name", ["fnn", "wukong"])
def test_aligned_merge_is_closer_to_the_reference_than_plain_averaging(tiny_spec, name):
    group = build_group(tiny_spec, [MemberSpec(name, seed=s, preset="small") for s in (0, 1)])
    reference, other = group.members[0].eval(), group.members[1].eval()
    plain = merge_weights([reference, other], align=False)
    aligned = merge_weights([reference, other], align=True)
    # Weight matching maximises <θ_ref, π θ_other>, i.e. minimises ||θ_ref - π θ_other||, and
    # starts from the identity, so the aligned member (and the merge) is never farther away.
    plain_distance, aligned_distance = weight_distance(reference, plain), weight_distance(reference, aligned)
    assert aligned_distance <= plain_distance
    assert aligned_distance < 0.99 * plain_distance  # random inits: matching finds a real improvement
    # Alignment keeps the member's function, so the merge differs only by where the units sit.
    ids = random_ids(tiny_spec, 64, seed=3)
    with torch.no_grad():
        assert torch.allclose(align_to(reference, other)(ids), other(ids), atol=1e-5, rtol=1e-5)
        assert torch.isfinite(aligned(ids)).all()
