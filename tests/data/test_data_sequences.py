"""EST behaviour sequences (ttsctr.data.sequences): leakage, B_c retrieval, splits, content, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from projecthelpers import shared_file

from ttsctr.data.sequences import (
    GENRE_COLUMNS,
    SequenceConfig,
    bayes_auc,
    build_movielens_sequences,
    check_history,
    from_frame,
    item_content_vectors,
    read_movielens,
    synthetic_sequences,
    to_frame,
    validate_sequences,
)
from ttsctr.errors import ConfigError
from ttsctr.metrics import roc_auc

TIE_DECIMALS = 9


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def movielens():
    for name in ("u.data.gz", "u.item.gz", "u.user.gz"):
        shared_file("movielens-100k", name)
    ratings, items, users = read_movielens(shared_file("movielens-100k", "u.data.gz").parent)
    return ratings, items, users, build_movielens_sequences(ratings, items, users)


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_sequences()


def tiny_movielens():
    """4 items, 3 users; user 1 has two events at the same timestamp (200)."""
    flags = np.zeros((4, len(GENRE_COLUMNS)), dtype=int)
    flags[0, [3, 4, 5]] = 1
    flags[1, 8] = 1
    flags[3, [1, 16]] = 1  # item 4: Action|Thriller; item 3: no genre at all
    items = pd.DataFrame({
        "item_id": [1, 2, 3, 4],
        "title": ["Toy Story (1995)", "Cité des enfants perdus (1995)", "Nothing (1990)", "GoldenEye (1995)"],
        "release_date": ["01-Jan-1995", "01-Jan-1995", None, "01-Jan-1995"],
        "video_release_date": [None] * 4, "url": [None] * 4,
        **{c: flags[:, j] for j, c in enumerate(GENRE_COLUMNS)},
    })
    users = pd.DataFrame({"user_id": [1, 2, 3], "age": [24, 53, 17], "gender": ["M", "F", "M"],
                          "occupation": ["technician", "other", "writer"], "zip": ["85711", "T8H1N", "32067"]})
    ratings = pd.DataFrame({"user_id": [1, 1, 2, 1, 3, 1, 1],
                            "item_id": [1, 2, 1, 3, 4, 4, 2],
                            "rating": [5, 3, 4, 1, 4, 2, 5],
                            "timestamp": [300, 100, 200, 200, 50, 200, 400]})
    return ratings, items, users


TINY = SequenceConfig(user_len=2, candidate_len=1, content_dim=4)


# ------------------------------------------------------------------------------------ references
def user_events(data, u):
    """Row indices of user ``u`` in data order (= (timestamp, item) order within the user)."""
    return np.flatnonzero(data.user == u)


def reference_user_seq(data, u, L):
    rows = user_events(data, u)
    ts, it = data.timestamp[rows], data.fields["item"][rows]
    out = []
    for t in ts.tolist():
        hist = [int(i) for tt, i in zip(ts.tolist(), it.tolist()) if tt < t][-L:]
        out.append([0] * (L - len(hist)) + hist)
    return rows, np.array(out, dtype=np.int64).reshape(len(rows), L)


def reference_cand_seq(data, row, k):
    u, t, cand = data.user[row], data.timestamp[row], data.fields["item"][row]
    rows = user_events(data, u)
    hist = [(p, int(data.fields["item"][r])) for p, r in enumerate(rows) if data.timestamp[r] < t]
    c = data.content.astype(np.float64)
    scored = [(float(np.round(c[i] @ c[cand], TIE_DECIMALS)), p, i) for p, i in hist]
    top = sorted(scored, key=lambda s: (-s[0], -s[1]))[:k]
    chosen = [i for _, _, i in sorted(top, key=lambda s: s[1])]
    return [0] * (k - len(chosen)) + chosen, hist


def history_timestamps(ratings):
    return {(int(u), int(i)): int(t) for u, i, t in ratings[["user_id", "item_id", "timestamp"]].itertuples(index=False)}


# ------------------------------------------------------------------------------------ (a) leakage
def test_movielens_no_future_leakage_and_user_seq_matches_reference(movielens):
    ratings, _, _, data = movielens
    validate_sequences(data)
    check_history(data.timestamp, data.user_seq_ts, data.user_seq_len)
    check_history(data.timestamp, data.cand_seq_ts, data.cand_seq_len, column="cand_seq")
    when = history_timestamps(ratings)  # (user, item) is unique in MovieLens
    rng = np.random.default_rng(0)
    for r in rng.choice(len(data), size=200, replace=False).tolist():
        u, t = int(data.user[r]), int(data.timestamp[r])
        for seq, n in ((data.user_seq[r], data.user_seq_len[r]), (data.cand_seq[r], data.cand_seq_len[r])):
            items = seq[seq.size - n:].tolist() if n else []
            assert 0 not in items
            assert all(when[(u, i)] < t for i in items), (r, items)
    for u in rng.choice(np.unique(data.user), size=20, replace=False).tolist():
        rows, ref = reference_user_seq(data, u, data.config.user_len)
        np.testing.assert_array_equal(data.user_seq[rows], ref)
        np.testing.assert_array_equal(data.user_seq_len[rows], (ref != 0).sum(axis=1))


def test_synthetic_no_future_leakage_and_user_seq_matches_reference(synthetic):
    data = synthetic
    validate_sequences(data)
    rng = np.random.default_rng(1)
    assert np.any(np.diff(data.timestamp) == 0)  # same-timestamp events exist and are handled
    for u in rng.choice(np.unique(data.user), size=20, replace=False).tolist():
        rows, ref = reference_user_seq(data, u, data.config.user_len)
        np.testing.assert_array_equal(data.user_seq[rows], ref)
    sample = rng.choice(len(data), size=200, replace=False)
    filled = np.arange(data.config.user_len)[None, :] >= (data.config.user_len - data.user_seq_len[sample])[:, None]
    assert np.all(np.where(filled, data.user_seq_ts[sample] < data.timestamp[sample][:, None], True))


def test_same_timestamp_events_are_not_history():
    data = build_movielens_sequences(*tiny_movielens(), TINY)
    validate_sequences(data)
    # user 1 events in time order: (100, item 2), (200, item 3), (200, item 4), (300, item 1), (400, item 2)
    rows = user_events(data, 1)
    assert data.timestamp[rows].tolist() == [100, 200, 200, 300, 400]
    assert data.user_seq[rows].tolist() == [[0, 0], [0, 2], [0, 2], [3, 4], [4, 1]]
    assert data.user_seq_len[rows].tolist() == [0, 1, 1, 2, 2]


def test_liked_behaviours_keep_only_earlier_positive_events():
    data = build_movielens_sequences(*tiny_movielens(), dataclasses.replace(TINY, behaviours="liked"))
    validate_sequences(data)
    # user 1 in time order: (100, item 2, rating 3), (200, 3, 1), (200, 4, 2), (300, 1, 5), (400, 2, 5)
    rows = user_events(data, 1)
    assert data.label[rows].tolist() == [0, 0, 0, 1, 1]
    assert data.user_seq[rows].tolist() == [[0, 0], [0, 0], [0, 0], [0, 0], [0, 1]]  # only item 1 was liked before
    assert data.cand_seq[rows].tolist() == [[0], [0], [0], [0], [1]]
    with pytest.raises(ConfigError, match="behaviours must be one of"):
        SequenceConfig(behaviours="clicked")
    with pytest.raises(ConfigError, match="behaviours must be 'all'"):
        synthetic_sequences(n_users=5, n_items=5, events_per_user=3, config=SequenceConfig(behaviours="liked"))


# ------------------------------------------------------------------------------------ (b) B_c
@pytest.mark.parametrize("which", ["movielens", "synthetic"])
def test_candidate_sequence_is_top_k_of_earlier_history(which, request):
    fixture = request.getfixturevalue(which)
    data = fixture[-1] if isinstance(fixture, tuple) else fixture
    k = data.config.candidate_len
    rng = np.random.default_rng(2)
    longest = np.flatnonzero(data.user_seq_len == data.user_seq_len.max())
    long_rows = np.flatnonzero(data.user_seq_len > k)
    short_rows = np.flatnonzero((data.user_seq_len > 0) & (data.user_seq_len <= k))
    c = data.content.astype(np.float64)
    picks = [rng.choice(longest, 6, replace=False), rng.choice(long_rows, 6, replace=False), rng.choice(short_rows, 4, replace=False)]
    for r in np.concatenate(picks).tolist():
        ref, hist = reference_cand_seq(data, r, k)
        assert data.cand_seq[r].tolist() == ref, r
        assert data.cand_seq_len[r] == min(len(hist), k)
        got = [i for i in data.cand_seq[r].tolist() if i]
        assert set(got) <= {i for _, i in hist}
        # every chosen item is at least as similar as every item left out
        cand = data.fields["item"][r]
        left = [i for _, i in hist if i not in got]
        if left and len(set(got)) == len(got):
            assert min(c[got] @ c[cand]) >= max(c[left] @ c[cand]) - 1e-6


def test_candidate_ties_prefer_recent():
    # identical content for every item: B_c must be the k most recent earlier events
    data = synthetic_sequences(n_users=5, n_items=20, events_per_user=30, config=SequenceConfig(user_len=8, candidate_len=3, content_dim=4))
    same = np.zeros_like(data.content)
    same[1:, 0] = 1.0
    ratings = pd.DataFrame({"user_id": data.user, "item_id": data.fields["item"], "rating": 4, "timestamp": data.timestamp})
    items = pd.DataFrame({"item_id": np.arange(1, 21), "title": [f"t{i}" for i in range(20)], "release_date": None,
                          **{col: 0 for col in GENRE_COLUMNS}})
    users = pd.DataFrame({"user_id": np.arange(1, 6), "age": 30, "gender": "F", "occupation": "x", "zip": "1"})
    tied = build_movielens_sequences(ratings, items, users, data.config, content=same)
    assert len(tied) == len(data)
    full = tied.user_seq_len == 8
    np.testing.assert_array_equal(tied.cand_seq[full], tied.user_seq[full][:, -3:])


# ------------------------------------------------------------------------------------ (c) truncation, empty history
def test_truncation_counted_and_empty_history_kept(movielens):
    ratings, _, _, data = movielens
    L = data.config.user_len
    r = ratings.sort_values(["user_id", "timestamp"])
    earlier = r.groupby("user_id")["timestamp"].transform(lambda s: np.searchsorted(s.to_numpy(), s.to_numpy(), side="left"))
    assert data.truncated == int((earlier > L).sum())
    assert len(data) == len(ratings)
    empty = data.user_seq_len == 0
    assert empty.sum() >= np.unique(data.user).size  # at least each user's first event
    assert not data.user_seq[empty].any() and not data.cand_seq[empty].any()
    assert (data.cand_seq_len[empty] == 0).all()


def test_truncation_and_lonely_user_on_tiny_data():
    data = build_movielens_sequences(*tiny_movielens(), TINY)
    # user 1's histories: 0, 1, 1, 3, 4 earlier events -> two exceed L=2
    assert data.truncated == 2
    lonely = user_events(data, 3)  # a single event, kept with an empty history
    assert lonely.size == 1
    assert data.user_seq[lonely].tolist() == [[0, 0]] and data.cand_seq[lonely].tolist() == [[0]]
    assert data.user_seq_len[lonely].tolist() == [0] and data.cand_seq_len[lonely].tolist() == [0]
    assert data.label.dtype == np.int8 and data.label.tolist() == [1, 0, 0, 0, 1, 1, 1]  # rating >= 4, time order
    assert data.fields["age_bucket"][lonely].tolist() == [0]  # 17 years old -> "<18"


# ------------------------------------------------------------------------------------ (d) split
@pytest.mark.parametrize("which", ["movielens", "synthetic"])
def test_chronological_split(which, request):
    fixture = request.getfixturevalue(which)
    data = fixture[-1] if isinstance(fixture, tuple) else fixture
    ts = data.timestamp
    assert ts[data.split == 0].max() <= ts[data.split == 1].min() <= ts[data.split == 2].min()
    n = len(data)
    counts = np.bincount(data.split, minlength=3)
    assert abs(counts[0] - 0.8 * n) <= 1 and abs(counts[1] - 0.1 * n) <= 1


# ------------------------------------------------------------------------------------ (e) content
def test_content_vectors(movielens):
    _, items, _, data = movielens
    c = data.content
    assert c.dtype == np.float32 and c.shape == (1683, 19 + 2 + 32)
    assert not c[0].any()
    np.testing.assert_allclose(np.linalg.norm(c[1:], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(item_content_vectors(items, SequenceConfig()), c)
    # genres dominate similarity between two animated children's comedies (Toy Story, Aladdin...)
    assert c[1] @ c[95] > c[1] @ c[2]


def test_content_vectors_tiny_data_and_config_validation():
    _, items, _ = tiny_movielens()
    c = item_content_vectors(items, TINY)
    assert c.shape == (5, 19 + 2 + 4) and not c[0].any()
    np.testing.assert_allclose(np.linalg.norm(c[1:], axis=1), 1.0, atol=1e-6)
    assert c[3, 20] > 0  # item 3: unknown release year -> missing flag set
    np.testing.assert_array_equal(c, item_content_vectors(items, TINY))
    for bad, field in (({"user_len": 0}, "user_len"), ({"candidate_len": -1}, "candidate_len"),
                       ({"split_fractions": (0.5, 0.2, 0.2)}, "split_fractions"), ({"content_dim": 1.5}, "content_dim"),
                       ({"label_threshold": "4"}, "label_threshold")):
        with pytest.raises(ConfigError, match=field):
            SequenceConfig(**bad)
    with pytest.raises(ConfigError, match="nope"):
        SequenceConfig.from_dict({"nope": 1})


# ------------------------------------------------------------------------------------ (f) bad input
def test_bad_inputs_name_the_item_or_row():
    ratings, items, users = tiny_movielens()
    bad = ratings.copy()
    bad.loc[3, "item_id"] = 99
    with pytest.raises(ConfigError, match=r"row 3: item_id 99 is not in items"):
        build_movielens_sequences(bad, items, users, TINY)
    bad = ratings.copy()
    bad["rating"] = bad["rating"].astype(float)
    bad.loc[5, "rating"] = 4.5
    with pytest.raises(ConfigError, match=r"row 5: rating 4.5 is not an integer"):
        build_movielens_sequences(bad, items, users, TINY)
    bad = ratings.astype({"rating": object})
    bad.loc[2, "rating"] = "five"
    with pytest.raises(ConfigError, match=r"row 2: rating 'five'"):
        build_movielens_sequences(bad, items, users, TINY)
    bad = ratings.copy()
    bad.loc[6, "user_id"] = 7
    with pytest.raises(ConfigError, match=r"row 6: user_id 7 is not in users"):
        build_movielens_sequences(bad, items, users, TINY)
    content = item_content_vectors(items, TINY)
    zero = content.copy()
    zero[4] = 0
    with pytest.raises(ConfigError, match=r"item 4 \(ratings row 4\) has no content vector"):
        build_movielens_sequences(ratings, items, users, TINY, content=zero)
    with pytest.raises(ConfigError, match=r"item 4 .*no content vector"):
        build_movielens_sequences(ratings, items, users, TINY, content=content[:4])


def test_check_history_names_the_row():
    events = np.array([10, 20, 30])
    good = np.array([[0, 5], [5, 15], [15, 25]])
    check_history(events, good, np.array([1, 2, 2]))
    with pytest.raises(ConfigError, match=r"row 2: history entry 1 has timestamp 31"):
        check_history(events, np.array([[0, 5], [5, 15], [15, 31]]))
    with pytest.raises(ConfigError, match=r"row 1: .*timestamp 20, not strictly before"):
        check_history(events, np.array([[0, 5], [5, 20], [15, 25]]), np.array([1, 2, 2]))
    check_history(events, np.array([[99, 5], [5, 15], [15, 25]]), np.array([1, 2, 2]))  # padding ignored
    data = build_movielens_sequences(*tiny_movielens(), TINY)
    ts = data.user_seq_ts.copy()
    r = int(np.flatnonzero(data.user_seq_len == 2)[0])
    ts[r, -1] = data.timestamp[r] + 1
    with pytest.raises(ConfigError, match=rf"user_seq: row {r}:"):
        validate_sequences(dataclasses.replace(data, user_seq_ts=ts))


# ------------------------------------------------------------------------------------ (g) frames
def test_frame_round_trip_and_validation(tmp_path, synthetic):
    data = synthetic
    frame = to_frame(data, include_timestamps=True)
    L, k = data.config.user_len, data.config.candidate_len
    assert frame["user_seq_0"].dtype == np.int32 and f"user_seq_{L - 1}" in frame and f"cand_seq_{k - 1}" in frame
    path = tmp_path / "seq.parquet"
    frame.to_parquet(path)
    back = from_frame(pd.read_parquet(path), data.content, data.config)
    for name in ("label", "user", "timestamp", "split", "user_seq", "user_seq_len", "cand_seq", "cand_seq_len",
                 "true_prob", "user_seq_ts", "cand_seq_ts", "content"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name), err_msg=name)
    assert list(back.fields) == list(data.fields)
    for name, arr in data.fields.items():
        np.testing.assert_array_equal(back.fields[name], arr)
    assert back.truncated == data.truncated and back.field_sizes == data.field_sizes
    validate_sequences(back)
    plain = from_frame(to_frame(data), data.content, data.config)
    assert plain.user_seq_ts is None
    validate_sequences(plain)

    r = int(np.flatnonzero((data.user_seq_len > 0) & (data.user_seq_len < L))[0])
    n = int(data.user_seq_len[r])
    seq = data.user_seq.copy()
    seq[r] = np.r_[data.user_seq[r, L - n:], np.zeros(L - n, dtype=np.int32)]  # right-padded
    with pytest.raises(ConfigError, match=rf"user_seq: row {r}:"):
        validate_sequences(dataclasses.replace(data, user_seq=seq))
    cand = data.cand_seq.copy()
    cand[5, 0] = data.n_items + 1
    with pytest.raises(ConfigError, match=r"cand_seq: row 5: item id"):
        validate_sequences(dataclasses.replace(data, cand_seq=cand))
    lens = data.user_seq_len.copy()
    lens[7] = L + 1
    with pytest.raises(ConfigError, match=r"user_seq_len: row 7"):
        validate_sequences(dataclasses.replace(data, user_seq_len=lens))
    content = data.content.copy()
    content[data.user_seq[r, -1]] = 0
    with pytest.raises(ConfigError, match=r"no content vector"):
        validate_sequences(dataclasses.replace(data, content=content))
    with pytest.raises(ConfigError, match=r"user_seq_5"):
        from_frame(frame.drop(columns="user_seq_5"), data.content, data.config)


# ------------------------------------------------------------------------------------ (h) planted signal
def test_synthetic_planted_signal(synthetic):
    data = synthetic
    assert data.true_prob is not None and 0.3 < data.label.mean() < 0.7
    assert bayes_auc(data) > 0.7
    test = data.split == 2
    c = data.content.astype(np.float64)
    mean = c[data.user_seq[test]].sum(axis=1)
    norm = np.linalg.norm(mean, axis=1)
    cos = np.divide((c[data.fields["item"][test]] * mean).sum(axis=1), norm, out=np.zeros(int(test.sum())), where=norm > 0)
    assert roc_auc(data.label[test], cos) > 0.6
    again = synthetic_sequences()
    np.testing.assert_array_equal(again.label, data.label)
    np.testing.assert_array_equal(again.cand_seq, data.cand_seq)


def test_bayes_auc_needs_true_prob():
    data = build_movielens_sequences(*tiny_movielens(), TINY)
    with pytest.raises(ConfigError, match="true_prob"):
        bayes_auc(data)


def test_movielens_summary(movielens):
    ratings, items, users, data = movielens
    s = data.summary()
    assert (s["events"], s["users"], s["n_items"]) == (100_000, 943, 1682)
    assert s["positive_rate"] == pytest.approx(0.55375)
    assert s["rows_per_split"] == {"train": 80_000, "validation": 10_000, "test": 10_000}
    assert np.all(np.diff(data.timestamp) >= 0)
