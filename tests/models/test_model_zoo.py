"""Every backbone: shapes, gradients, determinism, the embed/forward_embedded split, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec
from ttsctr.flops import random_ids
from ttsctr.models import available_models, build_model, get_entry

BACKBONES = ["dcn", "dcnv2", "deepfm", "finalmlp", "fnn", "ipnn", "rankmixer", "wukong"]
PRESETS = ["default", "small"]


def build(name: str, spec: FeatureSpec, preset: str = "small", seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, spec, preset, **overrides)


def test_registry_lists_every_backbone():
    assert available_models() == BACKBONES
    for name in BACKBONES:
        assert set(get_entry(name).presets) == {"default", "small"}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", BACKBONES)
def test_forward_backward_shapes_and_gradients(name, preset, tiny_spec):
    model = build(name, tiny_spec, preset)
    ids = random_ids(tiny_spec, batch_size=8, seed=1)
    logits = model(ids)
    assert logits.shape == (8,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    labels = torch.randint(0, 2, (8,), generator=torch.Generator().manual_seed(2)).float()
    nn.functional.binary_cross_entropy_with_logits(logits, labels).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


@pytest.mark.parametrize("name", BACKBONES)
def test_dropout_and_batch_norm_switches(name, tiny_spec):
    model = build(name, tiny_spec, "small", dropout=0.5, batch_norm=True)
    assert any(isinstance(m, nn.Dropout) for m in model.modules()), "MC-dropout needs nn.Dropout modules"
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    ids = random_ids(tiny_spec, batch_size=8, seed=1)
    model.train()
    model(ids).sum().backward()
    model.eval()
    assert torch.equal(model(ids), model(ids))  # eval: dropout off, BN uses running stats


@pytest.mark.parametrize("name", BACKBONES)
def test_construction_is_deterministic(name, tiny_spec):
    a, b = build(name, tiny_spec, seed=3), build(name, tiny_spec, seed=3)
    c = build(name, tiny_spec, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    ids = random_ids(tiny_spec, batch_size=8)
    assert torch.equal(a.eval()(ids), b.eval()(ids))


@pytest.mark.parametrize("name", BACKBONES)
def test_embed_then_forward_embedded_equals_forward(name, tiny_spec):
    model = build(name, tiny_spec).eval()
    ids = random_ids(tiny_spec, batch_size=8)
    e = model.embed(ids)
    assert e.shape == (8, tiny_spec.num_fields, model.embedding_dim)
    assert torch.equal(model.forward_embedded(e), model(ids))


# --- closed-form parameter counts ---------------------------------------------------------


def mlp_params(dims: list[int]) -> int:
    """Weights and biases of Linear layers dims[0] -> dims[1] -> ... -> dims[-1]."""
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


@pytest.mark.parametrize("preset", PRESETS)
def test_fnn_parameter_count(preset, tiny_spec):
    model = build("fnn", tiny_spec, preset)
    F, N, D, hidden = 5, 50, model.config.embedding_dim, list(model.config.hidden_units)
    assert model.embedding_parameters() == N * D
    assert model.dense_parameters() == mlp_params([F * D, *hidden, 1])


@pytest.mark.parametrize("preset", PRESETS)
def test_deepfm_parameter_count(preset, tiny_spec):
    model = build("deepfm", tiny_spec, preset)
    F, N, D, hidden = 5, 50, model.config.embedding_dim, list(model.config.hidden_units)
    # Factor embeddings plus one first-order weight per feature id, all in the table.
    assert model.embedding_parameters() == N * (D + 1)
    # Deep part plus the global bias of the first-order term; the FM term has no parameters.
    assert model.dense_parameters() == mlp_params([F * D, *hidden, 1]) + 1


@pytest.mark.parametrize("preset", PRESETS)
def test_dcn_parameter_count(preset, tiny_spec):
    model = build("dcn", tiny_spec, preset)
    F, N, D, L, hidden = 5, 50, model.config.embedding_dim, model.config.cross_layers, list(model.config.hidden_units)
    n = F * D
    cross = L * 2 * n  # w_l and b_l, each of size n
    deep = mlp_params([n, *hidden])
    head = (n + hidden[-1]) + 1
    assert model.embedding_parameters() == N * D
    assert model.dense_parameters() == cross + deep + head


@pytest.mark.parametrize(
    "overrides",
    [{}, {"structure": "stacked"}, {"low_rank": 4}, {"structure": "stacked", "low_rank": 3, "cross_layers": 3}],
)
@pytest.mark.parametrize("preset", PRESETS)
def test_dcnv2_parameter_count(preset, overrides, tiny_spec):
    model = build("dcnv2", tiny_spec, preset, **overrides)
    cfg = model.config
    F, N, D, L, r, hidden = 5, 50, cfg.embedding_dim, cfg.cross_layers, cfg.low_rank, list(cfg.hidden_units)
    n = F * D
    per_layer = n * n + n if r is None else 2 * n * r + n  # W (or U, V) and b
    deep = mlp_params([n, *hidden])
    head_in = hidden[-1] + (n if cfg.structure == "parallel" else 0)
    assert model.embedding_parameters() == N * D
    assert model.dense_parameters() == L * per_layer + deep + head_in + 1


# --- bad input --------------------------------------------------------------------------------


def test_unknown_model_name(tiny_spec):
    with pytest.raises(ConfigError, match="unknown model 'xdeepfm'.*available models: dcn"):
        build_model("xdeepfm", tiny_spec)


@pytest.mark.parametrize("name", BACKBONES)
def test_unknown_config_key(name, tiny_spec):
    with pytest.raises(ConfigError, match="unknown config keys \\['hiden_units'\\]"):
        build_model(name, tiny_spec, "small", hiden_units=(8,))


@pytest.mark.parametrize("name", BACKBONES)
def test_wrong_field_count(name, tiny_spec):
    model = build(name, tiny_spec)
    with pytest.raises(ConfigError, match=r"expected \(batch, 5\)"):
        model(torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"expected \(batch, 5\)"):
        model(torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("bad_id", [-1, 50])
def test_feature_id_outside_table(bad_id, tiny_spec):
    model = build("fnn", tiny_spec)
    ids = random_ids(tiny_spec, batch_size=4)
    model.embedding.check_ids(ids)  # valid ids pass
    ids[2, 3] = bad_id
    with pytest.raises(DataFormatError, match=f"feature id {bad_id}.*ids in \\[0, 50\\)"):
        model.embedding.check_ids(ids)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("dcn", {"cross_layers": -1}, "cross_layers must be >= 0"),
        ("dcnv2", {"structure": "serial"}, "structure must be one of"),
        ("dcnv2", {"low_rank": 0}, "low_rank must be a positive int"),
        ("finalmlp", {"fs1_context": ("f1", "user")}, r"fs1_context names unknown fields \['user'\]"),
        ("finalmlp", {"num_heads": 3}, "num_heads=3 must be >= 1 and divide"),
        ("wukong", {"num_layers": 0}, "num_layers must be >= 1"),
        ("rankmixer", {"token_dim": 30}, "token_dim=30 must be divisible by num_tokens=8"),
        ("rankmixer", {"expansion": 0}, "expansion must be >= 1"),
    ],
)
def test_invalid_model_settings(name, overrides, message, tiny_spec):
    with pytest.raises(ConfigError, match=message):
        build_model(name, tiny_spec, "small", **overrides)


# --- model-specific behaviour ----------------------------------------------------------------


def test_finalmlp_context_fields_and_heads(tiny_spec):
    model = build("finalmlp", tiny_spec, fs1_context=("f0", "f3"), num_heads=2)
    assert model.gate1.context_fields.tolist() == [0, 3]
    assert model.gate2.context_fields.tolist() == [0, 1, 2, 3, 4]  # empty context = all fields
    assert model.fusion.bilinear.shape == (2, 32, 32)
    assert model(random_ids(tiny_spec, batch_size=4)).shape == (4,)


def test_deepfm_first_order_term_reads_the_extra_column(tiny_spec):
    model = build("deepfm", tiny_spec).eval()
    e = model.embed(random_ids(tiny_spec, batch_size=4))
    shifted = e.clone()
    shifted[:, :, -1] += 0.25  # +0.25 first-order weight on each of the 5 fields
    assert torch.allclose(model.forward_embedded(shifted), model.forward_embedded(e) + 5 * 0.25, atol=1e-5)


def test_wukong_and_rankmixer_handle_any_field_count():
    # Field counts that do not divide the token count or match n_F + n_L.
    for num_fields in (1, 3, 17):
        spec = FeatureSpec(tuple(f"f{i}" for i in range(num_fields)), (4,) * num_fields)
        for name in ("wukong", "rankmixer", "ipnn"):
            model = build(name, spec)
            assert model(random_ids(spec, batch_size=3)).shape == (3,)


def test_token_mixing_transposes_the_token_head_grid():
    from ttsctr.layers.rankmixer import MultiHeadTokenMixing

    tokens, width = 4, 8  # heads of width 2
    x = torch.arange(tokens * width, dtype=torch.float32).view(1, tokens, width)
    out = MultiHeadTokenMixing(tokens, width)(x)
    for i in range(tokens):  # output token i = head i of token 0, head i of token 1, ...
        expected = torch.cat([x[0, t, 2 * i : 2 * i + 2] for t in range(tokens)])
        assert torch.equal(out[0, i], expected)


def test_pairwise_inner_product_matches_explicit_pairs():
    from ttsctr.layers.inner_product import PairwiseInnerProduct

    e = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    expected = torch.stack([(e[:, i] * e[:, j]).sum(-1) for i in range(4) for j in range(i + 1, 4)], dim=1)
    assert torch.allclose(PairwiseInnerProduct(4)(e), expected, atol=1e-6)


def test_factorization_machine_matches_explicit_pairs():
    from ttsctr.layers.factorization_machine import FactorizationMachine

    e = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    expected = sum((e[:, i] * e[:, j]).sum(-1) for i in range(4) for j in range(i + 1, 4))
    assert torch.allclose(FactorizationMachine()(e), expected, atol=1e-5)
