"""Synthetic Criteo-format click logs with a known (planted) click probability per row.

``generate_synthetic(path, n_rows, seed)`` writes

* ``path``: a Criteo ``train.txt``-format file (TAB, no header, ``label, I1..I13, C1..C26``;
  gzip-compressed when ``path`` ends in ``.gz``), read back by the ``synthetic`` reader;
* ``<path>.proba.npy``: float32 ``.npy`` array of shape ``(n_rows,)``, the true click
  probability of row ``i`` (the label of row ``i`` was drawn as ``u_i < proba[i]``);
* ``<path>.meta.json``: generator parameters and summary (seed, rows, base rate, Bayes AUC).

Each file is written to a temporary sibling and renamed into place (sidecars first, the
data file last).

The planted model (all parameters drawn from ``seed``; generator version 2):

* 13 numeric fields: log-normal counts (some zero-heavy, ``I2`` also ``-1``), Criteo-like
  missing rates; their effects are smooth random functions of the quantile of the OptFS token
  ``floor(ln(x)^2)``, so the true probability depends on ``x`` only through its token and
  changes gradually between neighbouring tokens;
* 26 categorical fields, values rendered as distinct 8-hex-digit strings, Criteo-like missing
  rates. Fields with at most 200 values (3..105) are Zipf-distributed. Larger fields (305 to
  100 000 values) have a *head* of 30-300 frequent values (log-uniform size, Zipf inside,
  70-92% of the rows) and a long, flat *tail* holding the rest of the rows spread over all
  other values: thousands of values seen once, as in Criteo, which the OptFS frequency
  threshold maps to the OOV id;
* a hidden row "context" (8 clusters) rotates which head values are popular in about half of
  the fields, so fields are correlated; it has no direct effect on the label;
* ``logit = bias + first_order + pairwise + higher_order`` with

  - ``first_order = sum_j w_j[v_j]`` over every signal field;
  - ``pairwise = sum_{i<j} R_ij <u_i[v_i], u_j[v_j]>``: FM-style pairs with 2-d latents among
    the 22 *interaction fields* (the 12 numeric signal fields and the 10 categorical signal
    fields with at most 700 values); 15% of their pairs are active (34 for seed 0), strengths
    ``R_ij ~ U(0.5, 1.5)``; latents are centred under the value distribution, so a pair has no
    additive part a linear model could pick up, and 60% of each latent's variance follows the
    value's own first-order effect (effects that amplify each other), which is what lets a
    network find the pairs within a few epochs;
  - ``higher_order = sum_g s_g prod_{j in g} sigmoid(2 t_j[v_j])``: 6 soft ANDs of three
    interaction fields each (a group fires only when all three values are "high"), signs and
    weights ``s_g = +/-U(0.5, 1)``;

  the three parts are scaled to standard deviations 0.8 / 1.4 / 0.8 on a 131 072-row
  calibration sample and ``bias`` is solved there for a mean probability of 0.25;
* learnable, not memorisable: every effect of a categorical value is multiplied by
  ``sqrt(m / (m + c))`` (``m`` its expected count in 120 000 rows, ``c`` = 30 first order,
  50 interactions), so values too rare to learn carry almost nothing: zeroing every effect of
  the values expected fewer than 10 times per 100 000 rows (the tails, present in most rows)
  moves the logit by < 0.5% of its variance. At least 85% of the interaction latents'
  variance sits on values seen >= 100 times per 100 000 rows, and the best additive
  approximation of the true logit (what a linear model on one-hot ids can at best learn)
  reaches only AUC ~0.67;
* fields ``I12, C7, C13, C20`` carry no signal (noise fields);
* ``label ~ Bernoulli(sigmoid(logit))``: the label noise is the Bernoulli draw, so ``proba``
  is exactly ``P(y = 1 | all raw fields)`` and its AUC is the Bayes-optimal AUC
  (0.843 for the default 120 000 rows, seed 0; 0.847 on the test split).

Measured on the default log (120 000 rows, seed 0; OptFS preprocessing min_count 10, random
8:1:1 split, 5 989 ids; test AUC; the project's trainer, reference recipe (embedding L2 0.01,
lr x0.1 on a plateau, clipping) with batch 1024, lr 1e-3, max 10 epochs, patience 2, each
member its own data order, 1 thread; small presets; logistic regression on one-hot ids with C
chosen on validation AUC):

==========================  ======  ==============  ===========  ==========  =========
model                       single  8 seeds merged  best epochs  s / epoch   vs LR
==========================  ======  ==============  ===========  ==========  =========
logistic regression         0.670   --              --           --          --
DCNv2 small                 0.783   0.791 (+0.008)  9-10 (13*)   2.0-3.0     +0.113
Wukong small                0.749   0.787 (+0.038)  3-5          1.7-2.1     +0.078
RankMixer small             0.748   0.779 (+0.031)  5-7          1.2         +0.078
Wukong + RankMixer          0.767   0.788 (+0.021)  --           --          +0.097
Bayes-optimal (planted)     0.847
==========================  ======  ==============  ===========  ==========  =========

(single = mean of the 8 members, or of the 8 Wukong+RankMixer pairs; ``*`` with max 40
epochs DCNv2 seed 0 peaks at epoch 13 with 0.787; seconds on the shared 2-core machine.)
Members of different seeds are diverse (mean pairwise prediction correlation 0.93
for DCNv2, 0.70-0.72 for Wukong and RankMixer), so merging them helps, and the Bayes AUC
stays far above every model. The default size is chosen for the ``make run`` budget: its
~96 000 training rows keep the reference recipe's halved batch at 1024 (94 steps an epoch).

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
GENERATOR_VERSION = 2  # bumped whenever the planted model changes (recorded in the meta sidecar)
LATENT_DIM = 2  # FM latents of the pairwise part
ALIGN = 0.6  # share of each latent's variance that follows the value's first-order effect
N_CLUSTERS = 8
NOISE_FIELDS = ("I12", "C7", "C13", "C20")
COMPONENT_STD = {"first_order": 0.8, "pairwise": 1.4, "higher_order": 0.8}  # std of each logit part
INTERACTION_MAX_CARD = 700  # only fields with at most this many values (and numeric fields) interact
PAIR_DENSITY = 0.15  # share of the interaction-field pairs that are active
N_GROUPS = 6  # higher-order terms: soft AND of GROUP_SIZE interaction fields
GROUP_SIZE = 3
SHRINK_ROWS = 120_000  # rare-value shrinkage sqrt(m / (m + c)), m = expected count in this many rows
SHRINK_FIRST = 30.0  # c of first-order effects
SHRINK_INTER = 50.0  # c of interaction latents
CALIBRATION_ROWS = 1 << 17
HEAD_MIN_CARD = 200  # fields with more values: a frequent head plus a long tail of rare values
HEAD_SIZE = (30, 300)  # log-uniform
TAIL_SHARE = (0.08, 0.3)
ZIPF_HEAD = (0.6, 1.1)
ZIPF_TAIL = (0.1, 0.5)
ZIPF_LOW = (0.8, 1.3)  # Zipf exponents of the fields with at most HEAD_MIN_CARD values
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


def _smooth_on_quantiles(rng: np.random.Generator, q: np.ndarray, dims: int) -> np.ndarray:
    """A random smooth function of the quantile position ``q`` in [0, 1] (3 cosine/sine bases), (len(q), dims)."""
    out = np.zeros((len(q), dims))
    for b in range(1, 4):
        c, s = rng.normal(size=(2, dims)) / b
        out += np.cos(np.pi * b * q)[:, None] * c + np.sin(np.pi * b * q)[:, None] * s
    return out


def _standardise(t: np.ndarray, pmf: np.ndarray) -> np.ndarray:
    """Centre and scale the rows of ``t`` to mean 0 / variance 1 under the probabilities ``pmf`` (per column)."""
    t = t - pmf @ t
    return t / np.sqrt(pmf @ t**2 + 1e-12)


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
        self.cat_cdf, self.cat_shift, self.cat_salt, self.cat_head = [], [], [], []
        for j, card in enumerate(CAT_CARDINALITY):
            q = rng.uniform(1.0, 8.0)
            head = card
            if card > HEAD_MIN_CARD:  # a head of frequent values plus a long tail of rare ones
                head = int(np.exp(rng.uniform(*np.log(HEAD_SIZE))))
                tail = rng.uniform(*TAIL_SHARE)
                pmf = np.empty(card)
                pmf[:head] = (np.arange(head) + q) ** -rng.uniform(*ZIPF_HEAD)
                pmf[:head] *= (1 - tail) / pmf[:head].sum()
                pmf[head:] = (np.arange(card - head) + q) ** -rng.uniform(*ZIPF_TAIL)
                pmf[head:] *= tail / pmf[head:].sum()
            else:
                pmf = (np.arange(card) + q) ** -rng.uniform(*ZIPF_LOW)
            cdf = np.cumsum(pmf / pmf.sum())
            cdf[-1] = 1.0
            self.cat_cdf.append(cdf)
            shift = rng.integers(0, head, size=N_CLUSTERS) * bool(correlated[13 + j])
            shift[0] = 0
            self.cat_shift.append(shift)  # the context rotates which head values are popular
            self.cat_head.append(head)
            self.cat_salt.append(np.uint32(rng.integers(0, 2**32)))
        self.key = np.uint64(_mix64_scalar(self.seed * 0x2545F4914F6CDD1D + 0x1234567))
        self.cal_key = np.uint64(_mix64_scalar(self.seed * 0x2545F4914F6CDD1D + 0x7654321))
        self.slot_keys = _mix64(np.arange(1, 128, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        self.vocab = [_hex8(_fmix32(np.arange(card, dtype=np.uint32) + self.cat_salt[j])) for j, card in enumerate(CAT_CARDINALITY)]
        # marginal probability of every table row (value / token / missing) of every field
        cal = self.rows(np.arange(CALIBRATION_ROWS, dtype=np.uint64), key=self.cal_key)
        cal_idx = self.table_index(cal)
        self.table_pmf: list[np.ndarray] = []
        for j in range(F):
            if j < 13:
                pmf = np.bincount(cal_idx[j], minlength=_NUM_TOKEN_CAP + 3) / CALIBRATION_ROWS
            else:
                miss = CAT_MISSING[j - 13]
                pmf = np.append(self.value_pmf(j - 13) * (1 - miss), miss)
            self.table_pmf.append(pmf)
        # planted effects: tables indexed by value (categorical) or clipped token (numeric), last row = missing
        cards = np.array([0] * 13 + list(CAT_CARDINALITY))  # numeric: tokens, always few enough
        signal = np.array([n not in NOISE_FIELDS for n in self.field_names])
        self.active = signal & (cards <= INTERACTION_MAX_CARD)
        self.w: list[np.ndarray] = []  # first order
        self.u: list[np.ndarray] = []  # FM latents (k)
        self.t: list[np.ndarray] = []  # higher-order scalar latents
        for j in range(F):
            pmf = self.table_pmf[j]
            size = len(pmf)
            if j < 13:
                q = np.cumsum(pmf) - pmf / 2  # quantile position of each token: effects are smooth in it
                raw = _smooth_on_quantiles(rng, q, 1 + k + 1)
                raw[-1] = rng.normal(size=1 + k + 1)  # missing
                shrink_first = shrink_inter = np.ones(size)
            else:
                raw = rng.normal(size=(size, 1 + k + 1))
                m = pmf * SHRINK_ROWS  # expected count: effects of rare values fade
                shrink_first = np.sqrt(m / (m + SHRINK_FIRST))
                shrink_inter = np.sqrt(m / (m + SHRINK_INTER))
            raw = _standardise(raw, pmf)
            # part of every latent follows the value's first-order effect (effects that amplify each other)
            raw[:, 1:] = np.sqrt(ALIGN) * raw[:, :1] * rng.choice([-1.0, 1.0], size=k + 1) + np.sqrt(1 - ALIGN) * raw[:, 1:]
            a = rng.uniform(0.4, 1.0) * signal[j]
            self.w.append((raw[:, 0] * shrink_first * a).astype(np.float32))
            u = raw[:, 1 : 1 + k] * shrink_inter[:, None] / np.sqrt(k) * self.active[j]
            self.u.append((u - pmf @ u).astype(np.float32))
            self.t.append((raw[:, -1] * shrink_inter * self.active[j]).astype(np.float32))
        R = np.triu((rng.random((F, F)) < PAIR_DENSITY) * rng.uniform(0.5, 1.5, size=(F, F)), 1)
        R *= self.active[:, None] & self.active[None, :]
        self.R = (R + R.T).astype(np.float32)
        act_idx = np.flatnonzero(self.active)
        self.groups = np.array([rng.choice(act_idx, size=GROUP_SIZE, replace=False) for _ in range(N_GROUPS)])
        self.group_sign = rng.choice([-1.0, 1.0], size=N_GROUPS) * rng.uniform(0.5, 1.0, size=N_GROUPS)
        # calibration: scale the three parts, then solve the bias for the base rate
        parts = self._raw_components(cal)
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
            h = self.cat_head[j]
            out[:h] += probs[c] * np.roll(pmf[:h], int(self.cat_shift[j][c]))
        out[self.cat_head[j] :] = pmf[self.cat_head[j] :]
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
            h = self.cat_head[j]
            cat[:, j] = np.where(rank < h, (rank + self.cat_shift[j][cluster]) % h, rank)
            cat_missing[:, j] = uni(_SLOT_MISSING + 13 + j) < CAT_MISSING[j]
        return {"num": num, "num_missing": num_missing, "cat": cat, "cat_missing": cat_missing, "u_label": uni(_SLOT_LABEL)}

    def table_index(self, r: dict[str, Any]) -> list[np.ndarray]:
        """Per field, the row of its planted tables: value index (categorical) or clipped token + 1
        (numeric); the last row of every table is "missing"."""
        idx = []
        for j in range(13):
            tok = np.clip(numeric_tokens(r["num"][:, j]), -1, _NUM_TOKEN_CAP) + 1
            idx.append(np.where(r["num_missing"][:, j], _NUM_TOKEN_CAP + 2, tok))
        for j, card in enumerate(CAT_CARDINALITY):
            idx.append(np.where(r["cat_missing"][:, j], card, r["cat"][:, j]))
        return idx

    def _raw_components(self, r: dict[str, Any]) -> dict[str, np.ndarray]:
        idx = self.table_index(r)
        n = len(idx[0])
        first = np.zeros(n, np.float64)
        U = np.zeros((n, len(idx), LATENT_DIM), np.float32)
        for j, ix in enumerate(idx):
            first += self.w[j][ix]
            if self.active[j]:
                U[:, j, :] = self.u[j][ix]
        Ut = U.transpose(0, 2, 1)  # (n, k, F)
        pair = 0.5 * np.einsum("nkf,nkf->n", Ut, Ut @ self.R)
        higher = np.zeros(n, np.float64)
        for g, s in zip(self.groups, self.group_sign):
            gate = np.ones(n)
            for j in g:  # soft AND: high only when every field of the group has a high latent
                gate *= 1.0 / (1.0 + np.exp(-2.0 * self.t[j][idx[j]]))
            higher += s * gate
        return {"first_order": first, "pairwise": pair.astype(np.float64), "higher_order": higher}

    def logit_parts(self, r: dict[str, Any]) -> dict[str, np.ndarray]:
        """The three parts of the true logit (``logit = bias + sum of the parts``) of the rows ``r``."""
        parts = self._raw_components(r)
        return {n: self.scales[n] * parts[n] for n in COMPONENT_STD}

    def probability(self, r: dict[str, Any]) -> np.ndarray:
        """The true click probability of the rows ``r`` (from :meth:`rows`)."""
        z = self.bias + sum(self.logit_parts(r).values())
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
    n_rows: int = 120_000,
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
                "version": GENERATOR_VERSION,
                "latent_dim": LATENT_DIM,
                "align": ALIGN,
                "clusters": N_CLUSTERS,
                "pair_density": PAIR_DENSITY,
                "pairs": int(np.count_nonzero(np.triu(model.R))),
                "higher_order_groups": [[model.field_names[j] for j in g] for g in model.groups],
                "interaction_fields": [n for n, a in zip(model.field_names, model.active) if a],
                "noise_fields": list(NOISE_FIELDS),
                "cat_cardinality": dict(zip(CRITEO_CATEGORICAL, CAT_CARDINALITY)),
                "cat_head_size": dict(zip(CRITEO_CATEGORICAL, model.cat_head)),
                "scales": model.scales,
            },
        }
        with atomic_file(meta_path) as tmp_meta:
            tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        # leaving the outer ``with``: proba is renamed first, then the data file
    summary.elapsed_s = round(time.perf_counter() - t0, 3)
    return summary
