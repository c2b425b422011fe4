"""``ttsctr.layers.init``: every parameter of every backbone has an explicit rule, and the
schemes draw what they claim (Xavier std / bound from the declared fans, zero biases,
embeddings and norms untouched)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.layers.bilinear_fusion import MultiHeadBilinearFusion
from ttsctr.layers.cross import CrossNetwork
from ttsctr.layers.init import WEIGHT_INIT_SCHEMES, Keep, Xavier, Zeros, initialize_weights, weight_init_plan
from ttsctr.layers.rankmixer import PerTokenLinear
from ttsctr.layers.wukong import FactorizationMachineBlock, LinearCompressBlock
from ttsctr.models import available_models, build_model, get_entry

SPEC = FeatureSpec(tuple(f"f{i}" for i in range(6)), (20,) * 6)

# Every preset of every registered model, plus variants that add or remove parameters.
CASES = [(name, preset, {}) for name in available_models() for preset in get_entry(name).presets] + [
    ("finalmlp", "small", {"fs1_context": ("f0", "f2")}),
    ("finalmlp", "small", {"use_fs": False}),
    ("dcnv2", "small", {"low_rank": 4}),
    ("dcnv2", "small", {"structure": "stacked"}),
    ("wukong", "small", {"fmb_output_activation": "none"}),
    ("fnn", "small", {"batch_norm": True}),
    ("rankmixer", "small", {"batch_norm": True}),
]


def build(name, preset="small", seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(name, SPEC, preset, **overrides)


def expected_std(rule: Xavier) -> float:
    """Glorot & Bengio (2010): Var W = 2 / (fan_in + fan_out), for the normal and the uniform."""
    return math.sqrt(2.0 / (rule.fan_in + rule.fan_out))


def assert_xavier(p: torch.Tensor, rule: Xavier, scheme: str, name: str) -> None:
    n = p.numel()
    values = p.detach().double().flatten()
    if scheme == "xavier_normal":
        expected, rel_se = expected_std(rule), math.sqrt(0.5 / n)  # std of a sample std, normal data
    else:
        bound = math.sqrt(3.0) * expected_std(rule)
        assert values.abs().max() <= bound, f"{name}: value outside ±{bound}"
        expected, rel_se = expected_std(rule), math.sqrt(0.2 / n)  # uniform: kurtosis 1.8
    std = values.pow(2).mean().sqrt().item()  # about the known mean 0
    assert abs(std / expected - 1) < 5 * rel_se + 1e-3, f"{name}: std {std:.5f}, expected {expected:.5f} ({rule})"
    assert abs(values.mean().item()) < 5 * expected / math.sqrt(n) + 1e-9, f"{name}: mean {values.mean():.5f}"


def test_schemes():
    assert WEIGHT_INIT_SCHEMES == ("xavier_normal", "xavier_uniform", "torch_default")


def test_unknown_scheme_names_the_known_ones():
    known = r"'xavier_normal', 'xavier_uniform', 'torch_default'"
    with pytest.raises(ConfigError, match=r"unknown weight initialisation scheme 'he'; known schemes: \[" + known):
        initialize_weights(build("fnn"), "he")


@pytest.mark.parametrize("scheme", ["xavier_normal", "xavier_uniform"])
@pytest.mark.parametrize("name, preset, overrides", CASES)
def test_every_parameter_is_covered_and_drawn_as_declared(name, preset, overrides, scheme):
    model = build(name, preset, **overrides)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    plan = weight_init_plan(model)
    assert set(plan) == set(before), "the plan covers exactly the model's parameters"
    assert isinstance(plan["embedding.weight"], Keep)
    initialize_weights(model, scheme)
    after = dict(model.named_parameters())
    pooled, count = 0.0, 0
    for pname, rule in plan.items():
        p = after[pname]
        if isinstance(rule, Keep):
            assert torch.equal(p, before[pname]), f"{pname} should be left as constructed"
        elif isinstance(rule, Zeros):
            assert pname.endswith(("bias", "biases")), f"{pname}: only biases are zeroed"
            assert not p.any(), f"{pname} should be 0"
        else:
            assert isinstance(rule, Xavier)
            assert_xavier(p, rule, scheme, pname)
            pooled += (p.detach().double() / expected_std(rule)).pow(2).sum().item()
            count += p.numel()
    if name == "lr":
        assert count == 0  # a bias and the first-order table: no dense weight
    else:
        # All weights together, in units of their own expected std: mean square 1 within 5 SE.
        kurtosis = 3.0 if scheme == "xavier_normal" else 1.8
        assert abs(pooled / count - 1) < 5 * math.sqrt((kurtosis - 1) / count)
    for module in model.modules():  # norms keep weight 1, bias 0
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert not module.bias.any()


def test_dense_weights_and_biases_are_the_only_re_drawn_parameters():
    # Kept: the embedding table, norm affine parameters and FinalMLP's learned gate input.
    kept = {
        name: sorted(n for n, rule in weight_init_plan(build(name, preset)).items() if isinstance(rule, Keep))
        for name, preset in [("finalmlp", "small"), ("wukong", "small"), ("lr", "small")]
    }
    assert kept["finalmlp"] == ["embedding.weight", "gate1.context", "gate2.context"]
    assert kept["wukong"] == ["embedding.weight"] + [
        f"layers.{i}.{part}.{p}" for i in range(2) for part in ("fmb.norm", "norm") for p in ("bias", "weight")
    ]
    assert kept["lr"] == ["embedding.weight"]


def test_declared_fans_of_each_layer():
    linear = nn.Linear(30, 50)
    assert weight_init_plan(linear) == {"weight": Xavier(30, 50), "bias": Zeros()}
    assert nn.init._calculate_fan_in_and_fan_out(linear.weight) == (30, 50)  # torch agrees
    assert weight_init_plan(nn.Linear(30, 50, bias=False)) == {"weight": Xavier(30, 50)}
    # Per-token weights (T, in, out): the fans of one token's matrix, not of the stack.
    assert weight_init_plan(PerTokenLinear(3, 20, 40)) == {"weight": Xavier(20, 40), "bias": Zeros()}
    # LCB(X) = W^T X with W (n, m): each output mixes n inputs.
    assert weight_init_plan(LinearCompressBlock(7, 5)) == {"weight": Xavier(7, 5)}
    fmb = weight_init_plan(FactorizationMachineBlock(7, 3, 4, rank=6, hidden_units=(8,)))
    assert fmb["projection"] == Xavier(7, 6)  # Y (n, k)
    # DCN: w_l is a Linear(n, 1) weight; b_l a bias.
    assert weight_init_plan(CrossNetwork(40, 3)) == {"weights": Xavier(40, 1), "biases": Zeros()}
    # FinalMLP fusion: FuxiCTR's fans of the flattened (H·d1/H·d2/H, 1) column.
    fusion = weight_init_plan(MultiHeadBilinearFusion(64, 32, num_heads=2))
    assert fusion["bilinear"] == Xavier(1, 2 * 32 * 16)
    assert fusion["linear_1.weight"] == Xavier(64, 1) and fusion["linear_1.bias"] == Zeros()


@pytest.mark.parametrize("scheme", ["xavier_normal", "xavier_uniform"])
def test_large_per_token_weight_matches_the_formula(scheme):
    layer = PerTokenLinear(4, 200, 100)
    torch.manual_seed(0)
    initialize_weights(layer, scheme)
    w = layer.weight.detach()
    if scheme == "xavier_normal":
        assert abs(w.std().item() / math.sqrt(2 / 300) - 1) < 0.01
    else:
        bound = math.sqrt(6 / 300)
        assert w.abs().max() <= bound and w.abs().max() > 0.999 * bound
        assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.01
    for token in range(4):  # every token's matrix has the same scale
        assert abs(w[token].std().item() / w.std().item() - 1) < 0.03
    assert not layer.bias.any()


def test_torch_default_is_a_no_op():
    model = build("wukong")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    initialize_weights(model, "torch_default")
    assert torch.equal(rng, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_draws_from_the_global_rng_deterministically():
    model = build("dcnv2")
    states = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        initialize_weights(model, "xavier_normal")
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(states[0]["mlp.net.0.weight"], states[2]["mlp.net.0.weight"])
    assert torch.equal(states[0]["embedding.weight"], states[2]["embedding.weight"])  # untouched


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.scale


class WrongPlan(Scale):
    def weight_init_plan(self):
        return {"weight": Zeros()}


def test_a_parameter_without_a_rule_is_an_error():
    model = build("fnn")
    model.extra = Scale()
    with pytest.raises(ConfigError, match=r"no initialisation rule for the parameters \['scale'\] of extra \(Scale\)"):
        initialize_weights(model, "xavier_normal")
    model.extra = WrongPlan()
    mismatch = r"extra \(WrongPlan\)\.weight_init_plan\(\) covers \['weight'\] but the module owns \['scale'\]"
    with pytest.raises(ConfigError, match=mismatch):
        weight_init_plan(model)
    initialize_weights(model, "torch_default")  # no-op: nothing to check
