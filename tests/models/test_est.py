"""EST (``ttsctr.models.est``) and its sequence-attention layers.

(a) CSA's top-K weights equal a loop reference; (b) padding never changes the output, and a
row without any behaviour gives a finite logit, for every variant; (c) LCA with one query
equals cross-attention written out by hand; (d) preset shapes, parameter counts (closed
form) and measured FLOPs; (e) on a planted task EST beats the mean-pooling MLP.

Planted task (e): 40 items in 4 content clusters (orthonormal centres + noise); N =
(candidate item, candidate category, a noise field); B_u: 3–10 items, each from the user's
dominant cluster w.p. 0.45 else uniform; B_c: 3–5 items (dominant w.p. 0.3);
``P(y=1) = 0.85`` if the candidate's cluster is the majority cluster of B_u, else 0.15.
2400 train / 600 test rows, ``small`` presets, Adam lr 3e-3, batch 128, 3 epochs.

Measured (CPU, torch 2.13, 3 data seeds × 2 model seeds): after 3 epochs EST reaches
AUC 0.73–0.77 and MeanPoolMLP 0.54–0.57, margins +0.17 to +0.23 (this test's seeds: EST
0.758 vs 0.574, +0.18); the "candidate's cluster = majority" indicator itself scores
≈ 0.78. The advantage is sample efficiency, not capacity: in a 12-epoch sweep the mean-pool
MLP caught up around epoch 5–6 and ended at 0.76–0.81, while EST (overfitting 2400 rows
after ~5 epochs) ended at 0.73–0.78. Hence the short budget here.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec
from ttsctr.flops import count_parameters
from ttsctr.layers.sequence_attention import ContentSparseAttention, LightweightCrossAttention, csa_weights
from ttsctr.metrics import roc_auc
from ttsctr.models.est import (
    ATTENTIONS,
    EST,
    MEAN_POOL_PRESETS,
    PRESETS,
    ESTConfig,
    MeanPoolMLP,
    SequenceLayout,
    est_cost,
    random_sequence_batch,
)

torch.set_num_threads(1)

TINY = ESTConfig(embedding_dim=8, num_layers=2, num_heads=2, csa_top_k=3, ffn_expansion=2, hidden_units=(16,))


def make_layout(num_fields=3, user_len=7, candidate_len=4, n_items=30, content_dim=6, seed=0) -> SequenceLayout:
    generator = torch.Generator().manual_seed(seed)
    content = nn.functional.normalize(torch.randn(n_items + 1, content_dim, generator=generator), dim=-1)
    content[0] = 0.0
    return SequenceLayout(num_fields, user_len, candidate_len, n_items, content)


@pytest.fixture
def setup():
    spec = FeatureSpec(("a", "b", "c"), (5, 7, 3))
    return spec, make_layout()


# ---------------------------------------------------------------- (a) CSA


def reference_csa(content: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Algorithm 1 with explicit loops: per real row, the k most similar real columns."""
    batch, length, _ = content.shape
    m = content / content.norm(dim=-1, keepdim=True)
    out = torch.zeros(batch, length, length)
    for b in range(batch):
        for i in range(length):
            if not mask[b, i]:
                continue
            ranked = sorted(((float(m[b, i] @ m[b, j]), j) for j in range(length) if mask[b, j]), reverse=True)
            for sim, j in ranked[:k]:
                out[b, i, j] = sim
    return out


def test_csa_top_k_matches_loop_reference():
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(2, 6, 4, generator=generator)  # padding rows non-zero on purpose
    mask = torch.tensor([[False, False, True, True, True, True], [True] * 6])
    weights = csa_weights(content, mask, k=2)
    assert weights.shape == (2, 6, 6)
    torch.testing.assert_close(weights, reference_csa(content, mask, 2))
    assert ((weights != 0).sum(-1) <= 2).all()
    assert torch.all(weights[0, :2] == 0) and torch.all(weights[0, :, :2] == 0)  # padding rows / columns
    torch.testing.assert_close(torch.diagonal(weights[1]), torch.ones(6))  # an item is its own nearest

    # Fewer real items than k: the row keeps them all; one item: only itself.
    single = csa_weights(content, torch.tensor([[False] * 5 + [True], [True] * 6]), k=2)
    assert single[0].count_nonzero() == 1 and single[0, 5, 5] == pytest.approx(1.0)

    normalized = csa_weights(content, mask, k=2, normalize=True)
    torch.testing.assert_close(normalized.abs().sum(-1), mask.float())

    # Applying the dense matrix = Algorithm 1's gather-and-sum over the top-K indices.
    csa = ContentSparseAttention(3)
    b = torch.randn(2, 6, 3, generator=generator)
    _, index = weights.abs().topk(2, dim=-1)
    vals = torch.gather(weights, -1, index)  # (B, L, K)
    normed = csa.norm(b)
    gathered = torch.gather(normed[:, None].expand(2, 6, 6, 3), 2, index[..., None].expand(2, 6, 2, 3))
    torch.testing.assert_close(csa(b, weights), b + (gathered * vals[..., None]).sum(2))

    with pytest.raises(ConfigError):
        csa_weights(content, mask, k=0)


# ---------------------------------------------------------------- (b) padding


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_padding_never_changes_the_output(attention, setup):
    spec, layout = setup
    torch.manual_seed(0)
    model = EST(spec, dataclasses.replace(TINY, attention=attention), layout).eval()
    x = random_sequence_batch(spec, layout, 12, seed=1)
    x[0, 3:] = 0  # a user with no history and no candidate-specific behaviours
    with torch.no_grad():
        reference = model(x)
        e = model.embed(x)
        d = model.token_dim
        padded = e[:, :, d] == 0  # (B, F_N + L + K): only sequence padding
        assert padded[:, :3].sum() == 0 and padded[0, 3:].all()
        noisy = e.clone()
        noisy[..., :d][padded] = torch.randn(int(padded.sum()), d) * 10  # tokens at padding
        noisy[..., d + 1 :][padded] = torch.randn(int(padded.sum()), layout.content_dim)  # content at padding
        torch.testing.assert_close(model.forward_embedded(noisy), reference, rtol=0, atol=1e-5)

        # The padding id's own rows (item tables, content) do not matter either.
        model.user_tokenizer.items.weight[0] = 5.0
        model.candidate_tokenizer.items.weight[0] = -5.0
        model.content[0] = 1.0
        torch.testing.assert_close(model(x), reference, rtol=0, atol=1e-5)

    # The empty row is finite, and so are the gradients in train mode.
    assert torch.isfinite(reference).all()
    model.train()
    model(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mean_pool_mlp_ignores_padding(setup):
    spec, layout = setup
    model = MeanPoolMLP(spec, dataclasses.replace(MEAN_POOL_PRESETS["small"], embedding_dim=8), layout).eval()
    x = random_sequence_batch(spec, layout, 6, seed=2)
    x[0, 3:] = 0
    with torch.no_grad():
        reference = model(x)
        model.user_tokenizer.items.weight[0] = 5.0
        model.content[0] = 1.0
        torch.testing.assert_close(model(x), reference)
    assert torch.isfinite(reference).all()


def test_input_checks(setup):
    spec, layout = setup
    model = EST(spec, TINY, layout)
    x = random_sequence_batch(spec, layout, 4)
    with pytest.raises(ConfigError):
        model(x[:, :-1])
    bad = x.clone()
    bad[0, 3] = layout.n_items + 1
    with pytest.raises(DataFormatError):
        model(bad)
    with pytest.raises(ConfigError):
        EST(FeatureSpec(("a", "b"), (5, 7)), TINY, layout)  # layout says 3 fields
    with pytest.raises(ConfigError):
        EST(spec, dataclasses.replace(TINY, attention="sparse"), layout)
    with pytest.raises(ConfigError):
        SequenceLayout(3, 7, 4, 30, torch.ones(31, 6))  # padding row not zero


# ---------------------------------------------------------------- (c) LCA


def test_lca_with_one_query_matches_hand_written_cross_attention():
    torch.manual_seed(0)
    dim, heads, length = 8, 2, 5
    lca = LightweightCrossAttention(1, dim, heads)
    with torch.no_grad():
        for norm in (lca.query_norm, lca.key_norm):  # non-trivial affine parameters
            norm.weight.normal_()
            norm.bias.normal_()
    n = torch.randn(3, 1, dim)
    b = torch.randn(3, length, dim)
    mask = torch.tensor([[True] * 5, [False, False, True, False, True], [False] * 5])

    def layer_norm(x, norm):
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, unbiased=False, keepdim=True)
        return (x - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    head_dim = dim // heads
    expected = torch.empty(3, dim)
    with torch.no_grad():
        for row in range(3):
            q = layer_norm(n[row, 0], lca.query_norm) @ lca.query.weight[0]  # (D,)
            kv = layer_norm(b[row], lca.key_norm)  # (L, D)
            keys, values = kv @ lca.key.weight.T, kv @ lca.value.weight.T
            context = torch.zeros(dim)
            for h in range(heads):
                sl = slice(h * head_dim, (h + 1) * head_dim)
                real = [j for j in range(length) if mask[row, j]]
                scores = torch.tensor([float(q[sl] @ keys[j, sl]) / math.sqrt(head_dim) for j in real])
                weights = torch.exp(scores - scores.max()) / torch.exp(scores - scores.max()).sum() if real else []
                for w, j in zip(weights, real):
                    context[sl] += w * values[j, sl]
            expected[row] = n[row, 0] + context @ lca.output.weight[0]
        out = lca(n, b, mask)
    assert out.shape == (3, 1, dim)
    torch.testing.assert_close(out[:, 0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[2], n[2])  # no behaviours: the query token passes through


# ---------------------------------------------------------------- (d) presets, sizes, FLOPs


def est_dense_params(F: int, D: int, k: int, S: int, hidden: tuple[int, ...], d_c: int, attention: str) -> int:
    norm = 2 * D
    if attention == "full":
        attn = norm + 4 * D * D
    else:  # LCA: two norms, token-specific W_Q, W_O, shared W_K, W_V; CSA: one norm
        attn = 2 * norm + 2 * F * D * D + 2 * D * D + (norm if attention == "est" else 0)
    ffn = D * k * D + k * D + k * D * D + D
    layer = attn + norm + F * ffn + norm + ffn
    dims = [(F + 1) * D, *hidden, 1]
    head = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
    return S * layer + 2 * norm + head + 2 * d_c * D  # + final norms, head, content projections


@pytest.mark.parametrize("preset", ["small", "default"])
def test_preset_shapes_and_parameter_counts(preset, setup):
    spec, layout = setup
    x = random_sequence_batch(spec, layout, 5)
    for attention in ATTENTIONS:
        config = dataclasses.replace(PRESETS[preset], attention=attention)
        model = EST(spec, config, layout)
        D = config.embedding_dim
        assert model.embed(x).shape == (5, 3 + 7 + 4, D + 1 + layout.content_dim)
        assert model(x).shape == (5,)
        dense, embedding = count_parameters(model)
        assert dense == model.dense_parameters() == est_dense_params(
            3, D, config.ffn_expansion, config.num_layers, config.hidden_units, layout.content_dim, attention
        )
        assert embedding == model.embedding_parameters() == spec.num_features * D + 2 * (layout.n_items + 1) * D
    pool = MeanPoolMLP(spec, MEAN_POOL_PRESETS[preset], layout)
    assert pool(x).shape == (5,)


def test_flops_are_measured_and_grow_with_the_preset(setup, record_property):
    spec, layout = setup
    small = est_cost(EST(spec, PRESETS["small"], layout))
    default = est_cost(EST(spec, PRESETS["default"], layout))
    assert 0 < small.flops_per_row < default.flops_per_row
    assert small.dense_params < default.dense_params
    record_property("flops_small", small.flops_per_row)
    record_property("flops_default", default.flops_per_row)
    print(f"EST small {small}, default {default}")

    # LCA is bilinear in the sequence length, full self-attention quadratic (paper §5.3).
    long = make_layout(user_len=60, candidate_len=20)
    costs = {a: est_cost(EST(spec, dataclasses.replace(PRESETS["small"], attention=a), long)) for a in ATTENTIONS}
    assert costs["lca_only"].flops_per_row < costs["est"].flops_per_row < costs["full"].flops_per_row
    # A passed batch is measured as is (FLOPs do not depend on padding: everything is dense).
    batch = random_sequence_batch(spec, layout, 7, seed=3)
    assert est_cost(EST(spec, PRESETS["small"], layout), batch).flops_per_row == small.flops_per_row


# ---------------------------------------------------------------- (e) planted task

TRAIN_ROWS, TEST_ROWS, EPOCHS, BATCH, LEARNING_RATE = 2400, 600, 3, 128, 3e-3
REQUIRED_MARGIN = 0.10  # measured +0.18 here; +0.17 to +0.23 over 6 data/model seeds


def planted_task(seed: int = 0, n_clusters: int = 4, per_cluster: int = 10, user_len: int = 10, candidate_len: int = 5):
    generator = torch.Generator().manual_seed(seed)
    rows, content_dim = TRAIN_ROWS + TEST_ROWS, 16
    n_items = n_clusters * per_cluster
    cluster = torch.arange(n_items) // per_cluster  # cluster of item i + 1
    centres = torch.linalg.qr(torch.randn(content_dim, n_clusters, generator=generator))[0].T  # orthonormal
    noise = 0.3 * torch.randn(n_items, content_dim, generator=generator) / content_dim**0.5
    content = torch.cat([torch.zeros(1, content_dim), nn.functional.normalize(centres[cluster] + noise, dim=-1)])
    item_cluster = torch.cat([torch.tensor([-1]), cluster])
    dominant = torch.randint(0, n_clusters, (rows,), generator=generator)

    def sequence(length: int, p_dominant: float) -> torch.Tensor:
        uniform = torch.randint(0, n_clusters, (rows, length), generator=generator)
        clusters = torch.where(torch.rand(rows, length, generator=generator) < p_dominant, dominant[:, None], uniform)
        items = clusters * per_cluster + torch.randint(0, per_cluster, (rows, length), generator=generator) + 1
        lengths = torch.randint(3, length + 1, (rows, 1), generator=generator)
        return items * (torch.arange(length)[None] >= length - lengths)  # left padding

    user, candidate_seq = sequence(user_len, 0.45), sequence(candidate_len, 0.3)
    counts = torch.zeros(rows, n_clusters).scatter_add_(1, item_cluster[user].clamp_min(0), (user > 0).float())
    candidate = torch.randint(1, n_items + 1, (rows,), generator=generator)
    noise_field = torch.randint(0, 6, (rows,), generator=generator)
    match = item_cluster[candidate] == counts.argmax(1)
    y = torch.bernoulli(torch.where(match, 0.85, 0.15), generator=generator)
    spec = FeatureSpec(("candidate", "category", "noise"), (n_items, n_clusters, 6))
    fields = torch.stack([candidate - 1, item_cluster[candidate] + n_items, noise_field + n_items + n_clusters], 1)
    x = torch.cat([fields, user, candidate_seq], dim=1)
    return spec, SequenceLayout(3, user_len, candidate_len, n_items, content), x, y


def train_and_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    order = torch.Generator().manual_seed(1)
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(TRAIN_ROWS, generator=order)
        for start in range(0, TRAIN_ROWS, BATCH):
            rows = perm[start : start + BATCH]
            loss = nn.functional.binary_cross_entropy_with_logits(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return roc_auc(y[TRAIN_ROWS:].numpy(), model(x[TRAIN_ROWS:]).numpy())


def test_est_beats_mean_pool_mlp_on_planted_task(record_property):
    spec, layout, x, y = planted_task()
    torch.manual_seed(0)
    est_auc = train_and_score(EST(spec, PRESETS["small"], layout), x, y)
    torch.manual_seed(0)
    pool_auc = train_and_score(MeanPoolMLP(spec, MEAN_POOL_PRESETS["small"], layout), x, y)
    record_property("est_auc", round(est_auc, 4))
    record_property("mean_pool_auc", round(pool_auc, 4))
    print(f"planted task: EST AUC {est_auc:.4f} vs MeanPoolMLP {pool_auc:.4f} (margin {est_auc - pool_auc:+.4f})")
    assert est_auc > pool_auc + REQUIRED_MARGIN
