"""Preprocessing: thresholding, ids, splits, determinism, hashing, the serving encoder, outputs."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datahelpers import criteo_line, criteo_text, write
from ttsctr.data.io import SPLITS, load_feature_map, load_split
from ttsctr.data.preprocess import (
    FeatureEncoder,
    PreprocessConfig,
    assign_random_splits,
    numeric_token,
    numeric_tokens,
    preprocess,
    stable_hash,
    stable_hash_array,
)
from ttsctr.data.readers import get_reader
from ttsctr.data.synthetic import generate_synthetic
from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec

N_SYN = 4000


@pytest.fixture(scope="module")
def syn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("syn") / "syn.txt"
    generate_synthetic(path, n_rows=N_SYN, seed=1, compute_auc=False)
    return path


@pytest.fixture(scope="module")
def syn_encoded(syn_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("enc") / "encoded"
    fmap = preprocess("synthetic", syn_file, out, PreprocessConfig(min_count=5), progress=False)
    return out, fmap


def read_parquet(out: Path, split: str) -> pa.Table:
    return pq.read_table(out / f"{split}.parquet")


# ---- numeric transform and hashing ------------------------------------------------------------
def test_numeric_token_values() -> None:
    cases = {-3: -3, -1: -1, 0: 0, 1: 1, 2: 2, 3: 1, 4: 1, 5: 2, 7: 3, 8: 4, 10: 5, 100: 21, 1382: 52, 10**15: 1192}
    assert {x: numeric_token(x) for x in cases} == cases
    xs = np.r_[np.arange(-50, 5000), np.random.default_rng(0).integers(0, 2**62, 2000)]
    np.testing.assert_array_equal(numeric_tokens(xs), [int(math.floor(math.log(x) ** 2)) if x > 2 else int(x) for x in xs])


def test_stable_hash_is_fixed_and_vectorised_form_agrees() -> None:
    # regression values: the hash must never change (hashed ids are part of trained models)
    assert stable_hash("abc") == 996580060897260808
    assert stable_hash("") == 17665956581633026203
    assert stable_hash("68fd1e64") == 10693166406241229657
    values = ["", "a", "abc", "68fd1e64", "é", "日本語テキスト", "x" * 300, "abc"]
    arr = pa.array(values).slice(0)  # also non-zero offsets below
    np.testing.assert_array_equal(stable_hash_array(arr), np.array([stable_hash(v) for v in values], np.uint64))
    np.testing.assert_array_equal(stable_hash_array(arr.slice(3)), np.array([stable_hash(v) for v in values[3:]], np.uint64))


def test_random_split_assignment_is_independent_of_chunking() -> None:
    rows = np.arange(10_000, dtype=np.uint64)
    whole = assign_random_splits(rows, 2024, (0.8, 0.1, 0.1))
    pieces = np.concatenate([assign_random_splits(rows[a : a + 777], 2024, (0.8, 0.1, 0.1)) for a in range(0, 10_000, 777)])
    np.testing.assert_array_equal(whole, pieces)
    assert not np.array_equal(whole, assign_random_splits(rows, 7, (0.8, 0.1, 0.1)))
    assert np.bincount(whole).tolist() == pytest.approx([8000, 1000, 1000], abs=150)


# ---- thresholding and ids ---------------------------------------------------------------------
def _threshold_fixture(tmp_path: Path) -> Path:
    c1 = ["aaaaaaaa"] * 12 + ["bbbbbbbb"] * 10 + ["cccccccc"] * 9 + ["dddddddd"] + [None] * 3
    c2 = ["bbbbbbbb"] * 10 + ["aaaaaaaa"] * 10 + ["eeeeeeee"] * 15  # tie 10/10 -> ascending value
    i1 = [2] * 15 + [5] * 15 + [None] * 2 + [1000] * 3  # 2 and 5 share token 2; 1000 -> token 47
    lines = [criteo_line(k % 2, [i1[k]], [c1[k], c2[k]]) for k in range(35)]
    return write(tmp_path / "thr.txt", criteo_text(lines))


def test_thresholding_maps_rare_values_to_oov(tmp_path: Path) -> None:
    raw = _threshold_fixture(tmp_path)
    cfg = PreprocessConfig(min_count=10, split_ratios=(1.0, 0.0, 0.0))
    fmap = preprocess("criteo", raw, tmp_path / "out", cfg, progress=False)
    fields = {f["name"]: f for f in fmap["fields"]}
    vocab = pq.read_table(tmp_path / "out" / "vocabulary.parquet").to_pandas()

    def field_vocab(name: str) -> list[tuple[str, int, int]]:
        sub = vocab[vocab.field == name].sort_values("local_id")
        return list(zip(sub.value, sub.local_id, sub["count"]))

    assert field_vocab("C1") == [("aaaaaaaa", 2, 12), ("bbbbbbbb", 3, 10)]
    assert field_vocab("C2") == [("eeeeeeee", 2, 15), ("aaaaaaaa", 3, 10), ("bbbbbbbb", 4, 10)]
    assert field_vocab("I1") == [("2", 2, 30)]  # 1000 (token 47) seen 3 times -> OOV
    assert fields["C1"]["vocab_size"] == 4 and fields["C1"]["fit_oov_rows"] == 10 and fields["C1"]["fit_missing_rows"] == 3
    assert fields["C3"]["vocab_size"] == 2  # always missing: only OOV + missing ids
    x = load_split(tmp_path / "out", "train").x
    names = [f["name"] for f in fmap["fields"]]
    c1 = x[:, names.index("C1")] - fields["C1"]["offset"]
    assert c1.tolist() == [2] * 12 + [3] * 10 + [0] * 10 + [1] * 3
    i1 = x[:, names.index("I1")] - fields["I1"]["offset"]
    assert i1.tolist() == [2] * 30 + [1] * 2 + [0] * 3
    assert {s: v["rows"] for s, v in fmap["splits"].items()} == {"train": 35, "validation": 0, "test": 0}
    assert load_split(tmp_path / "out", "test").x.shape == (0, 39)


def test_min_count_per_field_overrides_default(tmp_path: Path) -> None:
    raw = _threshold_fixture(tmp_path)
    cfg = PreprocessConfig(min_count=10, min_count_per_field={"C1": 1}, split_ratios=(1.0, 0.0, 0.0))
    fmap = preprocess("criteo", raw, tmp_path / "out", cfg, progress=False)
    fields = {f["name"]: f for f in fmap["fields"]}
    assert fields["C1"]["min_count"] == 1 and fields["C1"]["vocab_size"] == 2 + 4
    assert fields["C2"]["min_count"] == 10


def test_ids_are_in_range_and_offsets_cumulative(syn_encoded: tuple[Path, dict]) -> None:
    out, fmap = syn_encoded
    fields = fmap["fields"]
    offsets = np.cumsum([0] + [f["vocab_size"] for f in fields])[:-1]
    assert [f["offset"] for f in fields] == offsets.tolist()
    assert fmap["num_features"] == sum(f["vocab_size"] for f in fields)
    for split in SPLITS:
        t = read_parquet(out, split)
        assert t.column_names == ["label", *[f["name"] for f in fields], "true_prob"]
        assert t.schema.field("label").type == pa.int8()
        assert all(t.schema.field(f["name"]).type == pa.int32() for f in fields)
        es = load_split(out, split)
        assert es.x.dtype == np.int32 and es.x.flags.c_contiguous and es.y.dtype == np.float32
        lo = np.array([f["offset"] for f in fields])
        hi = lo + np.array([f["vocab_size"] for f in fields])
        assert ((es.x >= lo) & (es.x < hi)).all()
        assert set(np.unique(es.y)) <= {0.0, 1.0}
        assert es.extras["true_prob"].dtype == np.float64
    # the model-side view agrees
    spec = FeatureSpec.from_feature_map(fmap)
    assert spec.num_features == fmap["num_features"] and spec.offsets == tuple(f["offset"] for f in fields)


def test_split_sizes_add_up_and_are_8_1_1(syn_encoded: tuple[Path, dict]) -> None:
    _, fmap = syn_encoded
    rows = {s: fmap["splits"][s]["rows"] for s in SPLITS}
    assert sum(rows.values()) == fmap["total_rows"] == N_SYN
    assert rows["train"] / N_SYN == pytest.approx(0.8, abs=0.025)
    assert rows["validation"] / N_SYN == pytest.approx(0.1, abs=0.02)
    assert rows["test"] / N_SYN == pytest.approx(0.1, abs=0.02)
    assert sum(fmap["splits"][s]["positives"] for s in SPLITS) == fmap["total_positives"]


def test_output_is_identical_across_chunk_sizes_and_spilling(syn_file: Path, syn_encoded: tuple[Path, dict], tmp_path: Path) -> None:
    out_a, fmap_a = syn_encoded
    cfg = PreprocessConfig(min_count=5, chunk_bytes=8192, cache_bytes=0)  # many chunks, all spilled to disk
    fmap_b = preprocess("synthetic", syn_file, tmp_path / "b", cfg, progress=False)
    assert fmap_a["fields"] == fmap_b["fields"] and fmap_a["splits"] == fmap_b["splits"]
    for split in SPLITS:
        assert read_parquet(out_a, split).equals(read_parquet(tmp_path / "b", split))
    assert pq.read_table(out_a / "vocabulary.parquet").equals(pq.read_table(tmp_path / "b" / "vocabulary.parquet"))
    assert not (tmp_path / "b" / "_spill").exists()


def test_fit_on_train_counts_train_rows_only(syn_file: Path, tmp_path: Path) -> None:
    raw = get_reader("synthetic").read_all(syn_file)
    codes = assign_random_splits(np.arange(raw.num_rows, dtype=np.uint64), 2024, (0.8, 0.1, 0.1))
    c14 = raw.column("C14").to_pylist()
    counts_train = Counter(v for v, c in zip(c14, codes) if c == 0 and v is not None)
    counts_all = Counter(v for v in c14 if v is not None)
    results = {}
    for fit_on in ("train", "all"):
        preprocess("synthetic", syn_file, tmp_path / fit_on, {"min_count": 3, "fit_on": fit_on}, progress=False)
        v = pq.read_table(tmp_path / fit_on / "vocabulary.parquet").to_pandas()
        v = v[v.field == "C14"]
        results[fit_on] = dict(zip(v.value, v["count"]))
    assert results["train"] == {k: n for k, n in counts_train.items() if n >= 3}
    assert results["all"] == {k: n for k, n in counts_all.items() if n >= 3}
    assert results["train"] != results["all"]
    assert load_feature_map(tmp_path / "all")["preprocess"]["fit_on"] == "all"


def test_hash_buckets_field(syn_file: Path, tmp_path: Path) -> None:
    cfg = PreprocessConfig(min_count=5, hash_buckets={"C3": 64, "I5": 8})
    fmap = preprocess("synthetic", syn_file, tmp_path / "h", cfg, progress=False)
    f = {x["name"]: x for x in fmap["fields"]}
    assert f["C3"]["vocab_size"] == 66 and f["C3"]["hash_buckets"] == 64 and f["C3"]["min_count"] is None
    vocab = pq.read_table(tmp_path / "h" / "vocabulary.parquet").column("field").to_pylist()
    assert "C3" not in vocab and "I5" not in vocab
    raw = get_reader("synthetic").read_all(syn_file)
    codes = assign_random_splits(np.arange(raw.num_rows, dtype=np.uint64), 2024, (0.8, 0.1, 0.1))
    names = [x["name"] for x in fmap["fields"]]
    x = load_split(tmp_path / "h", "train").x
    c3 = np.array(raw.column("C3").to_pylist(), dtype=object)[codes == 0]
    expected = [1 if v is None else 2 + stable_hash(v) % 64 for v in c3]
    assert (x[:, names.index("C3")] - f["C3"]["offset"]).tolist() == expected
    i5 = np.array(raw.column("I5").to_pylist(), dtype=object)[codes == 0]
    expected = [1 if v is None else 2 + stable_hash(str(numeric_token(v))) % 8 for v in i5]
    assert (x[:, names.index("I5")] - f["I5"]["offset"]).tolist() == expected


# ---- serving encoder --------------------------------------------------------------------------
def test_encoder_transform_equals_written_parquet(syn_file: Path, syn_encoded: tuple[Path, dict]) -> None:
    out, _ = syn_encoded
    enc = FeatureEncoder.load(out)
    raw = get_reader("synthetic").read_all(syn_file)
    x_all = enc.transform(raw)  # extra columns (label, true_prob) are ignored
    assert x_all.dtype == np.int32 and x_all.shape == (N_SYN, 39)
    codes = assign_random_splits(np.arange(N_SYN, dtype=np.uint64), 2024, (0.8, 0.1, 0.1))
    for k, split in enumerate(SPLITS):
        np.testing.assert_array_equal(x_all[codes == k], load_split(out, split).x)
    # and the pandas path gives the same ids
    df = raw.select(list(enc.field_names)).slice(0, 300).to_pandas()
    np.testing.assert_array_equal(enc.encode_raw_frame(df), x_all[:300])
    np.testing.assert_array_equal(enc.transform(df), x_all[:300])


def test_unseen_values_map_to_oov_and_nulls_to_missing(syn_encoded: tuple[Path, dict]) -> None:
    out, fmap = syn_encoded
    enc = FeatureEncoder.load(out)
    reader = get_reader("synthetic")
    row_new = {f.name: (10**15 if f.kind == "numeric" else "zzzzzzzz") for f in reader.fields}
    row_null = {f.name: None for f in reader.fields}
    table = pa.Table.from_pylist([row_new, row_null], schema=pa.schema([pa.field(f.name, f.arrow_type) for f in reader.fields]))
    x = enc.transform(table)
    offsets = np.array([f["offset"] for f in fmap["fields"]])
    np.testing.assert_array_equal(x[0], offsets)  # OOV = local 0
    np.testing.assert_array_equal(x[1], offsets + 1)  # missing = local 1


def test_encode_raw_frame_validates_columns_and_types(syn_encoded: tuple[Path, dict]) -> None:
    out, _ = syn_encoded
    enc = FeatureEncoder.load(out)
    good = pd.DataFrame({n: ([1, None] if n.startswith("I") else ["68fd1e64", None]) for n in enc.field_names})
    x = enc.encode_raw_frame(good)
    assert x.shape == (2, 39)
    with pytest.raises(DataFormatError, match=r"missing columns \['C26'\]"):
        enc.encode_raw_frame(good.drop(columns=["C26"]))
    with pytest.raises(DataFormatError, match=r"unexpected columns \['label'\]"):
        enc.encode_raw_frame(good.assign(label=[0, 1]))
    with pytest.raises(DataFormatError, match="'I3'") as exc:
        enc.encode_raw_frame(good.assign(I3=["abc", "1"]))
    assert exc.value.field == "I3"
    with pytest.raises(DataFormatError, match="non-integer value 1.5"):
        enc.encode_raw_frame(good.assign(I4=[1.5, None]))
    with pytest.raises(DataFormatError, match="'C1'"):
        enc.encode_raw_frame(good.assign(C1=[3, 4]))
    # integral floats with NaN are fine and mean int / missing
    np.testing.assert_array_equal(enc.encode_raw_frame(good.assign(I1=[1.0, float("nan")])), x)


# ---- chronological splits ---------------------------------------------------------------------
def test_chronological_split_by_file_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    lines = [criteo_line(int(y), [i], ["%08x" % (i % 7)]) for i, y in enumerate(labels)]
    raw = write(tmp_path / "c.txt", criteo_text(lines))
    fmap = preprocess("criteo", raw, tmp_path / "out", {"split": "chronological", "min_count": 1, "chunk_bytes": 4096}, progress=False)
    assert [fmap["splits"][s]["rows"] for s in SPLITS] == [160, 20, 20]
    ys = [load_split(tmp_path / "out", s).y for s in SPLITS]
    np.testing.assert_array_equal(np.concatenate(ys), labels)
    assert fmap["split_method"] == "chronological by file order"


def test_chronological_split_by_timestamp(movielens_dir: Path, tmp_path: Path) -> None:
    cfg = {"split": "chronological", "split_ratios": (0.6, 0.2, 0.2), "min_count": 1}
    fmap = preprocess("movielens", movielens_dir / "u.data", tmp_path / "out", cfg, progress=False)
    ts = {s: load_split(tmp_path / "out", s).extras["timestamp"].tolist() for s in SPLITS}
    # timestamps 300,100,200,200,50 -> order 50,100,200(line 3),200(line 4),300
    assert ts == {"train": [100, 200, 50], "validation": [200], "test": [300]}
    assert fmap["split_method"] == "chronological by timestamp"


# ---- outputs ----------------------------------------------------------------------------------
def test_feature_map_contents(syn_file: Path, syn_encoded: tuple[Path, dict]) -> None:
    out, fmap = syn_encoded
    assert json.loads((out / "feature_map.json").read_text()) == fmap
    assert fmap["dataset"] == "synthetic" and fmap["num_fields"] == 39
    f0 = fmap["fields"][0]
    assert {"name", "kind", "offset", "vocab_size", "oov_id", "missing_id", "min_count", "hash_buckets"} <= set(f0)
    assert f0["oov_id"] == 0 and f0["missing_id"] == 1 and f0["kind"] == "numeric"
    assert fmap["preprocess"] == {**PreprocessConfig(min_count=5).to_dict()}
    assert fmap["raw"]["path"] == str(syn_file.resolve()) and fmap["raw"]["size"] == syn_file.stat().st_size
    assert fmap["raw"]["mtime"] == pytest.approx(syn_file.stat().st_mtime)
    assert len(fmap["raw"]["files"]) == 3  # data, proba sidecar, meta sidecar
    assert fmap["extra_columns"] == ["true_prob"]
    assert sorted(p.name for p in out.iterdir()) == ["feature_map.json", "test.parquet", "train.parquet", "validation.parquet", "vocabulary.parquet"]


def test_rerun_replaces_output_atomically(syn_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "enc"
    a = preprocess("synthetic", syn_file, out, {"min_count": 5}, progress=False)
    b = preprocess("synthetic", syn_file, out, {"min_count": 50}, progress=False)
    assert b["num_features"] < a["num_features"] == a["num_features"]
    assert load_feature_map(out)["preprocess"]["min_count"] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc"]  # no temp or old siblings left


def test_progress_bar_on_stderr_only_when_enabled(criteo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    preprocess("criteo", criteo_file, tmp_path / "a", {"min_count": 1}, progress=False)
    assert capsys.readouterr().err == ""
    preprocess("criteo", criteo_file, tmp_path / "b", {"min_count": 1}, progress=True)
    err = capsys.readouterr().err
    assert "rows/s" in err and "encode + write" in err


def test_config_validation(criteo_file: Path, tmp_path: Path) -> None:
    bad = [
        {"hash_buckets": {"C99": 10}},
        {"min_count_per_field": {"nope": 2}},
        {"split_ratios": (0.8, 0.3, 0.1)},
        {"split": "temporal"},
        {"fit_on": "test"},
        {"min_count": 0},
        {"hash_buckets": {"C1": 10}, "min_count_per_field": {"C1": 3}},
    ]
    for params in bad:
        with pytest.raises(ConfigError):
            preprocess("criteo", criteo_file, tmp_path / "x", params, progress=False)
        assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="unknown parameter"):
        PreprocessConfig.from_dict({"min_cnt": 3})
    with pytest.raises(ConfigError, match="unknown split"):
        load_split(tmp_path, "dev")


@pytest.mark.parametrize("dataset", ["avazu", "kdd12", "movielens"])
def test_encoder_matches_parquet_for_each_format(dataset: str, tmp_path: Path, movielens_dir: Path) -> None:
    from datahelpers import AVAZU_HEADER, AVAZU_ROWS, KDD12_ROWS

    raw = {
        "avazu": lambda: write(tmp_path / "a.csv", AVAZU_HEADER + "\n" + "\n".join(AVAZU_ROWS * 20) + "\n"),
        "kdd12": lambda: write(tmp_path / "k.txt", "\n".join(KDD12_ROWS * 20) + "\n", gz=True),
        "movielens": lambda: movielens_dir / "u.data",
    }[dataset]()
    fmap = preprocess(dataset, raw, tmp_path / "out", {"min_count": 2, "seed": 3}, progress=False)
    table = get_reader(dataset).read_all(raw)
    x = FeatureEncoder.load(tmp_path / "out").transform(table)
    codes = assign_random_splits(np.arange(table.num_rows, dtype=np.uint64), 3, (0.8, 0.1, 0.1))
    for k, split in enumerate(SPLITS):
        es = load_split(tmp_path / "out", split)
        np.testing.assert_array_equal(x[codes == k], es.x)
        np.testing.assert_array_equal(table.column("label").to_numpy()[codes == k], es.y)
    assert fmap["total_rows"] == table.num_rows
