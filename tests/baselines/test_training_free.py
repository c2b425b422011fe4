"""Training-free test-time scaling (§3.6.2): MC-dropout, frequency-aware masking, overlap area,
and the pairwise source matrix of Fig. 7."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest
from torch import nn

from ttsctr.baselines.training_free import (
    FrequencyMask,
    feature_frequencies,
    feature_masking_logits,
    frequency_mask,
    masked_ids,
    mc_dropout_logits,
    merge_passes,
    source_matrix,
    source_matrix_wide,
)
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import random_ids
from ttsctr.metrics import overlap_area, roc_auc
from ttsctr.models import build_model
from ttsctr.training import MemberSpec, build_group, predict_logits

# Two CPU cores are shared by several test runs.
torch.set_num_threads(1)


@pytest.fixture
def spec() -> FeatureSpec:
    # Unequal vocabularies, so a wrong offset would send an id to another field.
    return FeatureSpec(field_names=("a", "b", "c"), vocab_sizes=(10, 6, 12))


def _model(spec: FeatureSpec, **overrides) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("dcnv2", spec, "small", **overrides)
    # Embeddings start at std 1e-4; larger ones make the logits depend visibly on the ids.
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.5)
    return model


def _x(spec: FeatureSpec, n: int = 64, seed: int = 1) -> np.ndarray:
    return random_ids(spec, batch_size=n, seed=seed).numpy().astype(np.int32)


def _eval_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(x)).float().numpy()


# ------------------------------------------------------------------------------- MC-dropout


def test_mc_dropout_rate_0_equals_the_deterministic_forward(spec) -> None:
    # Batch norm on: if anything but dropout ran in train mode, batch statistics would show.
    model = _model(spec, dropout=0.1, batch_norm=True)
    x = _x(spec)
    out = mc_dropout_logits(model, x, rate=0.0, passes=3, batch_size=1024)
    assert out.shape == (64, 3) and out.dtype == np.float32
    expected = _eval_forward(model, x)
    for k in range(3):
        np.testing.assert_array_equal(out[:, k], expected)


def test_mc_dropout_passes_differ_and_are_reproducible(spec) -> None:
    model = _model(spec, dropout=0.0)  # trained without dropout: MC switches it on
    x = _x(spec)
    a = mc_dropout_logits(model, x, rate=0.1, passes=4, seed=3)
    b = mc_dropout_logits(model, x, rate=0.1, passes=4, seed=3)
    c = mc_dropout_logits(model, x, rate=0.1, passes=2, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, 0], a[:, 1])
    assert not np.array_equal(a[:, :2], c)
    # Pass k does not depend on how many passes are drawn.
    np.testing.assert_array_equal(mc_dropout_logits(model, x, rate=0.1, passes=2, seed=3), a[:, :2])
    assert np.isfinite(a).all()


def test_mc_dropout_leaves_the_model_and_global_rng_unchanged(spec) -> None:
    model = _model(spec, dropout=0.05, batch_norm=True)
    model.train()
    next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d)).eval()  # a mixed state
    flags = [m.training for m in model.modules()]
    rates = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    mc_dropout_logits(model, _x(spec), rate=0.3, passes=2)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert [m.training for m in model.modules()] == flags
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == rates == [0.05] * len(rates)
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)  # BN running stats included


def test_mc_dropout_on_a_group_and_argument_errors(spec) -> None:
    group = build_group(spec, [MemberSpec("dcnv2", 0, "small", {"dropout": 0.1}), MemberSpec("fnn", 1, "small")])
    x = _x(spec, n=40)
    out = mc_dropout_logits(group, x, rate=0.0, passes=2, batch_size=1024)
    assert out.shape == (40, 2, 2)
    expected = predict_logits(group, x, batch_size=1024)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    np.testing.assert_array_equal(out[:, :, 1], expected)
    with pytest.raises(ConfigError, match="rate"):
        mc_dropout_logits(group, x, rate=1.0)
    with pytest.raises(ConfigError, match="passes"):
        mc_dropout_logits(group, x, passes=0)
    with pytest.raises(ConfigError, match="no dropout modules"):
        mc_dropout_logits(build_model("lr", spec, "small"), x)


# ------------------------------------------------------------------------- feature masking


def _train_split(spec: FeatureSpec) -> tuple[np.ndarray, dict[int, int]]:
    """Field a (offset 0): value local ids 2..9 seen 100, 80, 60, 40, 20, 10, 5, 0 times;
    OOV 22 times, missing 3 times (340 rows). Fields b, c: every value id equally often."""
    counts_a = {0: 22, 1: 3, 2: 100, 3: 80, 4: 60, 5: 40, 6: 20, 7: 10, 8: 5, 9: 0}
    col_a = np.concatenate([np.full(c, local) for local, c in counts_a.items()])
    n = col_a.size
    rng = np.random.default_rng(0)
    offsets = spec.offsets
    col_b = offsets[1] + rng.permutation(np.resize(np.arange(2, 6), n))
    col_c = offsets[2] + rng.permutation(np.resize(np.arange(2, 12), n))
    x = np.stack([rng.permutation(col_a), col_b, col_c], axis=1).astype(np.int32)
    return x, counts_a


def test_feature_frequencies_counts_global_ids(spec) -> None:
    x, counts_a = _train_split(spec)
    counts = feature_frequencies(x, spec)
    assert counts.shape == (spec.num_features,) and counts.dtype == np.int64
    assert [counts[local] for local in range(10)] == list(counts_a.values())
    assert counts.sum() == x.size
    bad = x.copy()
    bad[5, 1] = 3  # an id of field a in field b's column
    with pytest.raises(ConfigError, match="field 'b'"):
        feature_frequencies(bad, spec)


def test_frequency_mask_probabilities_follow_the_documented_rule(spec) -> None:
    x, _ = _train_split(spec)
    mask = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=0.5)
    assert isinstance(mask, FrequencyMask)
    # Field a: 8 values, k = 4 kept, c* = 40 (the 4th count); p = 1 - c / 40 below it.
    assert mask.threshold[0] == 40 and mask.kept[0] == 4
    np.testing.assert_allclose(mask.probability[:10], [0, 0, 0, 0, 0, 0, 0.5, 0.75, 0.875, 1.0])
    # Fields b and c: all counts tie, so every value is at the threshold and kept.
    assert not mask.probability[10:].any()
    np.testing.assert_array_equal(mask.target, np.repeat(spec.offsets, spec.vocab_sizes))
    half = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=0.5, strength=0.5)
    np.testing.assert_allclose(half.probability, mask.probability * 0.5)


def test_keep_fraction_1_is_the_identity(spec) -> None:
    x, _ = _train_split(spec)
    mask = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=1.0)
    assert mask.is_identity
    np.testing.assert_array_equal(masked_ids(x, mask, 0), x)
    model = _model(spec)
    out = feature_masking_logits(model, x[:50], mask, paths=2, batch_size=1024)
    expected = _eval_forward(model, x[:50])
    np.testing.assert_array_equal(out, np.stack([expected, expected], axis=1))


def test_keep_fraction_is_validated(spec) -> None:
    counts = np.zeros(spec.num_features, dtype=np.int64)
    for bad in (0.0, 1.5, -0.1, float("nan"), True, "0.9"):
        with pytest.raises(ConfigError, match="keep_fraction"):
            frequency_mask(counts, spec, keep_fraction=bad)
    with pytest.raises(ConfigError, match="counts"):
        frequency_mask(counts[:-1], spec)


def test_masking_touches_only_rare_ids_and_maps_them_to_their_fields_oov(spec) -> None:
    x, _ = _train_split(spec)
    mask = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=0.5)
    big = np.tile(x, (20, 1))  # every id many times
    out = masked_ids(big, mask, np.random.default_rng(7))
    assert out.dtype == big.dtype and out.shape == big.shape
    changed = out != big
    # Only field a has rare values (local 6..9, global 6..9); they go to field a's OOV id 0.
    assert not changed[:, 1:].any()
    assert set(np.unique(big[changed])) <= {6, 7, 8, 9}
    assert set(np.unique(out[changed])) == {0}
    assert not changed[np.isin(big[:, 0], [0, 1, 2, 3, 4, 5]), 0].any()  # OOV, missing, frequent
    assert changed[big[:, 0] == 9, 0].all()  # probability 1: unseen in training
    # The same seed gives the same mask; chunked draws equal one draw.
    np.testing.assert_array_equal(masked_ids(big, mask, 7), out)


def test_masking_rate_of_a_rare_id_matches_its_probability(spec) -> None:
    x, _ = _train_split(spec)
    mask = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=0.5)
    n = 4000
    rows = np.tile(np.array([[6, spec.offsets[1] + 2, spec.offsets[2] + 2]], dtype=np.int32), (n, 1))
    rows[n // 2 :, 0] = 7
    out = masked_ids(rows, mask, np.random.default_rng(2024))
    for gid, p in ((6, 0.5), (7, 0.75)):
        sel = rows[:, 0] == gid
        k = int((out[sel, 0] == 0).sum())
        assert binomtest(k, int(sel.sum()), p).pvalue > 1e-4, (gid, k)


def test_feature_masking_logits_are_reproducible_and_restore_the_model(spec) -> None:
    x, _ = _train_split(spec)
    mask = frequency_mask(feature_frequencies(x, spec), spec, keep_fraction=0.5)
    model = _model(spec, dropout=0.2)
    model.train()
    a = feature_masking_logits(model, x, mask, paths=3, seed=5, batch_size=64)
    b = feature_masking_logits(model, x, mask, paths=3, seed=5, batch_size=1024)
    assert a.shape == (x.shape[0], 3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # masks do not depend on the batch size
    assert not np.array_equal(a[:, 0], a[:, 1])
    assert all(m.training for m in model.modules())
    with pytest.raises(ConfigError, match="vocabulary sizes"):
        feature_masking_logits(model, x, frequency_mask(np.zeros(30, np.int64), FeatureSpec(("z",), (30,))))


def test_merge_passes_is_the_mean_probability() -> None:
    logits = np.array([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]])
    sig = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(merge_passes(logits), sig.mean(axis=1))
    np.testing.assert_allclose(merge_passes(logits[:, None, :].repeat(2, 1)), np.stack([sig.mean(1)] * 2, 1))
    with pytest.raises(ConfigError, match="passes"):
        merge_passes(np.zeros(4))


# ----------------------------------------------------------------------------- overlap area


def test_overlap_area_by_hand() -> None:
    p = np.array([0.1, 0.4, 0.7, 0.95])
    assert overlap_area(np.concatenate([p, p]), np.repeat([1, 0], 4)) == pytest.approx(1.0)
    disjoint = np.array([0.05, 0.1, 0.15, 0.8, 0.9, 1.0])
    assert overlap_area(disjoint, [0, 0, 0, 1, 1, 1]) == 0.0
    # bins [0, .5), [.5, 1]: positives 1/4, 3/4; negatives 2/3, 1/3 -> 1/4 + 1/3.
    probs = np.array([0.1, 0.6, 0.7, 0.9, 0.2, 0.3, 0.8])
    labels = np.array([1, 1, 1, 1, 0, 0, 0])
    assert overlap_area(probs, labels, bins=2) == pytest.approx(7 / 12)
    assert overlap_area(probs, labels, bins=1) == pytest.approx(1.0)


def test_overlap_area_errors() -> None:
    with pytest.raises(ValueError, match="one class"):
        overlap_area(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="rows"):
        overlap_area(np.array([0.1, 0.2, 0.3]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        overlap_area(np.array([-0.5, 2.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="bins"):
        overlap_area(np.array([0.1, 0.2]), np.array([0, 1]), bins=0)


# ---------------------------------------------------------------------------- source matrix


def _sources(n: int = 400):
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.3).astype(np.float32)
    base = 1.5 * y + rng.normal(0, 1, n)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    return {
        "Naive": sig(base - 1),
        "Naive+MC": sig(base - 1 + rng.normal(0, 0.05, n)),  # near-identical to Naive
        "DP": sig(1.5 * y + rng.normal(0, 1, n) - 1),  # another "training run": diverse
    }, y


def test_source_matrix_pairs_symmetry_and_diagonal() -> None:
    sources, y = _sources()
    df = source_matrix(sources, y)
    names = list(sources)
    assert len(df) == 9
    assert list(zip(df.source_i, df.source_j)) == [(a, b) for a in names for b in names]
    r = df.set_index(["source_i", "source_j"])
    for a in names:
        for b in names:
            assert r.loc[(a, b), "correlation"] == pytest.approx(r.loc[(b, a), "correlation"])
            assert r.loc[(a, b), "auc_merged"] == r.loc[(b, a), "auc_merged"]
        d = r.loc[(a, a)]
        assert d.correlation == pytest.approx(1.0)
        assert d.auc_merged == d.auc_i == pytest.approx(roc_auc(y, sources[a]))
        assert d.auc_gain == 0.0 and d.overlap_change == 0.0
        assert d.overlap_i == overlap_area(sources[a], y)
    logit = {k: np.log(v / (1 - v)) for k, v in sources.items()}
    assert r.loc[("Naive", "DP"), "correlation"] == pytest.approx(np.corrcoef(logit["Naive"], logit["DP"])[0, 1])
    assert r.loc[("Naive", "Naive+MC"), "correlation"] > 0.99 > r.loc[("Naive", "DP"), "correlation"]
    merged = (sources["Naive"] + sources["DP"]) / 2
    row = r.loc[("Naive", "DP")]
    assert row.auc_merged == pytest.approx(roc_auc(y, merged))
    assert row.auc_gain == pytest.approx(row.auc_merged - max(row.auc_i, row.auc_j))
    assert row.overlap_change == pytest.approx(overlap_area(merged, y) - min(row.overlap_i, row.overlap_j))

    wide = source_matrix_wide(df)
    assert list(wide.index) == list(wide.columns) == names
    assert wide.loc["Naive", "Naive"] == r.loc[("Naive", "Naive"), "overlap_i"]
    assert wide.loc["Naive", "DP"] == r.loc[("Naive", "DP"), "correlation"]
    assert wide.loc["DP", "Naive"] == r.loc[("DP", "Naive"), "overlap_change"]
    gain = source_matrix_wide(df, "auc_gain")
    np.testing.assert_allclose(gain.to_numpy(), gain.to_numpy().T)
    with pytest.raises(ConfigError, match="unknown value"):
        source_matrix_wide(df, "nope")
    with pytest.raises(ConfigError, match="probabilities"):
        source_matrix({"logits": np.array([-1.0, 2.0])}, np.array([0, 1]))
