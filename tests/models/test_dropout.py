"""Dropout modules always exist, so MC-dropout works on models trained without dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.flops import random_ids
from ttsctr.layers.dropout import set_dropout_rate
from ttsctr.layers.mlp import MLP
from ttsctr.models import build_model

# (backbone, preset); LR has no hidden layers and so no dropout.
MODELS = [
    ("dcn", "small"),
    ("dcnv2", "small"),
    ("deepfm", "small"),
    ("finalmlp", "small"),
    ("fnn", "small"),
    ("ipnn", "small"),
    ("rankmixer", "small"),
    ("rankmixer", "mean_pool"),
    ("wukong", "small"),
]


def build(name, spec, preset, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(name, spec, preset, **overrides)


@pytest.mark.parametrize("name, preset", MODELS)
def test_checkpoint_at_rate_0_loads_at_rate_0_1_and_samples(name, preset, tiny_spec):
    trained = build(name, tiny_spec, preset, dropout=0.0)
    assert all(m.p == 0.0 for m in trained.modules() if isinstance(m, nn.Dropout))
    sampler = build(name, tiny_spec, preset, seed=1, dropout=0.1)
    sampler.load_state_dict(trained.state_dict(), strict=True)
    ids = random_ids(tiny_spec, batch_size=64, seed=1)
    trained.eval(), sampler.eval()
    with torch.no_grad():
        assert torch.equal(sampler(ids), trained(ids))  # eval: dropout is off, same weights
        assert torch.equal(sampler(ids), sampler(ids))
        sampler.train()
        # BatchNorm is off in these presets, so train mode differs from eval only by dropout.
        first, second = sampler(ids), sampler(ids)
    assert not torch.equal(first, second)  # two MC-dropout samples differ
    assert torch.isfinite(first).all()


@pytest.mark.parametrize("name, preset", MODELS)
def test_set_dropout_rate_switches_mc_dropout_on_a_model_trained_without(name, preset, tiny_spec):
    model = build(name, tiny_spec, preset)
    ids = random_ids(tiny_spec, batch_size=64, seed=1)
    model.train()
    with torch.no_grad():
        assert torch.equal(model(ids), model(ids))  # rate 0: deterministic even in train mode
        count = set_dropout_rate(model, 0.1)
        assert count == sum(isinstance(m, nn.Dropout) for m in model.modules()) > 0
        assert all(m.p == 0.1 for m in model.modules() if isinstance(m, nn.Dropout))
        assert not torch.equal(model(ids), model(ids))
        set_dropout_rate(model, 0.0)
        assert torch.equal(model(ids), model(ids))


def test_set_dropout_rate_reports_zero_for_lr(tiny_spec):
    assert set_dropout_rate(build("lr", tiny_spec, "small"), 0.1) == 0


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.1", True])
def test_set_dropout_rate_rejects_bad_rates(rate, tiny_spec):
    with pytest.raises(ConfigError, match="rate must be a number in \\[0, 1\\)"):
        set_dropout_rate(build("fnn", tiny_spec, "small"), rate)


def test_mlp_dropout_modules_at_every_rate():
    positions = [type(m) for m in MLP(4, (8, 8), output_dim=1, dropout=0.0).net]
    assert positions == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert [type(m) for m in MLP(4, (8, 8), output_dim=1, dropout=0.3).net] == positions
    assert not any(isinstance(m, nn.Dropout) for m in MLP(4, (8, 8), output_dim=1, dropout=None).modules())
