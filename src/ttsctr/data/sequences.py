"""Behaviour-sequence CTR samples for EST (user behaviours B_u, content-retrieved behaviours B_c).

Plain library code (no Kedro). One sample per rating event; the model sees

* non-behavioural features N (``SequenceData.fields``): user profile ``age_bucket``, ``gender``,
  ``occupation``, ``zip_prefix`` and candidate attributes ``item`` (the item id), ``genre`` (the
  index of the item's *first* genre flag in u.genre order, 0..18, or 19 when it has none: the
  full genre set is already in the content vector, so a single categorical code is kept here
  instead of a hashed multi-genre code) and ``release_year_bucket`` (5-year buckets, code 0 =
  unknown year, 1 = the bucket of the earliest year, ...);
* ``user_seq`` (B_u): the last ``L = user_len`` items the user rated *strictly before* the
  event's timestamp (events at the same timestamp are never history), chronological, most
  recent last, left-padded with 0;
* ``cand_seq`` (B_c): the ``k = candidate_len`` items of the user's whole strictly-earlier
  history whose content vectors are most cosine-similar to the candidate's (ties: the more
  recent one wins; cosines are rounded to 9 decimals first so that float noise never decides a
  tie), stored in chronological order (most recent last), left-padded with 0;
* ``content``: frozen content vectors, row = item id, row 0 = padding (zeros). Never trained.

Rows are sorted globally by ``(timestamp, user, item)``; ``split`` is chronological over that
order (0 train = earliest events, 1 validation, 2 test).

Entry points: ``read_movielens`` -> ``build_movielens_sequences``; ``synthetic_sequences`` (planted
click probability ``true_prob``, ``bayes_auc``); ``to_frame`` / ``from_frame`` (Parquet-ready
fixed-width columns); ``validate_sequences`` / ``check_history``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.data.readers import MOVIELENS_GENRES
from ttsctr.errors import ConfigError
from ttsctr.metrics import roc_auc

__all__ = [
    "GENRE_NAMES",
    "GENRE_COLUMNS",
    "USER_FIELDS",
    "ITEM_FIELDS",
    "SequenceConfig",
    "SequenceData",
    "item_content_vectors",
    "build_movielens_sequences",
    "read_movielens",
    "check_history",
    "validate_sequences",
    "synthetic_sequences",
    "bayes_auc",
    "to_frame",
    "from_frame",
]

GENRE_NAMES: tuple[str, ...] = MOVIELENS_GENRES  # u.genre order
GENRE_COLUMNS: tuple[str, ...] = tuple(f"genre_{i}" for i in range(len(GENRE_NAMES)))
USER_FIELDS: tuple[str, ...] = ("age_bucket", "gender", "occupation", "zip_prefix")
ITEM_FIELDS: tuple[str, ...] = ("item", "genre", "release_year_bucket")
AGE_EDGES = (18, 25, 35, 45, 50, 56)  # buckets <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
_SCALARS = ("label", "user", "timestamp", "split", "user_seq_len", "cand_seq_len")
_TIE_DECIMALS = 9
BEHAVIOURS = ("all", "liked")


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SequenceConfig:
    """Sequence lengths, label rule, chronological split and content size.

    ``user_len`` (L): length of B_u; ``candidate_len`` (k): length of B_c; ``label_threshold``:
    label = rating >= threshold; ``split_fractions``: train/validation/test fractions of the
    time-ordered events; ``content_dim``: SVD components of the title TF-IDF (MovieLens) or the
    content size (synthetic); ``behaviours``: which earlier events form the behaviour sequences —
    ``all`` (every earlier rating) or ``liked`` (only earlier events with label 1, the positive
    feedback: the analogue of a click sequence in an ads log, and what DIN-style MovieLens
    set-ups use). ``liked`` needs labels before the sequences are built, so it is MovieLens only.
    """

    user_len: int = 50
    candidate_len: int = 10
    label_threshold: int = 4
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    content_dim: int = 32
    behaviours: str = "all"

    def __post_init__(self) -> None:
        if self.behaviours not in BEHAVIOURS:
            raise ConfigError(f"SequenceConfig.behaviours must be one of {list(BEHAVIOURS)}; got {self.behaviours!r}")
        for name in ("user_len", "candidate_len", "content_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"SequenceConfig.{name} must be a positive integer; got {value!r}")
        t = self.label_threshold
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ConfigError(f"SequenceConfig.label_threshold must be an integer rating; got {t!r}")
        fr = self.split_fractions
        try:
            fr = tuple(float(x) for x in fr)
        except (TypeError, ValueError):
            raise ConfigError(f"SequenceConfig.split_fractions must be three numbers; got {self.split_fractions!r}") from None
        if len(fr) != 3 or any(not np.isfinite(x) or x < 0 for x in fr) or fr[0] <= 0 or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(
                "SequenceConfig.split_fractions must be three non-negative fractions (train > 0) "
                f"summing to 1; got {self.split_fractions!r}"
            )
        object.__setattr__(self, "split_fractions", fr)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SequenceConfig:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"SequenceConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        if "split_fractions" in values and values["split_fractions"] is not None:
            values["split_fractions"] = tuple(values["split_fractions"])
        return cls(**values)


@dataclass(frozen=True, eq=False)
class SequenceData:
    """Sequence samples, one row per event, sorted by ``(timestamp, user, item)``.

    ``user_seq_ts`` / ``cand_seq_ts`` (int64, 0 at padding) are the event timestamps of the
    history items (kept for leakage checks; ``None`` after ``from_frame`` unless the frame
    carried them). ``truncated``: events whose strictly-earlier history was longer than L (-1
    when unknown). ``field_sizes``: number of codes of each field (codes are 0..size-1).
    ``user_table`` / ``item_table`` (index ``user_id`` / ``item_id``, one int32 column per user /
    item field of ``fields``): the codes of every known user and item, what encoding a new event
    (serving) looks up; ``None`` when not known (e.g. after ``from_frame``).
    """

    label: np.ndarray
    user: np.ndarray
    timestamp: np.ndarray
    fields: dict[str, np.ndarray]
    user_seq: np.ndarray
    user_seq_len: np.ndarray
    cand_seq: np.ndarray
    cand_seq_len: np.ndarray
    split: np.ndarray
    content: np.ndarray
    truncated: int
    config: SequenceConfig = field(default_factory=SequenceConfig)
    field_sizes: dict[str, int] = field(default_factory=dict)
    true_prob: np.ndarray | None = None
    user_seq_ts: np.ndarray | None = None
    cand_seq_ts: np.ndarray | None = None
    user_table: pd.DataFrame | None = None
    item_table: pd.DataFrame | None = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.content.shape[0]) - 1

    def summary(self) -> dict[str, Any]:
        return {
            "events": len(self),
            "users": int(np.unique(self.user).size),
            "items_seen": int(np.unique(self.fields["item"]).size) if "item" in self.fields else None,
            "n_items": self.n_items,
            "positive_rate": float(self.label.mean()) if len(self) else float("nan"),
            "truncated": int(self.truncated),
            "rows_per_split": {name: int(np.count_nonzero(self.split == s)) for s, name in enumerate(("train", "validation", "test"))},
            "content_dim": int(self.content.shape[1]),
            "field_sizes": dict(self.field_sizes),
        }


# --------------------------------------------------------------------------------------------
def read_movielens(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(ratings, items, users)`` of a MovieLens-100K folder (``u.data``, ``u.item``, ``u.user``,
    each optionally ``.gz``).

    ratings: ``user_id, item_id, rating, timestamp``; items: ``item_id, title, release_date,
    video_release_date, url, genre_0..genre_18`` (u.genre order, see ``GENRE_NAMES``); users:
    ``user_id, age, gender, occupation, zip`` (zip as text).
    """
    folder = Path(folder)

    def find(name: str) -> Path:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.exists():
                return candidate
        raise ConfigError(f"read_movielens: {name}(.gz) not found in {folder}")

    ratings = pd.read_csv(find("u.data"), sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    items = pd.read_csv(
        find("u.item"), sep="|", header=None, encoding="ISO-8859-1",
        names=["item_id", "title", "release_date", "video_release_date", "url", *GENRE_COLUMNS],
        dtype={"title": str, "release_date": str, "video_release_date": str, "url": str},
        keep_default_na=False, na_values={"release_date": [""], "video_release_date": [""], "url": [""]},
    )
    users = pd.read_csv(
        find("u.user"), sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"],
        dtype={"gender": str, "occupation": str, "zip": str}, keep_default_na=False,
    )
    return ratings, items, users


# --------------------------------------------------------------------------------------------
def _release_years(items: pd.DataFrame) -> np.ndarray:
    """Release year per item row as float (NaN when missing or unparsable)."""
    if "release_date" not in items.columns:
        return np.full(len(items), np.nan)
    raw = items["release_date"].astype("string").fillna("")
    years = raw.str.extract(r"(\d{4})\s*$", expand=False)
    return pd.to_numeric(years, errors="coerce").to_numpy(dtype=np.float64)


def _item_ids(items: pd.DataFrame) -> np.ndarray:
    if "item_id" not in items.columns:
        raise ConfigError("items: missing column 'item_id'")
    ids = pd.to_numeric(items["item_id"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(ids) | (ids < 1) | (ids != np.round(ids))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"items: row {r}: item_id {items['item_id'].iloc[r]!r} is not a positive integer")
    ids = ids.astype(np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"items: item_id {int(uniq[counts > 1][0])} appears more than once")
    return ids


def item_content_vectors(items: pd.DataFrame, config: SequenceConfig | None = None) -> np.ndarray:
    """Frozen content vectors, float32 ``(max item id + 1, 21 + content_dim)``; row 0 (and any id
    absent from ``items``) is zero, row i belongs to item id i.

    Blocks: genre multi-hot (19, scaled to unit norm when any flag is set), release year
    (standardised over the items; missing -> 0) and its missing flag, title TF-IDF character
    n-grams (``char_wb``, 2..4) reduced by ``TruncatedSVD(content_dim, random_state=0)`` and
    scaled to unit norm (zero-padded when there are fewer usable components). Each item row is
    then L2-normalised. Deterministic for the same input.
    """
    config = config or SequenceConfig()
    ids = _item_ids(items)
    n = len(items)
    missing_cols = [c for c in GENRE_COLUMNS if c not in items.columns]
    if missing_cols:
        raise ConfigError(f"items: missing genre column(s) {missing_cols[:3]}... (expected {GENRE_COLUMNS[0]}..{GENRE_COLUMNS[-1]})")
    genres = items[list(GENRE_COLUMNS)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(np.float64)
    genres = (genres != 0).astype(np.float64)
    gnorm = np.sqrt(genres.sum(axis=1, keepdims=True))
    genres = np.divide(genres, gnorm, out=np.zeros_like(genres), where=gnorm > 0)

    years = _release_years(items)
    known = np.isfinite(years)
    year_block = np.zeros((n, 2))
    if known.any():
        mu = years[known].mean()
        sd = years[known].std()
        year_block[known, 0] = (years[known] - mu) / (sd if sd > 0 else 1.0)
    year_block[~known, 1] = 1.0

    d = int(config.content_dim)
    with _one_blas_thread():
        title_block = _title_block(items, n, d)
    vec = np.concatenate([genres, year_block, title_block], axis=1)
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.divide(vec, norms, out=np.zeros_like(vec), where=norms > 0)
    out = np.zeros((int(ids.max(initial=0)) + 1, vec.shape[1]), dtype=np.float32)
    out[ids] = vec.astype(np.float32)
    return out


def _title_block(items: pd.DataFrame, n: int, d: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    titles = items["title"].astype("string").fillna("").to_list() if "title" in items.columns else [""] * n
    title_block = np.zeros((n, d))
    if any(t.strip() for t in titles):
        tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, dtype=np.float64)
        x = tfidf.fit_transform(titles)
        comps = min(d, x.shape[1] - 1, n - 1)
        if comps >= 1:
            svd = TruncatedSVD(n_components=comps, random_state=0)
            z = svd.fit_transform(x)
            # SVD signs are arbitrary: fix them (largest-magnitude loading positive) for stability.
            signs = np.sign(svd.components_[np.arange(comps), np.abs(svd.components_).argmax(axis=1)])
            z = z * np.where(signs == 0, 1.0, signs)
            title_block[:, :comps] = z
        tnorm = np.linalg.norm(title_block, axis=1, keepdims=True)
        title_block = np.divide(title_block, tnorm, out=np.zeros_like(title_block), where=tnorm > 0)
    return title_block


# --------------------------------------------------------------------------------------------
def check_history(events_ts: np.ndarray, history_ts: np.ndarray, history_len: np.ndarray | None = None,
                  *, column: str = "user_seq") -> None:
    """Raise ``ConfigError`` naming the first row whose history holds an event that is not
    strictly before the row's own event (``history_ts[r, c] >= events_ts[r]``).

    ``history_ts`` is ``(n, width)``; with ``history_len`` only the last ``history_len[r]``
    entries of row r (left padding) are checked, otherwise every entry is.
    """
    ev = np.asarray(events_ts, dtype=np.int64).reshape(-1)
    h = np.asarray(history_ts, dtype=np.int64)
    if h.ndim != 2 or h.shape[0] != ev.shape[0]:
        raise ConfigError(f"{column}: history timestamps have shape {h.shape}; expected ({ev.shape[0]}, width)")
    width = h.shape[1]
    mask = np.ones(h.shape, dtype=bool)
    if history_len is not None:
        hl = np.asarray(history_len).reshape(-1)
        mask = np.arange(width)[None, :] >= (width - hl)[:, None]
    bad = mask & (h >= ev[:, None])
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size:
        r = int(rows[0])
        c = int(np.flatnonzero(bad[r])[0])
        raise ConfigError(
            f"{column}: row {r}: history entry {c} has timestamp {int(h[r, c])}, not strictly before the "
            f"event's timestamp {int(ev[r])} (future leakage)"
        )


def _check_padded(name: str, seq: np.ndarray, lengths: np.ndarray, content: np.ndarray) -> None:
    n, width = seq.shape
    lengths = np.asarray(lengths).reshape(-1)
    if lengths.shape[0] != n:
        raise ConfigError(f"{name}_len: has {lengths.shape[0]} rows; {name} has {n}")
    bad = (lengths < 0) | (lengths > width)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{name}_len: row {r}: length {int(lengths[r])} outside [0, {width}]")
    n_items = content.shape[0] - 1
    bad = (seq < 0) | (seq > n_items)
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ConfigError(f"{name}: row {r}: item id {int(seq[r][bad[r]][0])} outside [0, {n_items}]")
    filled = np.arange(width)[None, :] >= (width - lengths)[:, None]
    bad = (filled & (seq == 0)) | (~filled & (seq != 0))
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ConfigError(
            f"{name}: row {r}: expected {int(lengths[r])} non-zero ids right-aligned after left padding of "
            f"{width - int(lengths[r])} zeros; found {seq[r].tolist()}"
        )
    norms = np.linalg.norm(content.astype(np.float64), axis=1)
    bad = filled & (norms[seq] == 0)
    if bad.any():
        r = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ConfigError(f"{name}: row {r}: item {int(seq[r][bad[r]][0])} has no content vector (zero norm)")


def validate_sequences(data: SequenceData) -> None:
    """Check shapes, left padding, id ranges, content rows, labels, splits and (when the
    timestamps are present) that every history event is strictly earlier than its row's event.
    Raises ``ConfigError`` naming the column and the first bad row."""
    n = len(data)
    for name in ("user", "timestamp", "split", "user_seq_len", "cand_seq_len"):
        if np.asarray(getattr(data, name)).shape[0] != n:
            raise ConfigError(f"{name}: has {np.asarray(getattr(data, name)).shape[0]} rows; label has {n}")
    for name, arr in data.fields.items():
        if arr.shape[0] != n:
            raise ConfigError(f"fields[{name!r}]: has {arr.shape[0]} rows; label has {n}")
        bad = arr < 0
        if name in data.field_sizes:
            bad |= arr >= data.field_sizes[name]
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"fields[{name!r}]: row {r}: code {int(arr[r])} outside [0, {data.field_sizes.get(name, 'inf')})")
    bad = (data.label != 0) & (data.label != 1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"label: row {r}: {data.label[r]!r} is not 0/1")
    bad = (data.split < 0) | (data.split > 2)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"split: row {r}: {int(data.split[r])} is not 0/1/2")
    if data.content.ndim != 2 or data.content.shape[0] < 1 or np.any(data.content[0] != 0):
        raise ConfigError("content: must be (n_items + 1, d) with row 0 (padding) all zero")
    if data.user_seq.shape != (n, data.config.user_len):
        raise ConfigError(f"user_seq: shape {data.user_seq.shape}; expected ({n}, {data.config.user_len})")
    if data.cand_seq.shape != (n, data.config.candidate_len):
        raise ConfigError(f"cand_seq: shape {data.cand_seq.shape}; expected ({n}, {data.config.candidate_len})")
    _check_padded("user_seq", data.user_seq, data.user_seq_len, data.content)
    _check_padded("cand_seq", data.cand_seq, data.cand_seq_len, data.content)
    if "item" in data.fields:
        norms = np.linalg.norm(data.content.astype(np.float64), axis=1)
        item = data.fields["item"]
        bad = (item < 1) | (item > data.n_items)
        bad[~bad] = norms[item[~bad]] == 0
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"fields['item']: row {r}: item {int(item[r])} has no content vector")
    if data.user_seq_ts is not None:
        check_history(data.timestamp, data.user_seq_ts, data.user_seq_len, column="user_seq")
    if data.cand_seq_ts is not None:
        check_history(data.timestamp, data.cand_seq_ts, data.cand_seq_len, column="cand_seq")
    order_bad = np.flatnonzero(np.diff(data.timestamp) < 0)
    if order_bad.size:
        raise ConfigError(f"timestamp: row {int(order_bad[0]) + 1}: rows are not in time order")
    if n and np.any(np.diff(data.split.astype(np.int16)) < 0):
        r = int(np.flatnonzero(np.diff(data.split.astype(np.int16)) < 0)[0]) + 1
        raise ConfigError(f"split: row {r}: splits are not chronological (train, then validation, then test)")


# --------------------------------------------------------------------------------------------
def _split_codes(n: int, fractions: tuple[float, float, float]) -> np.ndarray:
    bounds = np.round(np.cumsum(fractions)[:2] * n).astype(np.int64)
    return np.searchsorted(bounds, np.arange(n), side="right").astype(np.int8)


def _one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _candidate_block(items_u: np.ndarray, hist: np.ndarray, content: np.ndarray, k: int,
                     history: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For one user's events (user order), positions (into ``history``, default the user's events
    themselves) of the B_c items of each event, ``(m, k)`` with -1 padding, right-aligned and
    chronological; and the lengths. ``hist[e]``: how many leading items of ``history`` are
    strictly earlier than event ``e``; ``items_u[e]``: its candidate."""
    history = items_u if history is None else history
    m = items_u.shape[0]
    pos = np.full((m, k), -1, dtype=np.int64)
    lengths = np.minimum(hist, k)
    short = np.flatnonzero((hist > 0) & (hist <= k))
    if short.size:
        cols = np.arange(k)[None, :] - (k - hist[short])[:, None]
        pos[short] = np.where(cols >= 0, cols, -1)
    long_rows = np.flatnonzero(hist > k)
    if long_rows.size:
        width = int(hist[long_rows].max())
        c = content[items_u].astype(np.float64)
        sims = np.round(c[long_rows] @ content[history[:width]].astype(np.float64).T, _TIE_DECIMALS)
        sims[np.arange(width)[None, :] >= hist[long_rows][:, None]] = -np.inf
        # k-th largest score per row; every higher score is taken, then the most recent ties
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k]
        take = sims > kth
        need = k - take.sum(axis=1, keepdims=True)
        ties = sims == kth
        from_right = np.cumsum(ties[:, ::-1], axis=1)[:, ::-1]  # ties at or after each column
        take |= ties & (from_right <= need)
        pos[long_rows] = np.nonzero(take)[1].reshape(long_rows.size, k)  # row-major: chronological
    return pos, lengths


def _assemble(user: np.ndarray, item: np.ndarray, ts: np.ndarray, label: np.ndarray, content: np.ndarray,
              fields: dict[str, np.ndarray], field_sizes: dict[str, int], config: SequenceConfig,
              true_prob: np.ndarray | None = None) -> SequenceData:
    """Sort events, build B_u / B_c and the chronological split (arrays in raw row order)."""
    n = user.shape[0]
    order = np.lexsort((item, user, ts))
    user, item, ts, label = user[order], item[order], ts[order], label[order]
    fields = {k: np.ascontiguousarray(v[order]).astype(np.int32) for k, v in fields.items()}
    if true_prob is not None:
        true_prob = true_prob[order]
    L, k = config.user_len, config.candidate_len

    p = np.lexsort((item, ts, user))  # user-major view of the sorted events
    u_s, t_s, i_s = user[p], ts[p], item[p]
    idx = np.arange(n)
    new_user = np.r_[True, u_s[1:] != u_s[:-1]] if n else np.zeros(0, bool)
    new_run = new_user | (np.r_[True, t_s[1:] != t_s[:-1]] if n else np.zeros(0, bool))
    ustart = np.maximum.accumulate(np.where(new_user, idx, 0)) if n else idx
    hstop = np.maximum.accumulate(np.where(new_run, idx, 0)) if n else idx  # first event at the same ts
    # behaviours: positions (user-major) of the events that can be history, and per event how
    # many of them precede its user's first event / its own timestamp run
    behaviour = np.ones(n, dtype=bool) if config.behaviours == "all" else label[p].astype(bool)
    bpos = np.flatnonzero(behaviour)
    before = np.r_[0, np.cumsum(behaviour)]  # behaviours at positions < i
    lo, hi = before[ustart], before[hstop]
    full = hi - lo  # strictly-earlier history length
    useq_len = np.minimum(full, L)
    cols = hi[:, None] - L + np.arange(L)[None, :]
    filled = np.arange(L)[None, :] >= (L - useq_len)[:, None]
    cols = bpos[np.where(filled, cols, 0)] if bpos.size else np.zeros((n, L), dtype=np.int64)
    user_seq = np.where(filled, i_s[cols], 0).astype(np.int32)
    user_seq_ts = np.where(filled, t_s[cols], 0).astype(np.int64)

    cand_pos = np.full((n, k), -1, dtype=np.int64)
    cand_len = np.zeros(n, dtype=np.int64)
    starts = np.flatnonzero(new_user)
    ends = np.r_[starts[1:], n]
    with _one_blas_thread():  # many small products: threading only costs here
        for a, b in zip(starts.tolist(), ends.tolist()):
            own = bpos[before[a]:before[b]]  # the user's behaviours (user-major positions)
            pos, ln = _candidate_block(i_s[a:b], full[a:b], content, k, history=i_s[own])
            cand_pos[a:b] = np.where(pos >= 0, own[np.maximum(pos, 0)] if own.size else 0, -1)
            cand_len[a:b] = ln
    cfilled = cand_pos >= 0
    safe = np.where(cfilled, cand_pos, 0)
    cand_seq = np.where(cfilled, i_s[safe] if n else safe, 0).astype(np.int32)
    cand_seq_ts = np.where(cfilled, t_s[safe] if n else safe, 0).astype(np.int64)

    def back(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        out[p] = x
        return out

    return SequenceData(
        label=label.astype(np.int8),
        user=user.astype(np.int32),
        timestamp=ts.astype(np.int64),
        fields=fields,
        user_seq=back(user_seq),
        user_seq_len=back(useq_len.astype(np.int32)),
        cand_seq=back(cand_seq),
        cand_seq_len=back(cand_len.astype(np.int32)),
        split=_split_codes(n, config.split_fractions),
        content=content,
        truncated=int(np.count_nonzero(full > L)),
        config=config,
        field_sizes=dict(field_sizes),
        true_prob=None if true_prob is None else true_prob.astype(np.float64),
        user_seq_ts=back(user_seq_ts),
        cand_seq_ts=back(cand_seq_ts),
    )


def _int_column(frame: pd.DataFrame, name: str, what: str) -> np.ndarray:
    if name not in frame.columns:
        raise ConfigError(f"{what}: missing column {name!r}")
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        value = raw.iloc[r]
        value = value.item() if isinstance(value, np.generic) else value
        raise ConfigError(f"{what}: row {r}: {name} {value!r} is not an integer")
    return values.astype(np.int64)


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    vocab = sorted(set(values.tolist()))
    lookup = {v: i for i, v in enumerate(vocab)}
    return np.array([lookup[v] for v in values.tolist()], dtype=np.int32), len(vocab)


def _user_tables(users: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, int]]:
    for col in ("user_id", "age", "gender", "occupation", "zip"):
        if col not in users.columns:
            raise ConfigError(f"users: missing column {col!r}")
    ids = _int_column(users, "user_id", "users")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ConfigError(f"users: user_id {int(uniq[counts > 1][0])} appears more than once")
    age = pd.to_numeric(users["age"], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(age).all():
        r = int(np.flatnonzero(~np.isfinite(age))[0])
        raise ConfigError(f"users: row {r} (user {int(ids[r])}): age {users['age'].iloc[r]!r} is not a number")
    tables = {"age_bucket": np.searchsorted(np.asarray(AGE_EDGES), age, side="right").astype(np.int32)}
    sizes = {"age_bucket": len(AGE_EDGES) + 1}
    tables["gender"], sizes["gender"] = _codes(users["gender"].astype(str).str.strip().str.upper())
    tables["occupation"], sizes["occupation"] = _codes(users["occupation"].astype(str).str.strip().str.lower())
    zp = users["zip"].astype(str).str.strip().str[:1].str.upper().replace("", "?")
    tables["zip_prefix"], sizes["zip_prefix"] = _codes(zp)
    return ids, tables, sizes


def _item_tables(items: pd.DataFrame, ids: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    genres = items[list(GENRE_COLUMNS)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy() != 0
    first = np.where(genres.any(axis=1), genres.argmax(axis=1), len(GENRE_COLUMNS)).astype(np.int32)
    years = _release_years(items)
    known = np.isfinite(years)
    bucket = np.zeros(len(items), dtype=np.int32)
    size = 1
    if known.any():
        b = (years[known] // 5).astype(np.int64)
        bucket[known] = (b - b.min() + 1).astype(np.int32)
        size = int(bucket.max()) + 1
    return ({"item": ids.astype(np.int32), "genre": first, "release_year_bucket": bucket},
            {"item": int(ids.max(initial=0)) + 1, "genre": len(GENRE_COLUMNS) + 1, "release_year_bucket": size})


def build_movielens_sequences(ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame,
                              config: SequenceConfig | None = None, *, content: np.ndarray | None = None) -> SequenceData:
    """EST samples of MovieLens ratings (see the module docstring); ``content`` defaults to
    ``item_content_vectors(items, config)``.

    Raises ``ConfigError`` naming the row (0-based position in ``ratings``) and value for a
    non-integer rating / id / timestamp, an item id missing from ``items``, a user missing from
    ``users``, and naming the item for an item without a content vector.
    """
    config = config or SequenceConfig()
    user = _int_column(ratings, "user_id", "ratings")
    item = _int_column(ratings, "item_id", "ratings")
    rating = _int_column(ratings, "rating", "ratings")
    ts = _int_column(ratings, "timestamp", "ratings")

    item_ids = _item_ids(items)
    known = np.isin(item, item_ids)
    if not known.all():
        r = int(np.flatnonzero(~known)[0])
        raise ConfigError(f"ratings: row {r}: item_id {int(item[r])} is not in items")
    user_ids, user_tables, user_sizes = _user_tables(users)
    known = np.isin(user, user_ids)
    if not known.all():
        r = int(np.flatnonzero(~known)[0])
        raise ConfigError(f"ratings: row {r}: user_id {int(user[r])} is not in users")

    if content is None:
        content = item_content_vectors(items, config)
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 2:
        raise ConfigError(f"content: expected a 2-d (n_items + 1, d) array; got shape {content.shape}")
    norms = np.linalg.norm(content.astype(np.float64), axis=1)
    used = np.unique(item)
    missing = used[(used >= content.shape[0])]
    if missing.size == 0:
        missing = used[norms[used] == 0]
    if missing.size:
        it = int(missing[0])
        r = int(np.flatnonzero(item == it)[0])
        raise ConfigError(f"content: item {it} (ratings row {r}) has no content vector "
                          f"({'no row' if it >= content.shape[0] else 'zero vector'} in content of {content.shape[0]} rows)")

    item_tables, item_sizes = _item_tables(items, item_ids)
    urow = pd.Index(user_ids).get_indexer(user)
    irow = pd.Index(item_ids).get_indexer(item)
    fields = {name: user_tables[name][urow] for name in USER_FIELDS}
    fields.update({name: item_tables[name][irow] for name in ITEM_FIELDS})
    label = (rating >= config.label_threshold).astype(np.int8)
    data = _assemble(user, item, ts, label, content, fields, {**user_sizes, **item_sizes}, config)
    return dataclasses.replace(data, user_table=_table("user_id", user_ids, user_tables),
                               item_table=_table("item_id", item_ids, item_tables))


def _table(index: str, ids: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({k: np.asarray(v, dtype=np.int32) for k, v in columns.items()},
                        index=pd.Index(np.asarray(ids, dtype=np.int64), name=index))


# --------------------------------------------------------------------------------------------
def synthetic_sequences(n_users: int = 300, n_items: int = 400, events_per_user: int = 40,
                        config: SequenceConfig | None = None, seed: int = 0, *, n_clusters: int = 8,
                        signal: float = 4.0, drift: float = 0.15, recent: int = 10) -> SequenceData:
    """Synthetic EST samples with a planted click probability ``true_prob``.

    Items belong to ``n_clusters`` content clusters (content = centroid + noise, unit norm,
    ``content_dim`` wide); each user's preferred cluster drifts (Markov: with probability
    ``drift`` it jumps to a random cluster before each event); 75% of a user's events pick an
    item of the preferred cluster, the rest a uniform item. Timestamps interleave users, with
    about 10% ties. ``logit = bias + signal * cos(candidate content, mean content of the last
    ``recent`` items of B_u) + age/gender/occupation effects``; ``label ~ Bernoulli(sigmoid(logit))``.
    Field ``genre`` is the item's cluster.
    """
    config = config or SequenceConfig()
    if config.behaviours != "all":
        raise ConfigError("synthetic_sequences: behaviours must be 'all' (its labels are drawn from the sequences)")
    for name, v in (("n_users", n_users), ("n_items", n_items), ("events_per_user", events_per_user), ("n_clusters", n_clusters)):
        if int(v) < 1:
            raise ConfigError(f"synthetic_sequences: {name} must be >= 1; got {v!r}")
    rng = np.random.default_rng(seed)
    d = config.content_dim
    centroids = rng.normal(size=(n_clusters, d))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cluster = rng.integers(0, n_clusters, size=n_items)
    vec = centroids[cluster] + 0.6 * rng.normal(size=(n_items, d)) / np.sqrt(d)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    content = np.zeros((n_items + 1, d), dtype=np.float32)
    content[1:] = vec
    members = [np.flatnonzero(cluster == c) + 1 for c in range(n_clusters)]
    members = [m if m.size else np.arange(1, n_items + 1) for m in members]

    e = events_per_user
    pref = np.empty((n_users, e), dtype=np.int64)
    pref[:, 0] = rng.integers(0, n_clusters, size=n_users)
    jumps = rng.random((n_users, e)) < drift
    targets = rng.integers(0, n_clusters, size=(n_users, e))
    for t in range(1, e):
        pref[:, t] = np.where(jumps[:, t], targets[:, t], pref[:, t - 1])
    from_pref = rng.random((n_users, e)) < 0.75
    uniform = rng.integers(1, n_items + 1, size=(n_users, e))
    pick = rng.random((n_users, e))
    in_cluster = np.empty((n_users, e), dtype=np.int64)
    for c in range(n_clusters):
        sel = pref == c
        in_cluster[sel] = members[c][(pick[sel] * members[c].size).astype(np.int64)]
    item = np.where(from_pref, in_cluster, uniform).reshape(-1)
    step = np.where(rng.random((n_users, e)) < 0.1, 0, rng.integers(1, 86_400, size=(n_users, e)))
    start = rng.integers(0, 2_000_000, size=(n_users, 1))
    ts = (start + np.cumsum(step, axis=1)).reshape(-1) + 1_000_000_000
    user = np.repeat(np.arange(1, n_users + 1), e)

    sizes = {"age_bucket": 7, "gender": 2, "occupation": 21, "zip_prefix": 10}
    profile = {name: rng.integers(0, s, size=n_users + 1) for name, s in sizes.items()}
    effects = {name: rng.normal(0.0, 0.3, size=s) for name, s in sizes.items() if name != "zip_prefix"}
    year_bucket = rng.integers(1, 16, size=n_items + 1)
    fields = {name: profile[name][user] for name in USER_FIELDS}
    fields.update({"item": item, "genre": cluster[item - 1], "release_year_bucket": year_bucket[item]})
    field_sizes = {**sizes, "item": n_items + 1, "genre": n_clusters, "release_year_bucket": 16}

    data = _assemble(user.astype(np.int64), item.astype(np.int64), ts.astype(np.int64), np.zeros(user.size, np.int8),
                     content, fields, field_sizes, config)
    r = min(recent, config.user_len)
    last = data.user_seq[:, -r:]
    cnt = np.minimum(data.user_seq_len, r).astype(np.float64)
    mean = content[last].astype(np.float64).sum(axis=1)
    mnorm = np.linalg.norm(mean, axis=1)
    cand = content[data.fields["item"]].astype(np.float64)
    cos = np.divide((cand * mean).sum(axis=1), mnorm, out=np.zeros(len(data)), where=(mnorm > 0) & (cnt > 0))
    logit = signal * cos
    logit += sum(effects[name][data.fields[name]] for name in effects)
    logit -= logit.mean()
    prob = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(len(data)) < prob).astype(np.int8)
    users = np.arange(1, n_users + 1)
    items_ids = np.arange(1, n_items + 1)
    return dataclasses.replace(
        data, label=label, true_prob=prob,
        user_table=_table("user_id", users, {name: profile[name][users] for name in USER_FIELDS}),
        item_table=_table("item_id", items_ids, {"item": items_ids, "genre": cluster, "release_year_bucket": year_bucket[1:]}),
    )


def bayes_auc(data: SequenceData) -> float:
    """AUC of the planted ``true_prob`` on the test split (split 2)."""
    if data.true_prob is None:
        raise ConfigError("bayes_auc: these sequences have no true_prob (only synthetic_sequences plants one)")
    test = data.split == 2
    return roc_auc(data.label[test], data.true_prob[test])


# --------------------------------------------------------------------------------------------
def to_frame(data: SequenceData, *, include_timestamps: bool = False) -> pd.DataFrame:
    """Flat frame: ``label, user, timestamp, split``, the fields, ``user_seq_len, cand_seq_len``,
    ``true_prob`` (when present), ``user_seq_0..L-1``, ``cand_seq_0..k-1`` (int32) and, with
    ``include_timestamps``, ``user_seq_ts_*`` / ``cand_seq_ts_*`` (int64). ``truncated`` and the
    field sizes travel in ``frame.attrs``."""
    overlap = set(data.fields) & {*_SCALARS, "true_prob"}
    if overlap:
        raise ConfigError(f"to_frame: field name(s) {sorted(overlap)} clash with scalar columns")
    cols: dict[str, np.ndarray] = {
        "label": data.label, "user": data.user, "timestamp": data.timestamp, "split": data.split,
        **{name: arr.astype(np.int32) for name, arr in data.fields.items()},
        "user_seq_len": data.user_seq_len.astype(np.int32), "cand_seq_len": data.cand_seq_len.astype(np.int32),
    }
    if data.true_prob is not None:
        cols["true_prob"] = data.true_prob
    blocks = [("user_seq", data.user_seq, np.int32), ("cand_seq", data.cand_seq, np.int32)]
    if include_timestamps:
        for name in ("user_seq_ts", "cand_seq_ts"):
            if getattr(data, name) is None:
                raise ConfigError(f"to_frame: {name} is not available on these sequences")
            blocks.append((name, getattr(data, name), np.int64))
    for name, arr, dtype in blocks:
        for j in range(arr.shape[1]):
            cols[f"{name}_{j}"] = arr[:, j].astype(dtype)
    frame = pd.DataFrame(cols)
    frame.attrs.update({"truncated": int(data.truncated), "field_sizes": dict(data.field_sizes),
                        "fields": list(data.fields)})
    return frame


def from_frame(df: pd.DataFrame, content: np.ndarray, config: SequenceConfig | None = None, *,
               truncated: int | None = None, field_sizes: dict[str, int] | None = None) -> SequenceData:
    """Inverse of ``to_frame``. Field columns are every column that is neither a scalar, ``true_prob``
    nor a sequence column. ``truncated`` / ``field_sizes`` come from the arguments, else from
    ``df.attrs``, else -1 (unknown) / max code + 1."""
    config = config or SequenceConfig()
    seq_re = re.compile(r"^(user_seq|cand_seq|user_seq_ts|cand_seq_ts)_\d+$")
    missing = [c for c in _SCALARS if c not in df.columns]
    if missing:
        raise ConfigError(f"from_frame: missing column(s) {missing}")

    def block(name: str, width: int, dtype: Any, required: bool = True) -> np.ndarray | None:
        names = [f"{name}_{j}" for j in range(width)]
        absent = [c for c in names if c not in df.columns]
        if absent:
            if not required and len(absent) == width:
                return None
            raise ConfigError(f"from_frame: missing column {absent[0]!r} (config expects width {width})")
        extra = f"{name}_{width}"
        if extra in df.columns:
            raise ConfigError(f"from_frame: column {extra!r} is wider than the configured width {width}")
        return df[names].to_numpy(dtype=dtype)

    fields_order = df.attrs.get("fields") or [c for c in df.columns if c not in _SCALARS and c != "true_prob" and not seq_re.match(c)]
    fields = {name: df[name].to_numpy(dtype=np.int32) for name in fields_order}
    sizes = field_sizes if field_sizes is not None else df.attrs.get("field_sizes")
    if not sizes:
        sizes = {name: int(arr.max(initial=-1)) + 1 for name, arr in fields.items()}
    trunc = truncated if truncated is not None else df.attrs.get("truncated", -1)
    return SequenceData(
        label=df["label"].to_numpy(dtype=np.int8),
        user=df["user"].to_numpy(dtype=np.int32),
        timestamp=df["timestamp"].to_numpy(dtype=np.int64),
        fields=fields,
        user_seq=block("user_seq", config.user_len, np.int32),
        user_seq_len=df["user_seq_len"].to_numpy(dtype=np.int32),
        cand_seq=block("cand_seq", config.candidate_len, np.int32),
        cand_seq_len=df["cand_seq_len"].to_numpy(dtype=np.int32),
        split=df["split"].to_numpy(dtype=np.int8),
        content=np.asarray(content, dtype=np.float32),
        truncated=int(trunc),
        config=config,
        field_sizes=dict(sizes),
        true_prob=df["true_prob"].to_numpy(dtype=np.float64) if "true_prob" in df.columns else None,
        user_seq_ts=block("user_seq_ts", config.user_len, np.int64, required=False),
        cand_seq_ts=block("cand_seq_ts", config.candidate_len, np.int64, required=False),
    )


def sequence_inputs(data: SequenceData) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The model-side view of ``data``: a :class:`~ttsctr.features.SequenceFeatureSpec` and, per
    split (``train``, ``validation``, ``test``), ``(x, y)`` with ``x`` int32 global ids in the
    spec's column order (the non-behavioural fields, then ``user_seq``, then ``cand_seq`` slots,
    item ``i`` of a slot = slot offset + ``i``, padding = the offset) and ``y`` float32 labels.

    Every backbone of the registry trains on it through the usual trainer: the sequence backbones
    (``est``, ``seq_mean_pool``) read the slots as sequences, the tabular ones as fields.
    """
    from ttsctr.features import SequenceFeatureSpec

    names = list(data.fields)
    missing = [n for n in names if n not in data.field_sizes]
    if missing:
        raise ConfigError(f"sequence_inputs: no vocabulary size for fields {missing}")
    length, k = data.user_seq.shape[1], data.cand_seq.shape[1]
    slots = [f"user_seq_{i}" for i in range(length)] + [f"cand_seq_{i}" for i in range(k)]
    sizes = [int(data.field_sizes[n]) for n in names] + [data.n_items + 1] * (length + k)
    spec = SequenceFeatureSpec(tuple(names + slots), tuple(sizes), num_context_fields=len(names), user_len=length,
                               candidate_len=k, content=data.content)
    offsets = np.asarray(spec.offsets, dtype=np.int64)
    local = np.concatenate([np.stack([data.fields[n] for n in names], axis=1), data.user_seq, data.cand_seq], axis=1)
    x = (local.astype(np.int64) + offsets[None, :]).astype(np.int32)
    out = {}
    for code, split in enumerate(("train", "validation", "test")):
        rows = data.split == code
        out[split] = (np.ascontiguousarray(x[rows]), data.label[rows].astype(np.float32))
    return spec, out
