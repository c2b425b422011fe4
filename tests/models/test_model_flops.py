"""``ttsctr.flops.model_cost``: measured FLOPs match closed forms, grow with size, and groups work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import ModelCost, model_cost, random_ids
from ttsctr.models import build_model


def build(name, spec, preset="small", **overrides):
    torch.manual_seed(0)
    return build_model(name, spec, preset, **overrides)


def matmul_flops(dims: list[int]) -> int:
    """2 FLOPs per multiply-add of Linear layers dims[0] -> dims[1] -> ... (biases not counted)."""
    return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def test_random_ids_stay_in_their_fields():
    spec = FeatureSpec(("a", "b", "c"), (1, 7, 3))
    ids = random_ids(spec, batch_size=500)
    assert ids.dtype == torch.long and ids.shape == (500, 3)
    for field, (offset, size) in enumerate(zip(spec.offsets, spec.vocab_sizes)):
        assert ids[:, field].min() >= offset and ids[:, field].max() < offset + size
    assert torch.equal(ids, random_ids(spec, batch_size=500))  # fixed seed


def test_fnn_cost_matches_closed_form(tiny_spec):
    cost = model_cost(build("fnn", tiny_spec, "default"), batch_size=4)
    assert isinstance(cost, ModelCost)
    assert cost.flops_per_row == matmul_flops([5 * 16, 1024, 512, 256, 1])
    assert cost.embedding_params == 50 * 16
    assert cost.total_params == cost.dense_params + cost.embedding_params


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_dcn_family_cost_matches_closed_form(structure, tiny_spec):
    n, hidden = 5 * 8, [128, 64]
    dcn = model_cost(build("dcn", tiny_spec, cross_layers=3))
    assert dcn.flops_per_row == 3 * 2 * n + matmul_flops([n, *hidden]) + 2 * (n + hidden[-1])
    v2 = model_cost(build("dcnv2", tiny_spec, cross_layers=3, structure=structure))
    head_in = hidden[-1] + (n if structure == "parallel" else 0)
    assert v2.flops_per_row == 3 * 2 * n * n + matmul_flops([n, *hidden]) + 2 * head_in


def rankmixer_field_flops(F: int, d: int, D: int, k: int, L: int, hidden: list[int]) -> int:
    """Field tokens: per-field projection (when D != d), L blocks of per-token FFNs (token
    mixing is a transpose: 0 FLOPs) and the MLP head on the F·D flattened tokens."""
    projection = 0 if D == d else 2 * F * d * D
    ffn = 2 * F * (D * k * D + k * D * D)
    return projection + L * ffn + matmul_flops([F * D, *hidden, 1])


@pytest.mark.parametrize("num_fields, expected_width", [(8, 16), (5, 20), (39, 39)])
def test_rankmixer_default_cost_matches_closed_form(num_fields, expected_width):
    spec = FeatureSpec(tuple(f"f{i}" for i in range(num_fields)), (3,) * num_fields)
    cost = model_cost(build("rankmixer", spec, "default"))
    expected = rankmixer_field_flops(num_fields, 16, expected_width, 2, 3, [1024, 512, 256])
    assert cost.flops_per_row == expected


def test_rankmixer_head_dominates_on_avazu_like_data():
    # Avazu in the reference script: 24 fields at d = 24 (D = d, no projection). The flatten
    # head holds ~88 % of the FLOPs there.
    spec = FeatureSpec(tuple(f"f{i}" for i in range(24)), (3,) * 24)
    cost = model_cost(build("rankmixer", spec, "default", embedding_dim=24))
    head = matmul_flops([24 * 24, 1024, 512, 256, 1])
    assert cost.flops_per_row == rankmixer_field_flops(24, 24, 24, 2, 3, [1024, 512, 256])
    assert 0.87 < head / cost.flops_per_row < 0.89


def test_lr_costs_no_flops(tiny_spec):
    cost = model_cost(build("lr", tiny_spec))
    assert cost == ModelCost(dense_params=1, embedding_params=50, flops_per_row=0.0)


def test_finalmlp_constant_gates_are_counted_once_per_batch(tiny_spec):
    n = 5 * 8
    # Two streams; fusion: w_1, w_2, h_1^T W, then (h_1^T W)·h_2 (an einsum, lowered to bmm).
    streams = 2 * matmul_flops([n, 128, 64]) + 2 * (64 + 64) + 2 * 64 * 64 + 2 * 64
    gate = matmul_flops([8, 64, n])  # constant context of width D -> 64 -> F·D
    assert model_cost(build("finalmlp", tiny_spec, use_fs=False)).flops_per_row == streams
    for batch in (1, 4):
        cost = model_cost(build("finalmlp", tiny_spec), batch_size=batch)
        assert cost.flops_per_row == streams + 2 * gate / batch
    with_context = model_cost(build("finalmlp", tiny_spec, fs1_context=("f0", "f1")), batch_size=4)
    assert with_context.flops_per_row == streams + matmul_flops([2 * 8, 64, n]) + gate / 4


def test_flops_per_row_does_not_depend_on_batch_size(tiny_spec):
    model = build("wukong", tiny_spec)
    assert model_cost(model, batch_size=1).flops_per_row == model_cost(model, batch_size=32).flops_per_row


# RankMixer's one-token-per-field mode (5 tokens here, so widths are multiples of 5).
FIELD_TOKENS = {"tokenizer": "field", "num_tokens": None, "token_dim": None}

# (name, smaller overrides, bigger overrides) on the small preset
GROWTH = [
    ("fnn", {"hidden_units": (32,)}, {"hidden_units": (64,)}),
    ("fnn", {"hidden_units": (32,)}, {"hidden_units": (32, 32)}),
    ("ipnn", {"hidden_units": (32,)}, {"hidden_units": (64,)}),
    ("deepfm", {"hidden_units": (32,)}, {"hidden_units": (64, 32)}),
    ("dcn", {"cross_layers": 1}, {"cross_layers": 3}),
    ("dcn", {"hidden_units": (32,)}, {"hidden_units": (64,)}),
    ("dcnv2", {"cross_layers": 1}, {"cross_layers": 3}),
    ("dcnv2", {"low_rank": 2}, {"low_rank": None}),
    ("finalmlp", {"mlp1_hidden_units": (32,)}, {"mlp1_hidden_units": (64,)}),
    ("finalmlp", {"fs_hidden_units": (16,)}, {"fs_hidden_units": (16, 16)}),
    ("wukong", {"num_layers": 1}, {"num_layers": 2}),
    ("wukong", {"fmb_rank": 4}, {"fmb_rank": 8}),
    ("wukong", {"fmb_embeddings": 4}, {"fmb_embeddings": 8}),
    ("rankmixer", {"token_dim": 16}, {"token_dim": 32}),
    ("rankmixer", {**FIELD_TOKENS, "token_dim": 10}, {**FIELD_TOKENS, "token_dim": 20}),
    ("rankmixer", {"num_layers": 1}, {"num_layers": 2}),
    ("rankmixer", {"expansion": 1}, {"expansion": 2}),
    ("rankmixer", {"hidden_units": (32,)}, {"hidden_units": (64,)}),
    ("wukong", {"fmb_hidden_units": (32,)}, {"fmb_hidden_units": (64,)}),
]


@pytest.mark.parametrize("name, smaller, bigger", GROWTH)
def test_flops_grow_with_depth_and_width(name, smaller, bigger, tiny_spec):
    small = model_cost(build(name, tiny_spec, **smaller))
    large = model_cost(build(name, tiny_spec, **bigger))
    assert large.flops_per_row > small.flops_per_row > 0
    assert large.dense_params > small.dense_params


# LR is left out: its table is one weight wide whatever the embedding width.
@pytest.mark.parametrize("name", ["dcn", "dcnv2", "deepfm", "finalmlp", "fnn", "ipnn", "rankmixer", "wukong"])
def test_flops_grow_with_embedding_dim(name, tiny_spec):
    small = model_cost(build(name, tiny_spec, embedding_dim=8))
    large = model_cost(build(name, tiny_spec, embedding_dim=16))
    assert large.flops_per_row > small.flops_per_row
    assert large.embedding_params > small.embedding_params


class MemberGroup(nn.Module):
    """A stand-in for a trained group: ids in, one logit per member out."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members], dim=1)  # (B, M)


def test_group_cost_is_the_sum_of_its_members(tiny_spec):
    members = [build("wukong", tiny_spec), build("rankmixer", tiny_spec), build("dcnv2", tiny_spec)]
    costs = [model_cost(m) for m in members]
    group = model_cost(MemberGroup(members))
    assert group.flops_per_row == sum(c.flops_per_row for c in costs)
    assert group.dense_params == sum(c.dense_params for c in costs)
    assert group.embedding_params == sum(c.embedding_params for c in costs)


def test_a_shared_embedding_table_counts_once(tiny_spec):
    a, b = build("fnn", tiny_spec), build("fnn", tiny_spec)
    b.embedding = a.embedding
    cost = model_cost(MemberGroup([a, b]))
    assert cost.embedding_params == 50 * 8
    assert cost.dense_params == 2 * a.dense_parameters()


def test_deepfm_first_order_table_counts_as_embedding(tiny_spec):
    model = build("deepfm", tiny_spec)
    cost = model_cost(model)
    assert cost.embedding_params == model.embedding_parameters() == 50 * 9
    assert cost.dense_params == model.dense_parameters()


def test_cost_leaves_train_eval_flags_and_batch_norm_untouched(tiny_spec):
    model = build("fnn", tiny_spec, dropout=0.5, batch_norm=True).train()
    dropout = next(m for m in model.modules() if isinstance(m, nn.Dropout))
    dropout.eval()  # a mixed state, as MC-dropout might leave it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_cost(model)
    assert model.training and not dropout.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_module_without_spec_needs_one():
    spec = FeatureSpec(("a", "b"), (3, 4))
    table = nn.Embedding(spec.num_features, 4)
    with pytest.raises(ConfigError, match="pass spec="):
        model_cost(table)
    cost = model_cost(table, spec=spec)
    assert cost == ModelCost(dense_params=0, embedding_params=28, flops_per_row=0.0)
