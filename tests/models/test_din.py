"""The hierarchical DIN baselines of EST (``ttsctr.models.din``), DIN target attention
(``ttsctr.layers.target_attention``), the SimTier token (``ttsctr.layers.simtier``) and the
optional SimTier token of EST / the mean-pooling MLP.

(a) target attention equals a hand-written activation unit; padding never contributes;
(b) the SimTier histogram equals a numpy computation; (c) ``din_dcnv2`` / ``din_rankmixer``
build from a tiny ``SequenceFeatureSpec``, give finite logits, measured FLOPs, ignore padding,
and train through ``ttsctr.training`` with a falling loss; (d) EST and the mean-pool MLP with
``simtier=True``. Everything is tiny (40 users, 60 items, sequences of 8 + 4, ``small`` presets).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ttsctr.data.sequences import SequenceConfig, sequence_inputs, synthetic_sequences
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import count_parameters, model_cost
from ttsctr.layers.simtier import SimTier, simtier_histogram
from ttsctr.layers.target_attention import TargetAttention
from ttsctr.models import available_models, build_model, get_entry
from ttsctr.models.din import DINDCNv2, DINRankMixer, DIN_DCNV2_PRESETS
from ttsctr.models.est import EST, PRESETS, SequenceLayout, random_sequence_batch
from ttsctr.training import MemberSpec, TrainConfig, build_group, load_group, predict_logits, save_group, train

torch.set_num_threads(1)

DIN_MODELS = ("din_dcnv2", "din_rankmixer")


@pytest.fixture(scope="module")
def tiny():
    data = synthetic_sequences(n_users=40, n_items=60, events_per_user=12,
                               config=SequenceConfig(user_len=8, candidate_len=4, content_dim=8))
    spec, splits = sequence_inputs(data)
    return spec, splits


def batch_of(spec, splits, rows: int = 12) -> torch.Tensor:
    """The first ``rows`` training rows, row 0 stripped of every behaviour (slots = padding ids)."""
    x = torch.as_tensor(splits["train"][0][:rows]).long()
    f = spec.num_context_fields
    x[0, f:] = torch.tensor(spec.slot_offsets)
    return x


# ---------------------------------------------------------------- (a) target attention


def test_target_attention_matches_hand_written_activation_unit():
    torch.manual_seed(0)
    dim, length = 3, 4
    attention = TargetAttention(dim, (5, 2))
    query = torch.randn(3, dim)
    keys = torch.randn(3, length, dim)
    mask = torch.tensor([[True] * 4, [False, True, False, True], [False] * 4])
    first, second, out_layer = (m for m in attention.unit.net if isinstance(m, nn.Linear))

    expected = torch.zeros(3, dim)
    with torch.no_grad():
        for row in range(3):
            q = query[row]
            for j in range(length):
                if not mask[row, j]:
                    continue
                k = keys[row, j]
                features = torch.cat([q, k, q - k, q * k])  # (4D,)
                h = torch.sigmoid(first.weight @ features + first.bias)
                h = torch.sigmoid(second.weight @ h + second.bias)
                w = float(out_layer.weight[0] @ h + out_layer.bias[0])  # no softmax
                expected[row] += w * k
        out = attention(query, keys, mask)
    assert out.shape == (3, dim)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.all(out[2] == 0)  # no behaviour: the zero vector
    weights = attention.weights(query, keys, mask)
    assert weights.shape == (3, length) and torch.all(weights[~mask] == 0)

    # Padded keys never contribute, whatever they hold (even NaN).
    noisy = keys.clone()
    noisy[~mask] = float("nan")
    with torch.no_grad():
        torch.testing.assert_close(attention(query, noisy, mask), out, rtol=0, atol=0)
    with pytest.raises(ConfigError):
        TargetAttention(dim, (0,))


# ---------------------------------------------------------------- (b) SimTier


def test_simtier_histogram_matches_numpy():
    generator = torch.Generator().manual_seed(0)
    batch, length, d_c, tiers = 4, 6, 5, 7
    candidate = torch.randn(batch, d_c, generator=generator)
    behaviours = torch.randn(batch, length, d_c, generator=generator)
    behaviours[1, 0] = candidate[1] * 3.0  # cos = 1: the last bin
    behaviours[1, 1] = -candidate[1]  # cos = -1: the first bin
    mask = torch.tensor([[True] * 6, [True, True, False, True, False, True], [False] * 6, [False] * 5 + [True]])
    hist = simtier_histogram(candidate, behaviours, mask, tiers)

    c, m = candidate.numpy().astype(np.float64), behaviours.numpy().astype(np.float64)
    edges = np.linspace(-1.0, 1.0, tiers + 1)
    expected = np.zeros((batch, tiers))
    for row in range(batch):
        real = mask[row].numpy()
        if not real.any():
            continue
        cos = m[row, real] @ c[row] / (np.linalg.norm(m[row, real], axis=1) * np.linalg.norm(c[row]))
        counts, _ = np.histogram(np.clip(cos, -1.0, 1.0), bins=edges)  # last bin closed, as ours
        expected[row] = counts / real.sum()
    np.testing.assert_allclose(hist.numpy(), expected, atol=1e-7)
    assert hist[1, -1] == pytest.approx(1 / 4) and hist[1, 0] >= 1 / 4  # the ±1 similarities
    assert torch.all(hist[2] == 0)  # no history: zeros
    torch.testing.assert_close(hist.sum(1), torch.tensor([1.0, 1.0, 0.0, 1.0]))

    # Padding content is never read; the token is a Linear of the histogram.
    noisy = behaviours.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), d_c, generator=generator)
    torch.testing.assert_close(simtier_histogram(candidate, noisy, mask, tiers), hist, rtol=0, atol=0)
    token = SimTier(tiers, 3)
    torch.testing.assert_close(token(candidate, behaviours, mask), token.project(hist))
    with pytest.raises(ConfigError):
        SimTier(0, 3)


# ---------------------------------------------------------------- (c) DIN baselines


def test_din_models_are_registered_as_sequence_backbones():
    assert set(DIN_MODELS) <= set(available_models("sequence"))
    assert not set(DIN_MODELS) & set(available_models())
    for name in DIN_MODELS:
        assert {"default", "small"} <= set(get_entry(name).presets)
    assert get_entry("din_dcnv2").presets["default"].embedding_dim == PRESETS["default"].embedding_dim == 128
    assert get_entry("din_rankmixer").presets["small"].embedding_dim == PRESETS["small"].embedding_dim == 16


@pytest.mark.parametrize("name", DIN_MODELS)
def test_din_model_builds_runs_and_has_flops(name, tiny):
    spec, splits = tiny
    torch.manual_seed(0)
    model = build_model(name, spec, "small")
    x = batch_of(spec, splits)
    with torch.no_grad():
        e = model.embed(x)
        logits = model(x)
    D, F_N, ci = model.token_dim, spec.num_context_fields, spec.candidate_index
    assert e.shape == (12, spec.num_fields, D + 1 + spec.content.shape[1])
    assert logits.shape == (12,) and torch.isfinite(logits).all()  # row 0 has no behaviour at all
    assert model.compress(e).shape == (12, F_N + 3, D)
    # The candidate field's row carries the candidate item's (normalised) content.
    item = x[:, ci] - spec.offsets[ci]
    torch.testing.assert_close(e[:, ci, D + 1:], nn.functional.normalize(torch.as_tensor(spec.content)[item], dim=-1))
    # The interaction stack has no embedding table: embeddings are the context table + 2 item tables.
    dense, embedding = count_parameters(model)
    assert not hasattr(model.interaction, "embedding")
    assert embedding == spec.context_spec().num_features * D + 2 * (spec.n_items + 1) * D
    cost = model_cost(model)
    assert cost.flops_per_row > 0 and cost.dense_params == dense
    assert model_cost(build_model(name, spec, "default")).flops_per_row > cost.flops_per_row


@pytest.mark.parametrize("name", DIN_MODELS)
def test_din_model_ignores_padding(name, tiny):
    spec, splits = tiny
    torch.manual_seed(1)
    model = build_model(name, spec, "small").eval()
    x = batch_of(spec, splits)
    with torch.no_grad():
        reference = model(x)
        e = model.embed(x)
        d, f = model.token_dim, spec.num_context_fields
        padded = e[:, :, d] == 0  # only sequence padding
        assert padded[:, :f].sum() == 0 and padded[0, f:].all() and padded.sum() > spec.num_fields - f
        noisy = e.clone()
        noisy[..., :d][padded] = torch.randn(int(padded.sum()), d) * 10  # tokens at padding
        noisy[..., d + 1:][padded] = torch.randn(int(padded.sum()), e.shape[-1] - d - 1)  # content at padding
        torch.testing.assert_close(model.forward_embedded(noisy), reference, rtol=0, atol=1e-5)
        # The padding id's own rows (item tables, content) do not matter either.
        model.user_tokenizer.items.weight[0] = 5.0
        model.candidate_tokenizer.items.weight[0] = -5.0
        model.content[0] = 1.0
        torch.testing.assert_close(model(x), reference, rtol=0, atol=1e-5)
    model.train()
    model(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", DIN_MODELS)
def test_din_model_trains_through_the_trainer(name, tiny, tmp_path):
    spec, splits = tiny
    config = TrainConfig.from_protocol("reference", max_epochs=3, num_threads=1, progress=False, batch_size=64,
                                       learning_rate=3e-3, patience=5)
    group = build_group(spec, [MemberSpec(name, 0, "small")], weight_init=config.weight_init)
    result = train(group, splits["train"], splits["validation"], config)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses  # measured over 4 seeds: 0.56-0.70 -> 0.30-0.54
    # A checkpoint rebuilds the model from its registry name and reloads the same predictions.
    x = splits["test"][0]
    save_group(group, None, spec, tmp_path / "group.pt")
    again, _, _ = load_group(tmp_path / "group.pt")
    np.testing.assert_allclose(predict_logits(again, x), predict_logits(group, x), rtol=0, atol=1e-6)


def test_din_needs_the_candidate_field():
    content = nn.functional.normalize(torch.randn(11, 4), dim=-1)
    content[0] = 0.0
    spec = FeatureSpec(("item", "b"), (11, 3))
    config = DIN_DCNV2_PRESETS["small"]
    with pytest.raises(ConfigError, match="candidate"):
        DINDCNv2(spec, config, SequenceLayout(2, 5, 3, 10, content))  # no candidate_index
    with pytest.raises(ConfigError, match="candidate field 'b' has 3 codes"):
        DINDCNv2(spec, config, SequenceLayout(2, 5, 3, 10, content, candidate_index=1))
    layout = SequenceLayout(2, 5, 3, 10, content, candidate_index=0)
    model = DINRankMixer(spec, get_entry("din_rankmixer").presets["small"], layout)
    x = random_sequence_batch(spec, layout, 6)
    assert model(x).shape == (6,)
    assert model.interaction.num_tokens == 2 + 3  # field tokens: one per token of [N; d_u; d_c; s]


# ---------------------------------------------------------------- (d) SimTier in EST / mean pool


@pytest.mark.parametrize("name", ["est", "seq_mean_pool"])
def test_simtier_token_in_est_and_mean_pool(name, tiny):
    spec, splits = tiny
    torch.manual_seed(0)
    plain = build_model(name, spec, "small")
    model = build_model(name, spec, "small", simtier=True, n_tiers=6)
    assert plain.simtier is None and model.simtier is not None and model.simtier.n_tiers == 6
    x = batch_of(spec, splits)
    logits = model(x)
    assert logits.shape == (12,) and torch.isfinite(logits).all()
    D, F_N = model.token_dim, spec.num_context_fields
    assert model.dense_parameters() > plain.dense_parameters()
    if name == "est":  # one more N token, with its own per-token query / FFN weights
        assert model.layers[0].cross_attention.query.weight.shape[0] == F_N + 1
        assert model.head.net[0].in_features == (F_N + 2) * D
    else:
        assert model.head.net[0].in_features == (F_N + 3) * D
    assert model_cost(model).flops_per_row > model_cost(plain).flops_per_row
    # Row 0 has no behaviour: its histogram is all zeros, so its token is the projection's bias.
    with torch.no_grad():
        e = model.embed(x)
        _, _, mask, content = model.unpack(e)
        token = model.simtier_token(e, mask, content)
        assert token.shape == (12, D)
        torch.testing.assert_close(token[0], model.simtier.project.bias)  # empty history: W·0 + b


def test_est_simtier_needs_the_candidate_field():
    content = nn.functional.normalize(torch.randn(11, 4), dim=-1)
    content[0] = 0.0
    spec = FeatureSpec(("item", "b"), (11, 3))
    config = PRESETS["small"].__class__(embedding_dim=8, num_layers=1, num_heads=2, hidden_units=(8,), simtier=True)
    with pytest.raises(ConfigError, match="SimTier"):
        EST(spec, config, SequenceLayout(2, 5, 3, 10, content))
    model = EST(spec, config, SequenceLayout(2, 5, 3, 10, content, candidate_index=0))
    assert model(random_sequence_batch(spec, model.layout, 4)).shape == (4,)
