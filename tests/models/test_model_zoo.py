"""Every backbone: shapes, gradients, determinism, the embed/forward_embedded split, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec
from ttsctr.flops import random_ids
from ttsctr.layers.init import WEIGHT_INIT_SCHEMES, initialize_weights
from ttsctr.models import available_models, build_model, get_entry

BACKBONES = ["dcn", "dcnv2", "deepfm", "finalmlp", "fnn", "ipnn", "lr", "rankmixer", "wukong"]
# Width-scaling models built from backbones as experts (tests/models/test_width_scaling.py);
# they pass the generic checks below too.
WIDTH_SCALING = ["dmoe", "multi_embed"]
MODELS = sorted(BACKBONES + WIDTH_SCALING)
EXTRA_PRESETS = {"rankmixer": ["mean_pool"]}
PRESETS = ["default", "small"]
MODEL_PRESETS = [(name, preset) for name in MODELS for preset in PRESETS + EXTRA_PRESETS.get(name, [])]
# LR has no hidden layers: no dropout, no batch norm.
DEEP_BACKBONES = [name for name in MODELS if name != "lr"]
# RankMixer's one-token-per-field mode, from the slice-token small preset.
FIELD_TOKENS = {"tokenizer": "field", "num_tokens": None, "token_dim": None}


def build(name: str, spec: FeatureSpec, preset: str = "small", seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, spec, preset, **overrides)


def test_registry_lists_every_backbone():
    assert available_models() == MODELS
    for name in MODELS:
        assert set(get_entry(name).presets) == set(PRESETS + EXTRA_PRESETS.get(name, []))


@pytest.mark.parametrize("scheme", ["torch_default", "xavier_normal"])
@pytest.mark.parametrize("name, preset", MODEL_PRESETS)
def test_forward_backward_shapes_and_gradients(name, preset, scheme, tiny_spec):
    model = build(name, tiny_spec, preset)
    initialize_weights(model, scheme)
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


@pytest.mark.parametrize("name", DEEP_BACKBONES)
def test_dropout_and_batch_norm_switches(name, tiny_spec):
    model = build(name, tiny_spec, "small", dropout=0.5, batch_norm=True)
    assert any(isinstance(m, nn.Dropout) for m in model.modules()), "MC-dropout needs nn.Dropout modules"
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    ids = random_ids(tiny_spec, batch_size=8, seed=1)
    model.train()
    model(ids).sum().backward()
    model.eval()
    assert torch.equal(model(ids), model(ids))  # eval: dropout off, BN uses running stats


@pytest.mark.parametrize("name", MODELS)
def test_construction_is_deterministic(name, tiny_spec):
    a, b = build(name, tiny_spec, seed=3), build(name, tiny_spec, seed=3)
    c = build(name, tiny_spec, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    ids = random_ids(tiny_spec, batch_size=8)
    assert torch.equal(a.eval()(ids), b.eval()(ids))


@pytest.mark.parametrize("name", MODELS)
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


@pytest.mark.parametrize("name", MODELS)
def test_unknown_config_key(name, tiny_spec):
    with pytest.raises(ConfigError, match="unknown config keys \\['hiden_units'\\]"):
        build_model(name, tiny_spec, "small", hiden_units=(8,))


@pytest.mark.parametrize("name", MODELS)
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
        ("finalmlp", {"use_fs": False, "fs2_context": ("f1",)}, "use_fs is false"),
        ("wukong", {"fmb_output_activation": "gelu"}, "fmb_output_activation must be one of"),
        ("rankmixer", FIELD_TOKENS | {"token_dim": 12}, "token_dim=12 must be divisible by num_tokens=5"),
        ("rankmixer", FIELD_TOKENS | {"num_tokens": 5}, "tokenizer='field' makes one token per field"),
        ("rankmixer", {"num_tokens": None}, "tokenizer='slice' needs num_tokens and token_dim"),
        ("rankmixer", {"token_dim": 30}, "token_dim=30 must be divisible by num_tokens=8"),
        ("rankmixer", {"tokenizer": "group"}, "tokenizer must be one of"),
        ("rankmixer", {"head": "cls"}, "head must be one of"),
        ("rankmixer", {"expansion": 0}, "expansion must be >= 1"),
        ("lr", {"embedding_dim": 8}, "embedding_dim must be 1"),
        ("lr", {"dropout": 0.1}, "no dropout or batch norm"),
        ("lr", {"batch_norm": True}, "no dropout or batch norm"),
    ],
)
def test_invalid_model_settings(name, overrides, message, tiny_spec):
    with pytest.raises(ConfigError, match=message):
        build_model(name, tiny_spec, "small", **overrides)


# --- model-specific behaviour ----------------------------------------------------------------


def test_finalmlp_context_fields_and_heads(tiny_spec):
    model = build("finalmlp", tiny_spec, fs1_context=("f0", "f3"), num_heads=2)
    assert model.gate1.context_fields.tolist() == [0, 3]
    assert model.gate1.context is None
    assert model.fusion.bilinear.shape == (2, 32, 32)
    e = model.embed(random_ids(tiny_spec, batch_size=4))
    gated = model.gate1(e) / e.flatten(1)  # (B, F·D): the gate values
    assert not torch.allclose(gated[0], gated[1])  # depends on the row's context fields
    assert model(random_ids(tiny_spec, batch_size=4)).shape == (4,)


def test_finalmlp_empty_context_is_a_learned_constant(tiny_spec):
    model = build("finalmlp", tiny_spec)  # both contexts empty
    for gate in (model.gate1, model.gate2):
        assert isinstance(gate.context, nn.Parameter) and gate.context.shape == (1, 8)
        assert gate.context_fields.numel() == 0
        first_layer = gate.gate_mlp.net[0]
        assert first_layer.in_features == 8  # the constant, not the concatenated fields
        # No dropout (MC-dropout must not move the gates) and no batch norm in the gate MLP.
        assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in gate.modules())
    e = model.embed(random_ids(tiny_spec, batch_size=4))
    g = model.gate1(e) / e.flatten(1)
    assert torch.allclose(g, g[:1].expand_as(g))  # the same gate for every row
    assert ((g > 0) & (g < 2)).all()
    model(random_ids(tiny_spec, batch_size=4)).sum().backward()
    assert model.gate1.context.grad.abs().sum() > 0  # the constant is learned


def test_finalmlp_without_feature_selection_is_the_reference_two_stream_mlp(tiny_spec):
    model = build("finalmlp", tiny_spec, "default", use_fs=False)
    assert model.gate1 is None and model.gate2 is None
    gated = build("finalmlp", tiny_spec, "default")
    gate_params = sum(p.numel() for n, p in gated.named_parameters() if n.startswith("gate"))
    assert model.dense_parameters() == gated.dense_parameters() - gate_params
    e = model.embed(random_ids(tiny_spec, batch_size=4))
    model.eval()
    expected = model.fusion(model.mlp1(e.flatten(1)), model.mlp2(e.flatten(1)))
    assert torch.equal(model.forward_embedded(e), expected)


def test_deepfm_first_order_term_reads_the_extra_column(tiny_spec):
    model = build("deepfm", tiny_spec).eval()
    e = model.embed(random_ids(tiny_spec, batch_size=4))
    shifted = e.clone()
    shifted[:, :, -1] += 0.25  # +0.25 first-order weight on each of the 5 fields
    assert torch.allclose(model.forward_embedded(shifted), model.forward_embedded(e) + 5 * 0.25, atol=1e-5)


@pytest.mark.parametrize("name, preset", [("wukong", "small"), ("rankmixer", "small"), ("rankmixer", "default"),
                                          ("rankmixer", "mean_pool"), ("ipnn", "small"), ("lr", "small")])
def test_any_field_count(name, preset):
    # Field counts that do not divide the token count / embedding width or match n_F + n_L.
    for num_fields in (1, 3, 7, 17):
        spec = FeatureSpec(tuple(f"f{i}" for i in range(num_fields)), (4,) * num_fields)
        model = build(name, spec, preset)
        logits = model(random_ids(spec, batch_size=3))
        assert logits.shape == (3,) and torch.isfinite(logits).all()


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


def test_rankmixer_default_is_the_reference_code_variant():
    # Reference code: one token per field, token width = embedding width, k = 2, L = 3,
    # flatten + MLP (1024, 512, 256). With 8 fields at d = 16 no projection is needed.
    spec = FeatureSpec(tuple(f"f{i}" for i in range(8)), (4,) * 8)
    model = build("rankmixer", spec, "default")
    assert (model.num_tokens, model.token_dim) == (8, 16)
    assert model.tokenizer.project is None
    assert len(model.blocks) == 3
    assert model.blocks[0].ffn.up.weight.shape == (8, 16, 32)  # per token, expansion 2
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 1024), (1024, 512), (512, 256), (256, 1)]
    e = model.embed(random_ids(spec, batch_size=2))
    assert torch.equal(model.tokenizer(e), e)


def test_rankmixer_field_tokens_round_the_width_up_to_a_multiple_of_the_field_count():
    criteo = FeatureSpec(tuple(f"f{i}" for i in range(39)), (4,) * 39)
    model = build("rankmixer", criteo, "default")
    assert (model.num_tokens, model.token_dim) == (39, 39)  # 16 -> 39: heads of width 1
    assert model.tokenizer.project.weight.shape == (39, 16, 39)  # a d×D projection per field
    assert model.head.net[0].in_features == 39 * 39
    small = build("rankmixer", criteo, "small", **FIELD_TOKENS)
    assert (small.num_tokens, small.token_dim) == (39, 39)
    assert small.tokenizer.project.weight.shape == (39, 8, 39)
    wide = build("rankmixer", criteo, "small", **(FIELD_TOKENS | {"token_dim": 78}))
    assert wide.token_dim == 78
    assert model(random_ids(criteo, batch_size=3)).shape == (3,)


def test_rankmixer_small_preset_uses_slice_tokens(tiny_spec):
    model = build("rankmixer", tiny_spec, "small")
    F, d, T, D, k = 5, 8, 8, 16, 2
    assert (model.num_tokens, model.token_dim) == (T, D)
    assert model.tokenizer.slice_dim == 5  # ceil(5·8 / 8)
    tokenizer = T * 5 * D  # no bias
    ffn = T * ((D * k * D + k * D) + (k * D * D + D))
    norms = 2 * 2 * D
    assert model.dense_parameters() == tokenizer + 2 * (ffn + norms) + mlp_params([T * D, 128, 64, 1])


def test_rankmixer_mean_pool_preset_keeps_the_earlier_variant(tiny_spec):
    model = build("rankmixer", tiny_spec, "mean_pool")
    assert (model.num_tokens, model.token_dim) == (16, 64)
    assert model.blocks[0].ffn.up.weight.shape == (16, 64, 256)  # expansion 4
    assert [m for m in model.head.modules() if isinstance(m, nn.Linear)][0].in_features == 64
    assert len([m for m in model.head.modules() if isinstance(m, nn.Linear)]) == 1  # w^T mean + b


@pytest.mark.parametrize("preset, overrides", [("default", {}), ("small", FIELD_TOKENS)])
def test_rankmixer_field_token_parameter_count(preset, overrides, tiny_spec):
    model = build("rankmixer", tiny_spec, preset, **overrides)
    cfg = model.config
    F, N, d, T, D, k = 5, 50, cfg.embedding_dim, model.num_tokens, model.token_dim, cfg.expansion
    assert T == F and D == -(-d // F) * F  # 16 -> 20, 8 -> 10
    projection = F * d * D  # no bias
    ffn = T * ((D * k * D + k * D) + (k * D * D + D))
    norms = 2 * 2 * D
    head = mlp_params([T * D, *cfg.hidden_units, 1])
    assert model.embedding_parameters() == N * d
    assert model.dense_parameters() == projection + cfg.num_layers * (ffn + norms) + head


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_wukong_fmb_output_activation(activation, tiny_spec):
    model = build("wukong", tiny_spec, fmb_output_activation=activation).eval()
    fmb = model.layers[0].fmb
    x = torch.randn(64, 5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = fmb(x)  # (B, n_F, D)
    assert out.shape == (64, 8, 8)
    if activation == "relu":
        assert (out >= 0).all() and (out == 0).any()
    else:
        assert (out < 0).any()
    # Same parameters either way: the activation has none.
    relu = build("wukong", tiny_spec, fmb_output_activation="relu")
    assert model.dense_parameters() == relu.dense_parameters()


def test_wukong_default_activation_is_relu():
    assert get_entry("wukong").presets["default"].fmb_output_activation == "relu"
    assert get_entry("wukong").presets["small"].fmb_output_activation == "relu"


def test_lr_is_bias_plus_first_order_weights(tiny_spec):
    model = build("lr", tiny_spec, "default")
    assert model.embedding.weight.shape == (50, 1)
    assert model.dense_parameters() == 1 and model.embedding_parameters() == 50
    with torch.no_grad():
        model.embedding.weight.copy_(torch.arange(50, dtype=torch.float32).unsqueeze(1) / 100)
        model.bias.fill_(-0.5)
    ids = random_ids(tiny_spec, batch_size=6)
    expected = ids.float().sum(dim=1) / 100 - 0.5
    assert torch.allclose(model(ids), expected, atol=1e-6)
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d, nn.Linear)) for m in model.modules())
