"""The synthetic click-log generator: format, determinism, base rate, planted signal.

The planted-signal tests check the properties that make the default log useful for test-time
scaling: most of the signal is in field interactions that a linear model cannot represent, those
interactions are learnable from the rows, and values too rare to learn carry almost none of it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from ttsctr.data.readers import detect_compression, get_reader, synthetic_sidecar_paths
from ttsctr.data.synthetic import (
    COMPONENT_STD,
    GENERATOR_VERSION,
    INTERACTION_MAX_CARD,
    NOISE_FIELDS,
    PlantedModel,
    bayes_optimal_auc,
    generate_synthetic,
    planted_model,
)
from ttsctr.errors import ConfigError

N_BIG = 40_000
N_PLANTED = 150_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("synbig") / "s.txt"
    summary = generate_synthetic(path, n_rows=N_BIG, seed=0)
    return path, summary


@pytest.fixture(scope="module")
def planted():
    """Seed 0's planted model and 150k of its rows (row indices far from those of the files)."""
    model = planted_model(0)
    r = model.rows(np.arange(10**9, 10**9 + N_PLANTED, dtype=np.uint64))
    p = model.probability(r)
    return model, r, p, r["u_label"] < p


def test_deterministic_and_independent_of_chunk_size(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a.txt", n_rows=3000, seed=11, chunk_rows=1000)
    b = generate_synthetic(tmp_path / "b.txt", n_rows=3000, seed=11, chunk_rows=777)
    prefix = generate_synthetic(tmp_path / "p.txt", n_rows=1000, seed=11, chunk_rows=4096)
    other = generate_synthetic(tmp_path / "o.txt", n_rows=3000, seed=12)
    data_a = (tmp_path / "a.txt").read_bytes()
    assert data_a == (tmp_path / "b.txt").read_bytes()
    np.testing.assert_array_equal(np.load(a.proba_path), np.load(b.proba_path))
    assert a.positives == b.positives and a.bayes_auc == b.bayes_auc
    # the first rows do not depend on n_rows
    first_1000 = b"".join(data_a.splitlines(keepends=True)[:1000])
    assert (tmp_path / "p.txt").read_bytes() == first_1000
    np.testing.assert_array_equal(np.load(prefix.proba_path), np.load(a.proba_path)[:1000])
    assert (tmp_path / "o.txt").read_bytes() != data_a and other.seed == 12


def test_criteo_format_values_missing_and_cardinalities(big) -> None:
    path, _ = big
    t = get_reader("criteo").read_all(path)  # parses as plain Criteo
    assert t.num_rows == N_BIG
    assert set(pc.unique(t.column("label")).to_pylist()) == {0, 1}
    for i in range(1, 27):
        lengths = pc.utf8_length(pc.drop_null(t.column(f"C{i}")))
        assert pc.min(lengths).as_py() == 8 == pc.max(lengths).as_py()
        assert pc.all(pc.match_substring_regex(pc.drop_null(t.column(f"C{i}")), "^[0-9a-f]{8}$")).as_py()
    missing = {n: t.column(n).null_count / N_BIG for n in ("I1", "I2", "I12", "C22", "C1")}
    assert missing["I1"] == pytest.approx(0.45, abs=0.02) and missing["I12"] == pytest.approx(0.78, abs=0.02)
    assert missing["I2"] == 0 and missing["C1"] == 0 and missing["C22"] == pytest.approx(0.76, abs=0.02)
    assert pc.min(t.column("I2")).as_py() == -1 and pc.max(t.column("I5")).as_py() > 10_000
    distinct = sorted(pc.count_distinct(t.column(f"C{i}")).as_py() for i in range(1, 27))
    assert distinct[0] <= 4 and distinct[-1] > 5_000  # a few .. thousands of values in 40k rows
    assert sum(d < 100 for d in distinct) >= 5 and sum(d > 1000 for d in distinct) >= 12
    # high-cardinality fields: a frequent head (the top value far above the median one) and a
    # long tail of values seen once, like Criteo's
    for name in ("C3", "C12", "C16", "C21"):
        counts = np.sort(pc.value_counts(pc.drop_null(t.column(name))).field("counts").to_numpy())[::-1]
        present = counts.sum()
        assert counts[0] > 100 * np.median(counts), name
        assert (counts == 1).sum() > 2_000, name  # thousands of singletons
        head = counts[counts >= 10]
        assert 20 <= len(head) <= 400 and 0.65 < head.sum() / present < 0.95, (name, len(head), head.sum() / present)


def test_base_rate_and_bayes_auc(big) -> None:
    path, s = big
    assert s.n_rows == N_BIG and s.seed == 0
    assert s.base_rate == pytest.approx(0.25, abs=0.012)
    assert s.mean_true_prob == pytest.approx(0.25, abs=0.01)
    assert 0.82 <= s.bayes_auc <= 0.87
    proba = np.load(s.proba_path)
    labels = get_reader("criteo").read_all(path).column("label").to_numpy()
    assert s.bayes_auc == pytest.approx(bayes_optimal_auc(labels, proba))
    # calibrated: within probability deciles the click rate matches the mean probability
    edges = np.quantile(proba, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, 9)
    for b in range(10):
        sel = bins == b
        assert labels[sel].mean() == pytest.approx(proba[sel].mean(), abs=0.03)


def test_sidecar_format_and_metadata(big) -> None:
    path, s = big
    proba_path, meta_path = synthetic_sidecar_paths(path)
    assert Path(s.proba_path) == proba_path and Path(s.meta_path) == meta_path
    proba = np.load(proba_path)
    assert proba.dtype == np.float32 and proba.shape == (N_BIG,)
    assert 0 < proba.min() and proba.max() < 1
    meta = json.loads(meta_path.read_text())
    assert meta["seed"] == 0 and meta["n_rows"] == N_BIG and meta["positives"] == s.positives
    assert meta["bayes_auc"] == pytest.approx(s.bayes_auc) and meta["component_std"] == COMPONENT_STD
    gen = meta["generator"]
    assert gen["version"] == GENERATOR_VERSION == 2
    assert gen["noise_fields"] == ["I12", "C7", "C13", "C20"]
    assert not set(gen["noise_fields"]) & set(gen["interaction_fields"])
    assert gen["pairs"] >= 20 and len(gen["higher_order_groups"]) >= 4
    assert all(len(g) == 3 and set(g) <= set(gen["interaction_fields"]) for g in gen["higher_order_groups"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.txt", "s.txt.meta.json", "s.txt.proba.npy"]


def test_planted_model_depends_only_on_the_seed() -> None:
    fresh, cached, other = PlantedModel(0), planted_model(0), planted_model(1)
    assert fresh is not cached and fresh.bias == cached.bias and fresh.scales == cached.scales
    for a, b in zip(fresh.w + fresh.u + fresh.t, cached.w + cached.u + cached.t):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.R, cached.R)
    assert not np.array_equal(other.R, cached.R) and other.bias != cached.bias
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ConfigError):
            PlantedModel(bad)


def _ridge_additive_fit(model: PlantedModel, idx: list[np.ndarray], target: np.ndarray, lam: float = 20.0) -> list[np.ndarray]:
    """Best additive (one effect per field value) fit of ``target`` by ridge backfitting."""
    tables = [np.zeros(len(pmf)) for pmf in model.table_pmf]
    resid = target - target.mean()
    for _ in range(6):
        for j, ix in enumerate(idx):
            resid += tables[j][ix]
            tables[j] = np.bincount(ix, weights=resid, minlength=len(tables[j])) / (np.bincount(ix, minlength=len(tables[j])) + lam)
            resid -= tables[j][ix]
    return tables


def test_signal_is_mostly_interactions_that_a_linear_model_misses(planted) -> None:
    model, r, p, y = planted
    parts = model.logit_parts(r)
    for name, std in COMPONENT_STD.items():
        assert np.std(parts[name]) == pytest.approx(std, rel=0.05), name
    assert COMPONENT_STD["pairwise"] + COMPONENT_STD["higher_order"] > 2 * COMPONENT_STD["first_order"]
    bayes = bayes_optimal_auc(y, p)
    assert 0.82 < bayes < 0.87
    # the best additive approximation of the true logit (fitted on 100k rows, scored on the other
    # 50k) is far below the Bayes AUC: a linear model on one-hot ids cannot get close
    logit = np.log(p / (1 - p))
    idx = model.table_index(r)
    fit, held = slice(0, 100_000), slice(100_000, None)
    tables = _ridge_additive_fit(model, [ix[fit] for ix in idx], logit[fit])
    additive = sum(t[ix[held]] for t, ix in zip(tables, idx))
    additive_auc = bayes_optimal_auc(y[held], additive)
    first_auc = bayes_optimal_auc(y[held], parts["first_order"][held])
    assert first_auc + 0.01 < additive_auc < bayes_optimal_auc(y[held], p[held]) - 0.12, (first_auc, additive_auc)
    # each interaction part alone is informative, and adding them to the first-order part helps
    for name in ("pairwise", "higher_order"):
        assert bayes_optimal_auc(y, parts[name]) > 0.6, name
    with_pairs = bayes_optimal_auc(y, parts["first_order"] + parts["pairwise"])
    assert bayes_optimal_auc(y, parts["first_order"]) + 0.1 < with_pairs < bayes - 0.02
    # noise fields have no effect at all; interactions only involve fields of moderate cardinality
    for j, name in enumerate(model.field_names):
        if name in NOISE_FIELDS:
            assert not model.w[j].any() and not model.u[j].any() and not model.t[j].any() and not model.active[j]
    cat = {n: c for n, c in zip(model.field_names[13:], model.cat_head)}
    for j in np.flatnonzero(model.active):
        name = model.field_names[j]
        assert name.startswith("I") or len(model.table_pmf[j]) - 1 <= INTERACTION_MAX_CARD, name
        assert name.startswith("I") or cat[name] <= 300
    assert model.R[~model.active].sum() == 0 and np.count_nonzero(np.triu(model.R)) >= 20


def test_interactions_are_learnable_from_the_rows(planted) -> None:
    """On 30k rows a logistic regression with crosses of the planted field pairs and groups beats
    plain one-hot logistic regression by a wide margin on 15k held-out rows."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    model, r, _, y = planted
    n_fit, n_all = 30_000, 45_000
    idx = [ix[:n_all].astype(np.int64) for ix in model.table_index(r)]
    y = y[:n_all]

    def one_hot(columns: list[np.ndarray]) -> sp.csr_matrix:  # values seen < 10 times in the fit rows -> one OOV id
        ids, offset = [], 0
        for col in columns:
            values, inverse = np.unique(col, return_inverse=True)
            kept = np.bincount(inverse[:n_fit], minlength=len(values)) >= 10
            local = np.where(kept, np.cumsum(kept), 0)
            ids.append(local[inverse] + offset)
            offset += int(kept.sum()) + 1
        x = np.stack(ids, axis=1)
        return sp.csr_matrix((np.ones(x.size), x.ravel(), np.arange(0, x.size + 1, x.shape[1])), shape=(n_all, offset))

    pairs = [idx[a] * 1_000_003 + idx[b] for a, b in zip(*np.nonzero(np.triu(model.R)))]
    groups = [(idx[a] * 1_000_003 + idx[b]) * 1_000_003 + idx[c] for a, b, c in model.groups]
    plain = one_hot(idx)
    crossed = sp.hstack([plain, one_hot(pairs + groups)]).tocsr()
    aucs = {}
    for name, x in (("plain", plain), ("crossed", crossed)):
        lr = LogisticRegression(C=0.1, max_iter=300).fit(x[:n_fit], y[:n_fit])
        aucs[name] = bayes_optimal_auc(y[n_fit:], lr.decision_function(x[n_fit:]))
    assert aucs["plain"] > 0.62, aucs  # a real first-order part
    assert aucs["crossed"] > aucs["plain"] + 0.04, aucs


def test_rare_values_carry_little_signal(planted) -> None:
    model, r, p, y = planted
    # values expected fewer than 10 times in 100k rows
    rare = [np.zeros(len(pmf), bool) if j < 13 else pmf < 1e-4 for j, pmf in enumerate(model.table_pmf)]
    idx = model.table_index(r)
    rows_with_rare = np.zeros(len(y), bool)
    for j in range(13, 39):
        rows_with_rare |= rare[j][idx[j]]
    assert rows_with_rare.mean() > 0.5  # the long tails are there: most rows hold a rare value ...
    stripped = copy.copy(model)  # the same model without any effect of the rare values
    stripped.w = [np.where(k, 0, w) for w, k in zip(model.w, rare)]
    stripped.u = [np.where(k[:, None], 0, u) for u, k in zip(model.u, rare)]
    stripped.t = [np.where(k, 0, t) for t, k in zip(model.t, rare)]
    p_stripped = stripped.probability(r)
    logit, logit_stripped = np.log(p / (1 - p)), np.log(p_stripped / (1 - p_stripped))
    # ... but removing every effect of every rare value changes almost nothing
    assert np.var(logit - logit_stripped) < 0.005 * np.var(logit)
    assert bayes_optimal_auc(y, p_stripped) == pytest.approx(bayes_optimal_auc(y, p), abs=0.002)
    # and the interaction latents of the interaction fields sit on values seen >= 100 times per 100k rows
    for j in np.flatnonzero(model.active[13:]) + 13:
        pmf, energy = model.table_pmf[j], (model.u[j] ** 2).sum(axis=1) + model.t[j] ** 2
        assert (pmf * energy)[pmf >= 1e-3].sum() > 0.85 * (pmf * energy).sum(), model.field_names[j]


def test_bayes_optimal_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.round(rng.random(400) * 0.5 + 0.3 * y, 1)  # many ties
    pos, neg = p[y == 1], p[y == 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert bayes_optimal_auc(y, p) == pytest.approx(brute)
    assert np.isnan(bayes_optimal_auc(np.zeros(5), np.arange(5)))


def test_gzip_output_and_bad_arguments(tmp_path: Path) -> None:
    s = generate_synthetic(tmp_path / "g.txt.gz", n_rows=300, seed=2)
    assert detect_compression(tmp_path / "g.txt.gz") == "gzip"
    t = get_reader("synthetic").read_all(tmp_path / "g.txt.gz")
    assert t.num_rows == 300 and int(np.asarray(t.column("label")).sum()) == s.positives
    for kwargs in ({"n_rows": 0}, {"n_rows": 10, "chunk_rows": 0}, {"n_rows": 10, "seed": "x"}):
        with pytest.raises(ConfigError):
            generate_synthetic(tmp_path / "bad.txt", **kwargs)
    assert not (tmp_path / "bad.txt").exists() and not list(tmp_path.glob(".bad*"))
