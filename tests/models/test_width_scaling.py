"""Width scaling (TTS paper §2.2.2, Table 4): Multi-Embed (Eq. 5–7), D-MoE (Eq. 8) and the
de-correlation regulariser.

Key property: Multi-Embed with one expert *is* that backbone (same parameters, same FLOPs,
same logits once the backbone's weights are copied in); with two experts it costs two
backbones minus one head.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import count_parameters, model_cost, random_ids
from ttsctr.layers.decorrelation import decorrelation_loss
from ttsctr.layers.init import initialize_weights
from ttsctr.models import build_model
from ttsctr.models.dmoe import DMoE
from ttsctr.models.multi_embed import MultiEmbed
from ttsctr.training import GroupModel, MemberSpec, TrainConfig, build_group, load_group, save_group, train


def build(name: str, spec: FeatureSpec, preset: str = "small", seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, spec, preset, **overrides)


def me_state_from_backbone(me: MultiEmbed, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights under ME(M = 1)'s names: its table is ME's ``embedding``, its
    logit layer is ME's ``head``, everything else lives under ``experts.0.backbone``."""
    logit_layer = me.experts[0].logit_layer
    state = {}
    for key, value in backbone.state_dict().items():
        if key.startswith("embedding."):
            state[key] = value
        elif key.startswith(logit_layer + "."):
            state["head." + key[len(logit_layer) + 1 :]] = value
        else:
            state["experts.0.backbone." + key] = value
    return state


# --- Multi-Embed with one expert is the backbone ---------------------------------------------


@pytest.mark.parametrize("backbone", ["wukong", "rankmixer", "dcnv2"])
def test_multi_embed_with_one_expert_is_the_backbone(backbone, tiny_spec):
    plain = build(backbone, tiny_spec, seed=1)  # other weights than ME's, so the copy matters
    me = build("multi_embed", tiny_spec, seed=0, experts=(backbone,))
    assert me.num_experts == 1 and me.experts[0].projection is None
    assert count_parameters(me) == count_parameters(plain)  # (dense, embedding)
    assert (me.dense_parameters(), me.embedding_parameters()) == count_parameters(plain)
    assert model_cost(me) == model_cost(plain)  # parameters and measured FLOPs per row
    # DCN-V2's logit layer reads the concatenated [cross; deep] output: H = F·D + 64.
    expected_h = {"wukong": 64, "rankmixer": 64, "dcnv2": 5 * 8 + 64}[backbone]
    assert me.hidden_dim == expected_h and me.head.in_features == expected_h

    ids = random_ids(tiny_spec, batch_size=32, seed=7)
    me.eval(), plain.eval()
    with torch.no_grad():
        assert not torch.equal(me(ids), plain(ids))
    state = me_state_from_backbone(me, plain)
    assert set(state) == set(me.state_dict())
    me.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(me(ids), plain(ids))
        assert torch.equal(me.forward_embedded(me.embed(ids)), plain(ids))


@pytest.mark.parametrize("scheme", ["xavier_normal", "torch_default"])
@pytest.mark.parametrize("backbone", ["wukong", "rankmixer", "dcnv2"])
def test_multi_embed_with_one_expert_starts_from_the_backbones_weights(backbone, scheme, tiny_spec):
    # Same seed, same scheme: the expert draws what the backbone draws, its logit layer is
    # kept as the head (nothing new is drawn), and parameters are initialised in the same order.
    member = MemberSpec("multi_embed", 3, "small", {"experts": [backbone]}).build(tiny_spec, scheme)
    plain = MemberSpec(backbone, 3, "small").build(tiny_spec, scheme)
    assert [p.shape for p in member.parameters()] == [p.shape for p in plain.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(member.parameters(), plain.parameters()))
    ids = random_ids(tiny_spec, batch_size=16, seed=1)
    with torch.no_grad():
        assert torch.equal(member.eval()(ids), plain.eval()(ids))


@pytest.mark.parametrize("backbone", ["wukong", "rankmixer"])
def test_multi_embed_with_two_experts_costs_two_backbones_but_one_head(backbone, tiny_spec):
    plain = build(backbone, tiny_spec)
    me = build("multi_embed", tiny_spec, experts=(backbone, backbone))
    h = me.hidden_dim
    dense, embedding = count_parameters(plain)
    plain_cost, me_cost = model_cost(plain), model_cost(me)
    # Exactly: two experts, one head Linear(H, 1) instead of two.
    assert count_parameters(me) == (2 * dense - (h + 1), 2 * embedding)
    assert me_cost.flops_per_row == 2 * plain_cost.flops_per_row - 2 * h
    # i.e. 2x within 1 %.
    assert me_cost.total_params / plain_cost.total_params == pytest.approx(2.0, rel=0.01)
    assert me_cost.flops_per_row / plain_cost.flops_per_row == pytest.approx(2.0, rel=0.01)
    # Two different tables and experts (drawn one after the other from the seed's stream).
    assert not torch.equal(me.embedding.weight, me.extra_tables[0].weight)


def test_embed_is_the_tables_side_by_side(tiny_spec):
    me = build("multi_embed", tiny_spec).eval()
    ids = random_ids(tiny_spec, batch_size=8)
    e = me.embed(ids)
    assert me.embedding_dims == (8, 8) and e.shape == (8, 5, 16)
    assert torch.equal(e[..., :8], me.embedding(ids)) and torch.equal(e[..., 8:], me.extra_tables[0](ids))
    with torch.no_grad():
        assert torch.equal(me.forward_embedded(e), me(ids))
    with pytest.raises(ConfigError, match=r"expected the tables' embeddings side by side, \(batch, 5, 16\)"):
        me.forward_embedded(e[..., :8])


# --- heterogeneous experts --------------------------------------------------------------------


def train_one_step(model: nn.Module, spec: FeatureSpec) -> float:
    ids = random_ids(spec, batch_size=64, seed=3)
    labels = (ids[:, 0] % 2).float()
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    loss = nn.functional.binary_cross_entropy_with_logits(model(ids), labels)
    auxiliary = model.auxiliary_loss()
    if auxiliary is not None:
        loss = loss + auxiliary
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert not torch.equal(p, before[name]), f"{name} did not move"
    return float(loss.detach())


def test_rankmixer_plus_wukong_builds_and_trains(tiny_spec):
    # R+W of Table 4; both small presets end in a 64-wide layer, so no projection is needed.
    me = build("multi_embed", tiny_spec, experts=("rankmixer", "wukong"))
    assert [type(ex.backbone).__name__ for ex in me.experts] == ["RankMixer", "Wukong"]
    assert [ex.projection for ex in me.experts] == [None, None] and me.hidden_dim == 64
    assert np.isfinite(train_one_step(me, tiny_spec))


def test_unequal_widths_are_projected_to_the_widest(tiny_spec):
    me = build("dmoe", tiny_spec, experts=("dcnv2", "wukong"))
    dcnv2, wukong = me.experts
    assert (dcnv2.hidden_dim, wukong.hidden_dim, me.hidden_dim) == (104, 64, 104)
    assert dcnv2.projection is None
    assert isinstance(wukong.projection, nn.Linear) and wukong.projection.weight.shape == (104, 64)
    assert wukong.projection.bias is None
    plain = [build("dcnv2", tiny_spec), build("wukong", tiny_spec)]
    dense = sum(count_parameters(p)[0] for p in plain) - (104 + 1) - (64 + 1) + 64 * 104 + (104 + 1)
    assert count_parameters(me)[0] == dense
    initialize_weights(me, "xavier_normal")  # every parameter has an initialisation rule
    assert np.isfinite(train_one_step(me, tiny_spec))


def test_member_spec_builds_with_a_list_of_experts(tiny_spec):
    spec = MemberSpec("multi_embed", seed=0, preset="small", overrides={"experts": ["rankmixer", "wukong"]})
    model = spec.build(tiny_spec)
    assert isinstance(model, MultiEmbed) and model.config.experts == ("rankmixer", "wukong")
    assert model(random_ids(tiny_spec, batch_size=4)).shape == (4,)


def test_shared_knobs_reach_every_expert(tiny_spec):
    me = build("multi_embed", tiny_spec, experts=("rankmixer", "wukong"), dropout=0.5, batch_norm=True,
               embedding_dim=4)
    for expert in me.experts:
        assert expert.backbone.config.dropout == 0.5 and expert.backbone.config.batch_norm
    assert me.embedding_dims == (4, 4)
    assert any(isinstance(m, nn.BatchNorm1d) for m in me.modules())
    assert {m.p for m in me.modules() if isinstance(m, nn.Dropout)} == {0.5}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"experts": "wukong"}, r"experts must be a list of backbone names"),
        ({"experts": ()}, r"experts must name at least one backbone"),
        ({"experts": ("wukong", "dmoe")}, r"experts\[1\] is 'dmoe'; experts must be backbones"),
        ({"experts": ("wukong", "xdeepfm")}, r"expert 1 \('xdeepfm', preset 'small'\): unknown model 'xdeepfm'"),
        ({"expert_preset": "mean_pool"}, r"expert 0 \('wukong', preset 'mean_pool'\): model 'wukong' has no preset"),
        ({"experts": ("deepfm",)}, r"DeepFM cannot be a width-scaling expert.*adds other terms after"),
        ({"experts": ("finalmlp",)}, r"FinalMLP cannot be a width-scaling expert"),
        ({"experts": ("lr",)}, r"LogisticRegression cannot be a width-scaling expert.*calls no nn.Linear"),
    ],
)
def test_invalid_settings(overrides, message, tiny_spec):
    with pytest.raises(ConfigError, match=message):
        build_model("multi_embed", tiny_spec, "small", **overrides)


def test_wrong_field_count(tiny_spec):
    with pytest.raises(ConfigError, match=r"MultiEmbed: input has shape \(4, 4\); expected \(batch, 5\)"):
        build("multi_embed", tiny_spec)(torch.zeros(4, 4, dtype=torch.long))


# --- the de-correlation regulariser ------------------------------------------------------------


def numpy_decorrelation(hs: list[np.ndarray], eps: float = 1e-5) -> float:
    """The docstring's formula, written out with loops."""
    zs = [(h - h.mean(0)) / np.sqrt(h.var(0) + eps) for h in hs]  # population variance
    batch, width = hs[0].shape
    pairs = []
    for m in range(len(zs)):
        for n in range(m + 1, len(zs)):
            c = np.zeros((width, width))
            for i in range(width):
                for j in range(width):
                    c[i, j] = sum(zs[m][b, i] * zs[n][b, j] for b in range(batch)) / batch
            pairs.append((c**2).mean())
    return float(np.mean(pairs))


# Centred, mutually orthogonal columns of length 4 (rows of a Hadamard matrix).
A, B_, C = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1]), np.array([1.0, -1, -1, 1])


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def test_decorrelation_hand_computed_case():
    h1 = np.array([[1.0, 2.0], [3.0, 1.0], [0.0, 4.0], [2.0, 2.0]])  # B = 4, H = 2
    h2 = np.array([[2.0, 0.0], [1.0, 1.0], [4.0, 3.0], [0.0, 5.0]])
    h3 = np.array([[0.5, 1.0], [1.5, -1.0], [2.0, 0.0], [-1.0, 3.0]])
    assert float(decorrelation_loss([t(h1), t(h2)])) == pytest.approx(numpy_decorrelation([h1, h2]), rel=1e-5)
    # M = 3: the mean over the three pairs.
    three = numpy_decorrelation([h1, h2, h3])
    assert float(decorrelation_loss([t(h1), t(h2), t(h3)])) == pytest.approx(three, rel=1e-5)
    pair_mean = np.mean([numpy_decorrelation(p) for p in ([h1, h2], [h1, h3], [h2, h3])])
    assert three == pytest.approx(pair_mean)


def test_decorrelation_of_uncorrelated_experts_is_zero():
    # Every unit of one expert is orthogonal (after centring) to every unit of the other;
    # shifts and scales do not matter.
    h1 = np.stack([A, 3 * B_ + 2], axis=1)
    h2 = np.stack([C, -2 * C + 7], axis=1)
    assert float(decorrelation_loss([t(h1), t(h2)])) == pytest.approx(0.0, abs=1e-7)


def test_decorrelation_of_identical_experts():
    # h_n = h_m: C = R (h's own correlation matrix), cost ‖R‖_F² / H², times σ²/(σ²+eps) factors.
    uncorrelated = np.stack([A, B_, C], axis=1)  # R = I: 1/H
    assert float(decorrelation_loss([t(uncorrelated)] * 2)) == pytest.approx(1 / 3, rel=1e-4)
    correlated = np.stack([A, 2 * A + 1, -A], axis=1)  # |R_ij| = 1: 1
    assert float(decorrelation_loss([t(correlated)] * 2)) == pytest.approx(1.0, rel=1e-4)
    assert float(decorrelation_loss([t(A[:, None])] * 2)) == pytest.approx(1.0, rel=1e-4)  # H = 1
    h = np.random.default_rng(0).normal(size=(64, 4))
    r = np.corrcoef(h, rowvar=False)
    assert float(decorrelation_loss([t(h), t(h)])) == pytest.approx((r**2).sum() / 16, rel=1e-4)


def test_decorrelation_edge_cases():
    h = torch.randn(8, 3, requires_grad=True)
    assert float(decorrelation_loss([h])) == 0.0  # M = 1: no pair
    # A constant unit (dead ReLU) is standardised to 0, not NaN, and gradients stay finite.
    g = torch.cat([torch.ones(8, 1), torch.randn(8, 2)], dim=1).requires_grad_(True)
    loss = decorrelation_loss([h, g])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all() and torch.isfinite(g.grad).all()
    with pytest.raises(ConfigError, match=r"same \(batch, width\); got \[\(8, 3\), \(8, 2\)\]"):
        decorrelation_loss([h, torch.randn(8, 2)])
    with pytest.raises(ConfigError, match="at least one expert output"):
        decorrelation_loss([])
    with pytest.raises(ConfigError, match=r"must be \(batch, width\), got \(8,\)"):
        decorrelation_loss([torch.randn(8)])


# --- D-MoE's auxiliary loss --------------------------------------------------------------------


def test_dmoe_auxiliary_loss_is_the_last_train_forwards_weighted_term(tiny_spec):
    model = build("dmoe", tiny_spec, decorrelation_weight=0.3)
    assert isinstance(model, DMoE) and model.auxiliary_loss() is None  # before any forward
    first, second = random_ids(tiny_spec, 32, seed=1), random_ids(tiny_spec, 32, seed=2)
    model.train()
    model(first)
    model(second)
    with torch.no_grad():
        hs = model.expert_outputs(model._lookups(second))
        expected = 0.3 * decorrelation_loss(hs)
    auxiliary = model.auxiliary_loss()
    assert auxiliary is not None and auxiliary.requires_grad
    assert float(auxiliary.detach()) == pytest.approx(float(expected), rel=1e-6)  # the last batch only
    assert float(auxiliary.detach()) > 0
    assert copy.deepcopy(model).auxiliary_loss() is None  # the step's graph is not copied
    model.eval()
    assert model.auxiliary_loss() is None
    model(first)
    model.train()
    assert model.auxiliary_loss() is None  # the last forward ran in eval mode
    # The architecture is Multi-Embed's: same parameters.
    assert count_parameters(model) == count_parameters(build("multi_embed", tiny_spec))


def test_dmoe_without_weight_has_no_auxiliary_loss(tiny_spec):
    model = build("dmoe", tiny_spec, decorrelation_weight=0.0).train()
    model(random_ids(tiny_spec, 8))
    assert model.auxiliary_loss() is None
    with pytest.raises(ConfigError, match=r"decorrelation_weight \(λ\) must be a finite number >= 0, got -1"):
        build_model("dmoe", tiny_spec, "small", decorrelation_weight=-1)


def test_dmoe_group_trains_and_checkpoints_round_trip(tmp_path, tiny_spec):
    generator = np.random.default_rng(0)
    x = (generator.integers(0, 10, size=(900, 5)) + np.arange(5) * 10).astype(np.int32)
    y = ((x[:, 0] % 10 + x[:, 1] % 10) % 2).astype(np.float32)  # a pairwise rule
    members = [
        MemberSpec("dmoe", 0, "small", {"decorrelation_weight": 0.1}),
        MemberSpec("multi_embed", 1, "small", {"experts": ["rankmixer", "wukong"]}),
    ]
    group = build_group(tiny_spec, members)
    config = TrainConfig(learning_rate=1e-2, batch_size=64, max_epochs=1, progress=False)
    result = train(group, (x[:600], y[:600]), (x[600:], y[600:]), config)
    assert result.epochs_completed == 1 and np.isfinite(result.history[0]["train_loss"])
    group.train()
    group(torch.from_numpy(x[:64]).long())
    assert isinstance(group.auxiliary_loss(), torch.Tensor)  # the D-MoE member's term only

    path = save_group(group, None, None, tmp_path / "group.pt")
    loaded, loaded_members, _ = load_group(path)
    assert isinstance(loaded, GroupModel) and loaded_members == members
    ids = torch.from_numpy(x[600:]).long()
    group.eval()
    with torch.no_grad():
        assert torch.equal(loaded(ids), group(ids))
