"""Synthetic Criteo-format click logs with a known (planted) click probability per row.

``generate_synthetic(path, n_rows, seed)`` writes

* ``path``: a Criteo ``train.txt``-format file (TAB, no header, ``label, I1..I13, C1..C26``;
  gzip-compressed when ``path`` ends in ``.gz``), read back by the ``synthetic`` reader;
* ``<path>.proba.npy``: float32 ``.npy`` array of shape ``(n_rows,)``, the true click
  probability of row ``i`` (the label of row ``i`` was drawn as ``u_i < proba[i]``);
* ``<path>.meta.json``: generator parameters and summary (seed, rows, base rate, Bayes AUC).

Each file is written to a temporary sibling and renamed into place (sidecars first, the
data file last).

The planted model (all parameters drawn from ``seed``):

* 13 numeric fields: log-normal counts (some zero-heavy, ``I2`` also ``-1``), Criteo-like
  missing rates; their effects are smooth random functions of the OptFS token
  ``floor(ln(x)^2)``, so the true probability depends on ``x`` only through its token;
* 26 categorical fields: Zipf-like value frequencies with cardinalities from 3 to 100 000,
  values rendered as distinct 8-hex-digit strings, Criteo-like missing rates;
* a hidden row "context" (8 clusters) shifts which values are popular in about half of the
  fields, so fields are correlated; it has no direct effect on the label;
* ``logit = bias + a * sum_j w_j[v_j]                          (first order, every field)
  + b * sum_{i<j} R_ij <u_i[v_i], u_j[v_j]>                    (FM-style pairs, 4-d latents)
  + c * sum_t s_t sum_d u_a[v_a]_d u_b[v_b]_d u_c[v_c]_d``      (10 three-way terms)
  Pairs and triples involve only the numeric fields and the categorical fields with at most
  700 values (15% of those field pairs are active, strengths U(0.5, 1.5)); latent vectors are
  centred under the value distribution, so interactions have no additive part a linear model
  could pick up. Effects of categorical values shrink with their frequency (factor
  ``sqrt(m / (m + 10))``, ``m`` = expected count in 160 000 rows), so very rare values carry
  little signal. ``a, b, c`` scale the three parts to standard deviations 0.9 / 1.2 / 0.7 on
  a 131 072-row calibration sample and ``bias`` is solved there for a mean probability of 0.25;
* fields ``I12, C7, C13, C20`` carry no signal (noise fields);
* ``label ~ Bernoulli(sigmoid(logit))``: the label noise is the Bernoulli draw, so ``proba``
  is exactly ``P(y = 1 | all raw fields)`` and its AUC is the Bayes-optimal AUC
  (0.835 for the default 200 000 rows, seed 0).

Measured at the default 200 000 rows (seed 0, OptFS preprocessing min_count 10, 80/10/10,
test AUC, CPU, Adam 1e-3, batch 512, early stopping): logistic regression 0.654, FM 0.663,
DeepFM (16-d, 400-400 MLP) 0.698-0.703, mean of 3 DeepFM seeds 0.708, Bayes 0.836.

Determinism: every random number of row ``i`` comes from ``splitmix64(key(seed) ^ i)``
(counter-based), so the output depends only on ``seed`` and ``n_rows`` -- never on
``chunk_rows`` -- and the first ``m`` rows are the same for every ``n_rows >= m``.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.special import ndtri

from ttsctr.data.io import atomic_file
from ttsctr.data.preprocess import _mix64, _mix64_scalar, _to_unit, numeric_tokens
from ttsctr.data.progress import progress_bar
from ttsctr.data.readers import CRITEO_CATEGORICAL, CRITEO_NUMERIC, synthetic_sidecar_paths
from ttsctr.errors import ConfigError

__all__ = ["generate_synthetic", "SyntheticSummary", "PlantedModel", "planted_model", "bayes_optimal_auc", "BASE_RATE"]

BASE_RATE = 0.25
LATENT_DIM = 4
N_CLUSTERS = 8
NOISE_FIELDS = ("I12", "C7", "C13", "C20")
COMPONENT_STD = {"first_order": 0.9, "pairwise": 1.2, "three_way": 0.7}
PAIR_DENSITY = 0.15
N_TRIPLES = 10
CENTER_LATENTS = True
SHRINK_RARE = True
SHRINK_ROWS = 160_000
SHRINK_COUNT = 10.0
INTERACTION_MAX_CARD = 700  # only fields with at most this many values take part in interactions
CALIBRATION_ROWS = 1 << 17
_NUM_TOKEN_CAP = 253  # planted tables cover tokens -1..253 (+ missing)

CAT_CARDINALITY = (
    1460, 583, 100_000, 60_000, 305, 24, 12_517, 633, 3, 93_145, 5_683, 100_000, 3_194,
    27, 14_992, 100_000, 10, 5_652, 2_173, 4, 100_000, 18, 15, 50_000, 105, 40_000,
)  # fmt: skip
CAT_MISSING = (
    0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0,
    0.0, 0.0, 0.03, 0.0, 0.0, 0.44, 0.44, 0.0, 0.76, 0.0, 0.03, 0.44, 0.44,
)  # fmt: skip
NUM_MISSING = (0.45, 0.0, 0.2, 0.2, 0.03, 0.25, 0.04, 0.0, 0.04, 0.45, 0.04, 0.78, 0.2)
NUM_LOGNORMAL = (  # (mu, sigma) of log(x + 1)
    (0.5, 1.2), (2.0, 2.0), (2.5, 1.5), (1.8, 1.0), (7.0, 2.5), (3.5, 2.0), (1.5, 1.5),
    (2.0, 1.0), (4.0, 1.5), (0.0, 0.6), (1.0, 1.0), (0.0, 1.0), (1.8, 1.0),
)  # fmt: skip
I2_NEGATIVE = 0.1

# per-row random slots (counter-based uniforms)
_SLOT_LABEL = 0
_SLOT_CLUSTER = 1
_SLOT_VALUE = 2  # + field index (39)
_SLOT_MISSING = 2 + 39  # + field index (39)
_SLOT_NEGATIVE = 2 + 78


def bayes_optimal_auc(labels: np.ndarray, true_prob: np.ndarray) -> float:
    """ROC AUC of ``true_prob`` against ``labels`` (ties get half credit)."""
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool).ravel()
    p = np.asarray(true_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ConfigError(f"bayes_optimal_auc: {y.shape[0]} labels but {p.shape[0]} probabilities")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p, method="average")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _hex8(codes: np.ndarray) -> pa.Array:
    """uint32 codes -> string array of 8 lower-case hex digits."""
    codes = codes.astype(np.uint32)
    shifts = np.arange(28, -1, -4, dtype=np.uint32)
    nib = (codes[:, None] >> shifts) & np.uint32(0xF)
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[nib]
    n = len(codes)
    offsets = np.arange(0, 8 * n + 1, 8, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes()))


def _fmix32(x: np.ndarray) -> np.ndarray:
    """murmur3 32-bit finaliser: a bijection of uint32 (distinct inputs -> distinct codes)."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def _smooth(rng: np.random.Generator, n: int, dims: int | None = None) -> np.ndarray:
    """A random smooth function on ``0..n-1`` (random walk, standardised)."""
    shape = (n,) if dims is None else (n, dims)
    walk = np.cumsum(rng.normal(size=shape), axis=0)
    walk -= walk.mean(axis=0)
    return walk / (walk.std(axis=0) + 1e-12)


class PlantedModel:
    """The data-generating process for one seed (parameters only; rows come from :meth:`rows`)."""

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"synthetic: seed must be an integer >= 0, not {seed!r}")
        self.seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5E7A]))
        self.field_names = CRITEO_NUMERIC + CRITEO_CATEGORICAL
        F = len(self.field_names)
        k = LATENT_DIM
        self.cluster_cdf = np.cumsum(rng.dirichlet(np.full(N_CLUSTERS, 2.0)))
        self.cluster_cdf[-1] = 1.0
        correlated = rng.random(F) < 0.5
        # numeric fields
        self.num_shift = rng.normal(0, 0.7, size=(N_CLUSTERS, 13)) * correlated[None, :13]
        self.num_shift[0] = 0
        # categorical fields: Zipf CDFs, cluster shifts, value codes
        self.cat_cdf, self.cat_shift, self.cat_salt = [], [], []
        for j, card in enumerate(CAT_CARDINALITY):
            s = rng.uniform(1.05, 1.35) if card >= 1000 else rng.uniform(0.3, 1.0)
            q = rng.uniform(1.0, 8.0)
            w = (np.arange(card) + q) ** -s
            cdf = np.cumsum(w / w.sum())
            cdf[-1] = 1.0
            self.cat_cdf.append(cdf)
            shift = rng.integers(0, card, size=N_CLUSTERS) * bool(correlated[13 + j])
            shift[0] = 0
            self.cat_shift.append(shift)
            self.cat_salt.append(np.uint32(rng.integers(0, 2**32)))
        # planted effects: tables indexed by value (categorical) or clipped token (numeric), last row = missing
        self.w: list[np.ndarray] = []
        self.u: list[np.ndarray] = []
        for j, name in enumerate(self.field_names):
            a, b = rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)
            if name in NOISE_FIELDS:
                a = b = 0.0
            if j < 13:
                size = _NUM_TOKEN_CAP + 3  # tokens -1.._NUM_TOKEN_CAP, then missing
                w = _smooth(rng, size) * a
                w[-1] = rng.normal() * a
                u = _smooth(rng, size, k) * (b / np.sqrt(k))
                u[-1] = rng.normal(size=k) * (b / np.sqrt(k))
            else:
                size = CAT_CARDINALITY[j - 13] + 1
                w = rng.normal(size=size) * a
                u = rng.normal(size=(size, k)) * (b / np.sqrt(k))
                if SHRINK_RARE:  # effects fade for values expected < ~SHRINK_COUNT times in SHRINK_ROWS rows
                    m = np.append(self.value_pmf(j - 13), 1.0) * SHRINK_ROWS
                    shrink = np.sqrt(m / (m + SHRINK_COUNT))
                    w *= shrink
                    u *= shrink[:, None]
            self.w.append(w.astype(np.float32))
            self.u.append(u.astype(np.float32))
        cards = np.array([_NUM_TOKEN_CAP + 2] * 13 + list(CAT_CARDINALITY))
        active = np.array([n not in NOISE_FIELDS for n in self.field_names]) & (cards <= INTERACTION_MAX_CARD)
        R = np.triu((rng.random((F, F)) < PAIR_DENSITY) * rng.uniform(0.5, 1.5, size=(F, F)), 1)
        R *= active[:, None] & active[None, :]
        self.R = (R + R.T).astype(np.float32)
        act_idx = np.flatnonzero(active)
        self.triples = np.array([rng.choice(act_idx, size=3, replace=False) for _ in range(N_TRIPLES)])
        self.triple_s = (rng.choice([-1.0, 1.0], size=N_TRIPLES) * rng.uniform(0.5, 1.0, size=N_TRIPLES)).astype(np.float32)
        self.key = np.uint64(_mix64_scalar(self.seed * 0x2545F4914F6CDD1D + 0x1234567))
        self.cal_key = np.uint64(_mix64_scalar(self.seed * 0x2545F4914F6CDD1D + 0x7654321))
        self.slot_keys = _mix64(np.arange(1, 128, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        self.vocab = [_hex8(_fmix32(np.arange(card, dtype=np.uint32) + self.cat_salt[j])) for j, card in enumerate(CAT_CARDINALITY)]
        # calibration: scale the three parts, then solve the bias for the base rate
        cal = self.rows(np.arange(CALIBRATION_ROWS, dtype=np.uint64), key=self.cal_key)
        if CENTER_LATENTS:  # no marginal (additive) part in the interactions: only models of interactions see them
            for j, ix in enumerate(self._table_index(cal)):
                self.u[j] -= self.u[j][ix].mean(axis=0, dtype=np.float64).astype(np.float32)
        parts = self._components(cal)
        self.scales = {name: COMPONENT_STD[name] / max(float(np.std(parts[name])), 1e-9) for name in COMPONENT_STD}
        z = sum(self.scales[n] * parts[n].astype(np.float64) for n in COMPONENT_STD)
        self.bias = self._solve_bias(z, BASE_RATE)

    def value_pmf(self, j: int) -> np.ndarray:
        """Marginal probability of each value of categorical field ``j`` (0-based, C1 = 0), given present."""
        cdf = self.cat_cdf[j]
        pmf = np.diff(cdf, prepend=0.0)
        out = np.zeros_like(pmf)
        probs = np.diff(self.cluster_cdf, prepend=0.0)
        for c in range(N_CLUSTERS):
            out += probs[c] * np.roll(pmf, int(self.cat_shift[j][c]))
        return out

    @staticmethod
    def _solve_bias(z: np.ndarray, target: float) -> float:
        lo, hi = -20.0, 20.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if np.mean(1.0 / (1.0 + np.exp(-(z + mid)))) < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    # ---- rows ----
    def rows(self, rows: np.ndarray, key: np.uint64 | None = None) -> dict[str, Any]:
        """Raw values of the given global row indices: numeric int64 + missing masks, categorical value indices + masks."""
        key = self.key if key is None else key
        base = _mix64(rows.astype(np.uint64) ^ key)

        def uni(slot: int) -> np.ndarray:
            return _to_unit(_mix64(base ^ self.slot_keys[slot]))

        n = len(rows)
        cluster = np.searchsorted(self.cluster_cdf, uni(_SLOT_CLUSTER), side="right").clip(0, N_CLUSTERS - 1)
        num = np.empty((n, 13), np.int64)
        num_missing = np.empty((n, 13), bool)
        for j, (mu, sigma) in enumerate(NUM_LOGNORMAL):
            z = ndtri(np.clip(uni(_SLOT_VALUE + j), 1e-12, 1 - 1e-12))
            num[:, j] = np.floor(np.exp(np.minimum(mu + self.num_shift[cluster, j] + sigma * z, 40.0))).astype(np.int64) - 1
            num_missing[:, j] = uni(_SLOT_MISSING + j) < NUM_MISSING[j]
        neg = uni(_SLOT_NEGATIVE) < I2_NEGATIVE
        num[neg, 1] = -1
        cat = np.empty((n, 26), np.int64)
        cat_missing = np.empty((n, 26), bool)
        for j, card in enumerate(CAT_CARDINALITY):
            rank = np.searchsorted(self.cat_cdf[j], uni(_SLOT_VALUE + 13 + j), side="right").clip(0, card - 1)
            cat[:, j] = (rank + self.cat_shift[j][cluster]) % card
            cat_missing[:, j] = uni(_SLOT_MISSING + 13 + j) < CAT_MISSING[j]
        return {"num": num, "num_missing": num_missing, "cat": cat, "cat_missing": cat_missing, "u_label": uni(_SLOT_LABEL)}

    def _table_index(self, r: dict[str, Any]) -> list[np.ndarray]:
        idx = []
        for j in range(13):
            tok = np.clip(numeric_tokens(r["num"][:, j]), -1, _NUM_TOKEN_CAP) + 1
            idx.append(np.where(r["num_missing"][:, j], _NUM_TOKEN_CAP + 2, tok))
        for j, card in enumerate(CAT_CARDINALITY):
            idx.append(np.where(r["cat_missing"][:, j], card, r["cat"][:, j]))
        return idx

    def _components(self, r: dict[str, Any]) -> dict[str, np.ndarray]:
        idx = self._table_index(r)
        n = len(idx[0])
        first = np.zeros(n, np.float32)
        U = np.empty((n, len(idx), LATENT_DIM), np.float32)
        for j, ix in enumerate(idx):
            first += self.w[j][ix]
            U[:, j, :] = self.u[j][ix]
        Ut = U.transpose(0, 2, 1)  # (n, k, F)
        pair = 0.5 * np.einsum("nkf,nkf->n", Ut, Ut @ self.R)
        three = np.zeros(n, np.float32)
        for (a, b, c), s in zip(self.triples, self.triple_s):
            three += s * np.einsum("nk,nk,nk->n", U[:, a], U[:, b], U[:, c])
        return {"first_order": first, "pairwise": pair.astype(np.float32), "three_way": three}

    def probability(self, r: dict[str, Any]) -> np.ndarray:
        parts = self._components(r)
        z = self.bias + sum(self.scales[n] * parts[n].astype(np.float64) for n in COMPONENT_STD)
        return 1.0 / (1.0 + np.exp(-z))

    def table(self, r: dict[str, Any], label: np.ndarray) -> pa.Table:
        cols: dict[str, pa.Array] = {"label": pa.array(label.astype(np.int8))}
        for j, name in enumerate(CRITEO_NUMERIC):
            cols[name] = pa.array(r["num"][:, j], pa.int64(), mask=r["num_missing"][:, j])
        for j, name in enumerate(CRITEO_CATEGORICAL):
            cols[name] = self.vocab[j].take(pa.array(r["cat"][:, j], mask=r["cat_missing"][:, j]))
        return pa.table(cols)


@functools.lru_cache(maxsize=4)
def planted_model(seed: int) -> PlantedModel:
    """The (cached) :class:`PlantedModel` of ``seed``."""
    return PlantedModel(seed)


@dataclass
class SyntheticSummary:
    path: str
    proba_path: str
    meta_path: str
    n_rows: int
    seed: int
    positives: int
    base_rate: float
    mean_true_prob: float
    bayes_auc: float
    bias: float
    component_std: dict[str, float]
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_synthetic(
    path: str | Path,
    n_rows: int = 200_000,
    seed: int = 0,
    chunk_rows: int = 65_536,
    *,
    progress: bool = False,
    compute_auc: bool = True,
) -> SyntheticSummary:
    """Write ``n_rows`` synthetic Criteo-format rows to ``path`` plus the sidecars (see the module doc).

    Streams ``chunk_rows`` rows at a time (memory ~ chunk_rows * 2 KB), so it scales to tens of
    millions of rows; the output does not depend on ``chunk_rows``.
    """
    t0 = time.perf_counter()
    if not isinstance(n_rows, (int, np.integer)) or isinstance(n_rows, bool) or n_rows < 1:
        raise ConfigError(f"synthetic: n_rows must be an integer >= 1, not {n_rows!r}")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ConfigError(f"synthetic: chunk_rows must be an integer >= 1, not {chunk_rows!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"synthetic: seed must be an integer >= 0, not {seed!r}")
    path = Path(path)
    model = planted_model(int(seed))
    proba_path, meta_path = synthetic_sidecar_paths(path)
    labels = np.empty(n_rows, np.int8)
    opts = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none", batch_size=8192)
    with atomic_file(path) as tmp_data, atomic_file(proba_path) as tmp_proba:
        proba = np.lib.format.open_memmap(tmp_proba, mode="w+", dtype=np.float32, shape=(n_rows,))
        sink = pa.OSFile(str(tmp_data), "wb")
        out = pa.CompressedOutputStream(sink, "gzip") if path.name.endswith(".gz") else sink
        writer = None
        try:
            with progress_bar("synthetic: generate", total=n_rows, enabled=progress) as bar:
                for start in range(0, n_rows, chunk_rows):
                    stop = min(start + chunk_rows, n_rows)
                    r = model.rows(np.arange(start, stop, dtype=np.uint64))
                    p32 = model.probability(r).astype(np.float32)
                    y = r["u_label"] < p32.astype(np.float64)
                    proba[start:stop] = p32
                    labels[start:stop] = y
                    table = model.table(r, y)
                    if writer is None:
                        writer = pacsv.CSVWriter(out, table.schema, write_options=opts)
                    writer.write_table(table)
                    bar.update(stop - start)
        finally:
            if writer is not None:
                writer.close()
            out.close()
            if out is not sink:
                sink.close()
        proba.flush()
        positives = int(labels.sum(dtype=np.int64))
        auc = bayes_optimal_auc(labels, proba) if compute_auc else float("nan")
        summary = SyntheticSummary(
            path=str(path),
            proba_path=str(proba_path),
            meta_path=str(meta_path),
            n_rows=int(n_rows),
            seed=int(seed),
            positives=positives,
            base_rate=positives / n_rows,
            mean_true_prob=float(np.mean(proba, dtype=np.float64)),
            bayes_auc=auc,
            bias=model.bias,
            component_std=dict(COMPONENT_STD),
            elapsed_s=round(time.perf_counter() - t0, 3),
        )
        del proba
        meta = {
            **summary.to_dict(),
            "format": "criteo train.txt (TAB, no header: label, I1..I13, C1..C26)",
            "proba_format": "numpy .npy, float32, shape (n_rows,): P(label=1 | row) used to draw the label",
            "generator": {
                "latent_dim": LATENT_DIM,
                "clusters": N_CLUSTERS,
                "pair_density": PAIR_DENSITY,
                "three_way_terms": N_TRIPLES,
                "noise_fields": list(NOISE_FIELDS),
                "cat_cardinality": dict(zip(CRITEO_CATEGORICAL, CAT_CARDINALITY)),
                "scales": model.scales,
            },
        }
        with atomic_file(meta_path) as tmp_meta:
            tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # leaving the outer ``with``: proba is renamed first, then the data file
    summary.elapsed_s = round(time.perf_counter() - t0, 3)
    return summary
