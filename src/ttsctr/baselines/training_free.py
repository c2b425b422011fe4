"""Training-free test-time scaling (paper §3.6.2, Figs. 7-8): many predictions from one model.

Two ways to draw several predictions from a single trained checkpoint, merged like ensemble
members (Eq. 10), and the pairwise analysis that compares them with training-based diversity:

* **MC-dropout** (:func:`mc_dropout_logits`): the model's dropout modules run in train mode at
  ``rate`` (0.1 in the paper) while everything else stays in eval mode; ``passes`` stochastic
  forward passes per row.
* **Frequency-aware feature masking** (:func:`feature_frequencies`, :func:`frequency_mask`,
  :func:`masked_ids`, :func:`feature_masking_logits`): value ids that were rare in the training
  split are replaced, at random and more often the rarer they are, by their field's OOV id; the
  top ``keep_fraction`` (0.9 in the paper) of each field's values are never touched; ``paths``
  (8 in the paper) masked copies of the input per row.
* :func:`merge_passes` averages the passes' probabilities (Eq. 10).
* :func:`source_matrix` / :func:`source_matrix_wide`: the 5×5 comparison of prediction sources
  of Fig. 7 (overlap area on the diagonal, prediction correlation above it, overlap change of
  the merged pair below it) and the merged-pair AUCs of Fig. 8.

Every function leaves the caller's model as it found it (dropout rates and train/eval flags
restored, no parameter or buffer touched) and is reproducible for a given seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.layers.dropout import _DROPOUT_TYPES, set_dropout_rate
from ttsctr.merging.diversity import pairwise_correlation
from ttsctr.merging.rules import MERGE_RULES, merge_probabilities
from ttsctr.metrics import overlap_area, roc_auc
from ttsctr.models.base import CTRModel
from ttsctr.training.group import GroupModel
from ttsctr.training.inputs import as_tensor, check_x
from ttsctr.training.trainer import _autocast, _check_precision

__all__ = [
    "FrequencyMask",
    "feature_frequencies",
    "feature_masking_logits",
    "frequency_mask",
    "masked_ids",
    "mc_dropout_logits",
    "merge_passes",
    "source_matrix",
    "source_matrix_wide",
]

# Local ids every field reserves (ttsctr.data.preprocess): 0 = OOV, 1 = missing, 2.. = values.
_OOV_LOCAL = 0
_FIRST_VALUE_LOCAL = 2

Model = CTRModel | GroupModel


# --------------------------------------------------------------------------------------------
# argument checks and shared machinery
# --------------------------------------------------------------------------------------------


def _check_model(model: Any, what: str) -> Model:
    if not isinstance(model, (CTRModel, GroupModel)):
        raise ConfigError(f"{what}: model must be a CTRModel or a GroupModel, got {type(model).__name__}")
    return model


def _check_count(value: Any, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{what}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed: Any, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{what}: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_field_ranges(x: np.ndarray, spec: FeatureSpec, name: str) -> None:
    """Column ``j`` must hold ids of field ``j`` only: ``[offset_j, offset_j + vocab_j)``.

    ``check_x`` only checks the global range; masking maps an id to *its column's* OOV id, so an
    id of another field in the column would be silently mis-mapped."""
    if x.shape[0] == 0:
        return
    offsets = np.asarray(spec.offsets, dtype=np.int64)
    ends = offsets + np.asarray(spec.vocab_sizes, dtype=np.int64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    bad = np.flatnonzero((lo < offsets) | (hi >= ends))
    if bad.size:
        j = int(bad[0])
        col = x[:, j]
        row = int(np.flatnonzero((col < offsets[j]) | (col >= ends[j]))[0])
        raise ConfigError(
            f"{name}: field {spec.field_names[j]!r} (column {j}) holds global id {int(col[row])} in row {row}; "
            f"expected ids of that field, in [{offsets[j]}, {ends[j]})"
        )


def _pass_seed(seed: int, k: int) -> int:
    """Seed of pass ``k``: pass ``k`` draws the same masks whatever the number of passes."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0])


def _precision(model: Model, precision: str | None) -> str:
    # A group scores in the precision it was trained and early-stopped in; a bare model in fp32.
    default = model.precision if isinstance(model, GroupModel) else "fp32"
    return _check_precision(precision or default)


def _run_passes(
    model: Model,
    x: torch.Tensor,
    passes: int,
    batch_size: int,
    precision: str,
    before_pass: Callable[[int], None],
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
) -> np.ndarray:
    """``passes`` forward passes of ``model`` over ``x`` in its *current* train/eval modes.

    ``before_pass(k)`` runs before pass ``k`` (seeding); ``transform`` maps each input batch
    (masking). Returns (N, passes) for a CTRModel, (N, M, passes) for a GroupModel, float32."""
    n = int(x.shape[0])
    device = next(model.parameters()).device
    shape = (n, model.size, passes) if isinstance(model, GroupModel) else (n, passes)
    out = torch.empty(shape, dtype=torch.float32)
    with torch.inference_mode(), _autocast(precision):
        for k in range(passes):
            before_pass(k)
            for start in range(0, n, batch_size):
                xb = x[start : start + batch_size]
                if transform is not None:
                    xb = transform(xb)
                out[start : start + xb.shape[0], ..., k] = model(xb.to(device)).float().cpu()
    return out.numpy()


def _train_flags(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def _restore_flags(flags: list[tuple[nn.Module, bool]]) -> None:
    # Module by module: model.train(flag) would overwrite mixed states (e.g. a frozen BN in eval).
    for m, flag in flags:
        m.training = flag


# --------------------------------------------------------------------------------------------
# MC-dropout
# --------------------------------------------------------------------------------------------


def mc_dropout_logits(
    model: Model,
    x: np.ndarray,
    *,
    rate: float = 0.1,
    passes: int = 8,
    seed: int = 0,
    batch_size: int = 16384,
    precision: str | None = None,
) -> np.ndarray:
    """Logits of ``passes`` MC-dropout forward passes (Gal & Ghahramani; paper §3.6.2).

    Pass ``k`` runs every dropout module of ``model`` in train mode at ``rate`` (each hidden
    activation zeroed with probability ``rate``, the rest scaled by ``1 / (1 - rate)``) and every
    other module in eval mode, so batch norm uses its running statistics and no row depends on
    the others in its batch. No gradients are recorded.

    ``x``: (N, F) encoded global ids. Returns float32 logits of shape (N, passes) for a
    :class:`~ttsctr.models.CTRModel`, (N, M, passes) for a :class:`~ttsctr.training.GroupModel`
    with M members (member ``m`` of pass ``k`` in ``[:, m, k]``; every member sees its own
    dropout masks). ``precision`` ('fp32' or 'bf16') defaults to the group's own, 'fp32' for a
    bare model. At ``rate=0`` every pass equals the deterministic eval-mode forward exactly.

    Reproducibility: pass ``k`` is drawn after seeding torch with a seed derived from
    ``(seed, k)`` inside ``torch.random.fork_rng``, so the caller's global RNG is untouched and
    the first ``k`` passes do not depend on ``passes``; equal results need the same ``seed``,
    ``batch_size``, thread count and torch build. The model's dropout rates and train/eval flags
    are restored afterwards, also on error (no copy of the model is made: the embedding tables
    can be large).
    """
    what = "mc_dropout_logits"
    model = _check_model(model, what)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ConfigError(f"{what}: rate must be a dropout probability in [0, 1), got {rate!r}")
    passes = _check_count(passes, "passes", what)
    batch_size = _check_count(batch_size, "batch_size", what)
    seed = _check_seed(seed, what)
    precision = _precision(model, precision)
    dropouts = [m for m in model.modules() if isinstance(m, _DROPOUT_TYPES)]
    if not dropouts and rate > 0:
        raise ConfigError(
            f"{what}: {type(model).__name__} has no dropout modules, so every MC-dropout pass would be the same "
            "deterministic prediction (e.g. LR has no hidden layers); use a backbone with an MLP"
        )
    xt = as_tensor(check_x(x, model.spec, "x"))
    device = next(model.parameters()).device
    flags = _train_flags(model)
    rates = [(m, m.p) for m in dropouts]

    def seed_pass(k: int) -> None:
        torch.manual_seed(_pass_seed(seed, k))

    try:
        model.eval()
        set_dropout_rate(model, rate)
        for m in dropouts:
            m.train()
        # fork_rng restores the caller's generator state (CPU, and the model's GPU if any).
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return _run_passes(model, xt, passes, batch_size, precision, seed_pass, None)
    finally:
        for m, p in rates:
            m.p = p
        _restore_flags(flags)


# --------------------------------------------------------------------------------------------
# frequency-aware feature masking
# --------------------------------------------------------------------------------------------


def feature_frequencies(x_train: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Occurrences of every global id in the training split: (num_features,) int64.

    ``counts[g]`` = number of rows whose column ``field(g)`` holds ``g`` (``np.bincount`` with
    ``minlength=spec.num_features``). Column ``j`` must hold ids of field ``j``."""
    x = check_x(x_train, spec, "x_train")
    _check_field_ranges(x, spec, "feature_frequencies x_train")
    return np.bincount(x.reshape(-1), minlength=spec.num_features).astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class FrequencyMask:
    """Per-global-id masking rule built by :func:`frequency_mask` (read-only arrays).

    ``probability`` (num_features,) float64: chance that an occurrence of the id is replaced;
    ``target`` (num_features,) int64: the id it is replaced by (its field's OOV id,
    ``offset_j``); ``threshold`` (num_fields,) float64: each field's keep threshold count ``c*_j``;
    ``kept`` (num_fields,) int64: how many of the field's value ids are never masked.
    """

    spec: FeatureSpec
    keep_fraction: float
    strength: float
    probability: np.ndarray
    target: np.ndarray
    threshold: np.ndarray
    kept: np.ndarray

    @property
    def is_identity(self) -> bool:
        return not bool(np.any(self.probability > 0))


def frequency_mask(
    counts: np.ndarray,
    spec: FeatureSpec,
    keep_fraction: float = 0.9,
    *,
    strength: float = 1.0,
) -> FrequencyMask:
    """Frequency-aware masking rule (paper §3.6.2, ``mask_top_frac``) from training counts.

    Per field ``j`` with vocabulary ``V_j``: its value ids are the local ids ``2 .. V_j - 1``
    (``n_j = V_j - 2`` of them; local 0 = OOV and 1 = missing are never masked). With ``counts``
    from the split the vocabulary was fit on, these are exactly the field's distinct seen values.
    They are ranked by training count ``c`` (descending); ``k_j = ceil(keep_fraction · n_j)``
    are kept, and the keep threshold ``c*_j`` is the count of the ``k_j``-th ranked value. A
    value is

    * never masked if ``c >= c*_j`` (ties with the ``k_j``-th value are kept too, so the rule
      does not depend on how ties are ordered; at least ``k_j`` values are kept);
    * otherwise masked to the field's OOV global id ``offset_j`` with probability
      ``p = strength · (1 - c / c*_j)``: rarer values more often, a value never seen in the
      counts (``c = 0``) with probability ``strength``.

    ``keep_fraction = 1`` keeps every value (``c*_j`` is the smallest count), so the mask is the
    identity. ``keep_fraction`` must be in (0, 1], ``strength`` in [0, 1].
    ``ceil`` is taken after subtracting 1e-9 so 0.7 · 10 keeps 7 values, not 8 (float rounding).
    """
    what = "frequency_mask"
    if (
        isinstance(keep_fraction, bool)
        or not isinstance(keep_fraction, (int, float))
        or not math.isfinite(keep_fraction)
        or not 0.0 < keep_fraction <= 1.0
    ):
        raise ConfigError(
            f"{what}: keep_fraction must be in (0, 1] (the fraction of each field's values never masked, "
            f"0.9 in the paper), got {keep_fraction!r}"
        )
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ConfigError(f"{what}: strength must be a probability scale in [0, 1], got {strength!r}")
    if not isinstance(spec, FeatureSpec):
        raise ConfigError(f"{what}: spec must be a FeatureSpec, got {type(spec).__name__}")
    c = np.asarray(counts)
    if c.shape != (spec.num_features,):
        raise ConfigError(
            f"{what}: counts must have one entry per global id, shape ({spec.num_features},); got shape {c.shape} "
            "(use feature_frequencies(x_train, spec))"
        )
    if not np.issubdtype(c.dtype, np.integer) or (c.size and c.min() < 0):
        raise ConfigError(f"{what}: counts must be non-negative integers, got dtype {c.dtype}")
    c = c.astype(np.float64)
    probability = np.zeros(spec.num_features, dtype=np.float64)
    target = np.empty(spec.num_features, dtype=np.int64)
    threshold = np.zeros(spec.num_fields, dtype=np.float64)
    kept = np.zeros(spec.num_fields, dtype=np.int64)
    for j, (offset, vocab) in enumerate(zip(spec.offsets, spec.vocab_sizes)):
        target[offset : offset + vocab] = offset + _OOV_LOCAL
        values = c[offset + _FIRST_VALUE_LOCAL : offset + vocab]
        n_values = values.size
        if n_values == 0:
            continue
        k = max(1, math.ceil(keep_fraction * n_values - 1e-9))
        c_star = float(np.sort(values)[::-1][k - 1])
        threshold[j] = c_star
        rare = values < c_star  # empty when c_star == 0: nothing is rarer than unseen
        kept[j] = n_values - int(rare.sum())
        p = np.zeros(n_values)
        p[rare] = strength * (1.0 - values[rare] / c_star)
        probability[offset + _FIRST_VALUE_LOCAL : offset + vocab] = p
    for a in (probability, target, threshold, kept):
        a.setflags(write=False)
    return FrequencyMask(spec, float(keep_fraction), float(strength), probability, target, threshold, kept)


def _check_mask(mask: Any, spec: FeatureSpec, what: str) -> FrequencyMask:
    if not isinstance(mask, FrequencyMask):
        raise ConfigError(f"{what}: mask must be a FrequencyMask (from frequency_mask), got {type(mask).__name__}")
    if tuple(mask.spec.vocab_sizes) != tuple(spec.vocab_sizes):
        raise ConfigError(
            f"{what}: the mask was built for vocabulary sizes {mask.spec.vocab_sizes}, the data/model has "
            f"{spec.vocab_sizes}; build it from this dataset's feature spec"
        )
    return mask


def _as_generator(rng: Any, what: str) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ConfigError(f"{what}: rng must be a numpy Generator or a non-negative integer seed, got {rng!r}")


def masked_ids(x: np.ndarray, mask: FrequencyMask, rng: np.random.Generator | int) -> np.ndarray:
    """One masked copy of ``x`` (N, F): each occurrence of global id ``g`` independently becomes
    ``mask.target[g]`` (its field's OOV id) with probability ``mask.probability[g]``.

    One uniform number is drawn per cell, row-major, masked or not, so the draws do not depend
    on the mask and drawing a split in consecutive chunks equals drawing it at once. Keeps
    ``x``'s dtype; ``x`` itself is not modified. ``rng``: a Generator or an integer seed.
    """
    what = "masked_ids"
    if not isinstance(mask, FrequencyMask):
        raise ConfigError(f"{what}: mask must be a FrequencyMask (from frequency_mask), got {type(mask).__name__}")
    xa = check_x(x, mask.spec, "x")
    _check_field_ranges(xa, mask.spec, what + " x")
    gen = _as_generator(rng, what)
    return _mask_array(xa, mask, gen)


def _mask_array(x: np.ndarray, mask: FrequencyMask, gen: np.random.Generator) -> np.ndarray:
    u = gen.random(x.shape)
    hit = u < mask.probability[x]
    return np.where(hit, mask.target[x], x).astype(x.dtype, copy=False)


def feature_masking_logits(
    model: Model,
    x: np.ndarray,
    mask: FrequencyMask,
    *,
    paths: int = 8,
    seed: int = 0,
    batch_size: int = 16384,
    precision: str | None = None,
) -> np.ndarray:
    """Logits of ``paths`` frequency-masked copies of ``x`` (paper §3.6.2, 8 paths).

    Path ``k`` scores :func:`masked_ids` of ``x`` with a numpy Generator seeded from
    ``(seed, k)``, with the whole model in eval mode (dropout off, batch norm on running
    statistics), no gradients. Returns float32 (N, paths) for a CTRModel, (N, M, paths) for a
    GroupModel (all members of a path see the same masked input). The masks do not depend on
    ``batch_size`` or on ``paths`` (path ``k`` is the same in a longer run); the model's
    train/eval flags are restored afterwards. ``precision`` as in :func:`mc_dropout_logits`.
    """
    what = "feature_masking_logits"
    model = _check_model(model, what)
    mask = _check_mask(mask, model.spec, what)
    paths = _check_count(paths, "paths", what)
    batch_size = _check_count(batch_size, "batch_size", what)
    seed = _check_seed(seed, what)
    precision = _precision(model, precision)
    xa = check_x(x, model.spec, "x")
    _check_field_ranges(xa, model.spec, what + " x")
    gen: list[np.random.Generator] = []

    def seed_path(k: int) -> None:
        gen[:] = [np.random.default_rng(np.random.SeedSequence([seed, k]))]

    def transform(xb: torch.Tensor) -> torch.Tensor:
        return as_tensor(_mask_array(xb.numpy(), mask, gen[0]))

    flags = _train_flags(model)
    try:
        model.eval()
        return _run_passes(model, as_tensor(xa), paths, batch_size, precision, seed_path, transform)
    finally:
        _restore_flags(flags)


# --------------------------------------------------------------------------------------------
# merging and the pairwise source analysis
# --------------------------------------------------------------------------------------------


def merge_passes(logits_passes: np.ndarray) -> np.ndarray:
    """Eq. 10 over passes: ``p = (1/P) Σ_k sigmoid(l_k)``, the mean probability over the last axis.

    (N, P) logits -> (N,) float64 probabilities; (N, M, P) -> (N, M), one merged prediction per
    group member (merge those with :data:`~ttsctr.merging.rules.MERGE_RULES` next).
    """
    a = np.asarray(logits_passes)
    if a.ndim not in (2, 3) or a.shape[-1] < 1:
        raise ConfigError(
            f"merge_passes: expected (N, passes) or (N, members, passes) logits, got shape {a.shape}"
        )
    rule = MERGE_RULES["mean_prob"]
    return rule(a.reshape(-1, a.shape[-1])).reshape(a.shape[:-1])


def _logit(p: np.ndarray) -> np.ndarray:
    # float64 eps keeps saturated probabilities (0 or 1) finite, at about ±36.
    eps = np.finfo(np.float64).eps
    q = np.clip(p, eps, 1.0 - eps)
    return np.log(q) - np.log1p(-q)


def source_matrix(
    sources: Mapping[str, np.ndarray], labels: np.ndarray, *, bins: int = 100
) -> pd.DataFrame:
    """Pairwise comparison of prediction sources (paper Fig. 7 and Fig. 8), in long form.

    ``sources`` maps a name (e.g. Naive, Naive+MC, Naive+FM, DP, DP+MC) to its (N,)
    probabilities on the same rows; ``labels`` (N,) 0/1 with both classes. One row per ordered
    pair ``(i, j)`` of sources, diagonal included (S² rows, in source order), with columns

    * ``source_i``, ``source_j``, ``i``, ``j``: names and positions in ``sources``;
    * ``correlation``: Pearson correlation of the two sources' **logits** ``log(p / (1 - p))``
      (p clipped to [eps, 1 - eps], float64 eps), as in
      :func:`~ttsctr.merging.diversity.pairwise_correlation`; 1 on the diagonal;
    * ``overlap_i``, ``overlap_j``: :func:`~ttsctr.metrics.overlap_area` of each source;
    * ``overlap_merged``: overlap area of the merged pair ``(p_i + p_j) / 2`` (Eq. 10);
    * ``overlap_change``: ``overlap_merged - min(overlap_i, overlap_j)``, against the better
      single source (negative = the merge separates the classes better than either);
    * ``overlap_change_vs_mean``: ``overlap_merged - (overlap_i + overlap_j) / 2``;
    * ``auc_i``, ``auc_j``, ``auc_merged``: ROC AUC of each and of the merged pair;
    * ``auc_gain``: ``auc_merged - max(auc_i, auc_j)``, against the better single source.

    Merging a source with itself returns it unchanged, so the diagonal has zero change and gain.
    Pairs are symmetric; each unordered pair is scored once.
    """
    what = "source_matrix"
    if not isinstance(sources, Mapping) or not sources:
        raise ConfigError(f"{what}: sources must be a non-empty mapping of name -> (N,) probabilities")
    names = [str(k) for k in sources]
    probs = []
    n: int | None = None
    for name, v in sources.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or (n is not None and a.shape[0] != n):
            raise ConfigError(
                f"{what}: source {name!r} has shape {a.shape}; expected ({n if n is not None else 'N'},) "
                "probabilities on the same rows as the other sources (merge passes first with merge_passes)"
            )
        if a.size == 0 or np.isnan(a).any() or a.min() < 0 or a.max() > 1:
            raise ConfigError(f"{what}: source {name!r} must hold probabilities in [0, 1] (not logits, no NaN)")
        n = a.shape[0]
        probs.append(a)
    y = np.asarray(labels).reshape(-1)
    stacked = np.stack(probs, axis=1)  # (N, S)
    corr = pairwise_correlation(_logit(stacked))
    single_oa = [overlap_area(p, y, bins) for p in probs]
    single_auc = [roc_auc(y, p) for p in probs]
    s = len(probs)
    pair: dict[tuple[int, int], tuple[float, float]] = {}
    for i in range(s):
        pair[(i, i)] = (single_oa[i], single_auc[i])
        for j in range(i + 1, s):
            merged = merge_probabilities(stacked[:, [i, j]])
            pair[(i, j)] = pair[(j, i)] = (overlap_area(merged, y, bins), roc_auc(y, merged))
    rows = []
    for i in range(s):
        for j in range(s):
            oa_m, auc_m = pair[(i, j)]
            rows.append(
                {
                    "source_i": names[i],
                    "source_j": names[j],
                    "i": i,
                    "j": j,
                    "correlation": float(corr[i, j]),
                    "overlap_i": single_oa[i],
                    "overlap_j": single_oa[j],
                    "overlap_merged": oa_m,
                    "overlap_change": oa_m - min(single_oa[i], single_oa[j]),
                    "overlap_change_vs_mean": oa_m - 0.5 * (single_oa[i] + single_oa[j]),
                    "auc_i": single_auc[i],
                    "auc_j": single_auc[j],
                    "auc_merged": auc_m,
                    "auc_gain": auc_m - max(single_auc[i], single_auc[j]),
                }
            )
    return pd.DataFrame(rows)


_PAPER_LAYOUT = {"diagonal": "overlap_i", "upper": "correlation", "lower": "overlap_change"}


def source_matrix_wide(df: pd.DataFrame, value: str = "paper") -> pd.DataFrame:
    """Pivot :func:`source_matrix` output into an S×S table (rows ``source_i``, columns ``source_j``,
    in source order).

    ``value="paper"`` gives the layout of Fig. 7: diagonal = ``overlap_i`` (each source's
    overlap area), upper triangle (``i < j``) = ``correlation``, lower triangle (``i > j``) =
    ``overlap_change`` of the merged pair. Any other column name of ``df`` (e.g. ``auc_gain``,
    ``auc_merged`` for Fig. 8) pivots that column alone.
    """
    need = {"source_i", "source_j", "i", "j"}
    if not isinstance(df, pd.DataFrame) or not need <= set(df.columns):
        raise ConfigError("source_matrix_wide: df must be the DataFrame returned by source_matrix")
    if value != "paper" and value not in df.columns:
        known = sorted(set(df.columns) - need)
        raise ConfigError(f"source_matrix_wide: unknown value {value!r}; expected 'paper' or one of {known}")
    order = df.drop_duplicates("i").sort_values("i")["source_i"].tolist()
    if value == "paper":
        i, j = df["i"].to_numpy(), df["j"].to_numpy()
        layout = _PAPER_LAYOUT
        v = np.where(i == j, df[layout["diagonal"]], np.where(i < j, df[layout["upper"]], df[layout["lower"]]))
        cells, col = df.assign(_value=v), "_value"
    else:
        cells, col = df, value
    wide = cells.pivot(index="source_i", columns="source_j", values=col).reindex(index=order, columns=order)
    wide.index.name, wide.columns.name = "source_i", "source_j"
    return wide
