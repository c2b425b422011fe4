"""The synthetic click-log generator: format, determinism, base rate, planted signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from ttsctr.data.readers import detect_compression, get_reader, synthetic_sidecar_paths
from ttsctr.data.synthetic import bayes_optimal_auc, generate_synthetic
from ttsctr.errors import ConfigError

N_BIG = 40_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("synbig") / "s.txt"
    summary = generate_synthetic(path, n_rows=N_BIG, seed=0)
    return path, summary


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
    assert distinct[0] <= 4 and distinct[-1] > 5_000  # tens .. ~10^5 values
    assert sum(d < 100 for d in distinct) >= 5 and sum(d > 1000 for d in distinct) >= 8
    # Zipf-like: the most frequent C3 value is far more common than the median one
    vc = np.sort(pc.value_counts(t.column("C3")).field("counts").to_numpy())[::-1]
    assert vc[0] > 50 * np.median(vc)


def test_base_rate_and_bayes_auc(big) -> None:
    path, s = big
    assert s.n_rows == N_BIG and s.seed == 0
    assert s.base_rate == pytest.approx(0.25, abs=0.012)
    assert s.mean_true_prob == pytest.approx(0.25, abs=0.01)
    assert 0.80 <= s.bayes_auc <= 0.87
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
    assert meta["generator"]["noise_fields"] == ["I12", "C7", "C13", "C20"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.txt", "s.txt.meta.json", "s.txt.proba.npy"]


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
