"""Readers on tiny hand-written fixtures of every raw format."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from datahelpers import (
    AVAZU_HEADER,
    AVAZU_ROWS,
    CRITEO_ROWS,
    KDD12_PROFILE,
    KDD12_ROWS,
    criteo_line,
    criteo_text,
    write,
)
from ttsctr.data.readers import READERS, FieldSpec, get_reader, user_histories
from ttsctr.errors import ConfigError


def test_registry_names_and_unknown_dataset() -> None:
    assert set(READERS) == {"criteo", "avazu", "kdd12", "movielens", "synthetic"}
    with pytest.raises(ConfigError) as exc:
        get_reader("critteo")
    msg = str(exc.value)
    assert "critteo" in msg and all(name in msg for name in READERS)


def test_unknown_reader_option_is_config_error() -> None:
    with pytest.raises(ConfigError, match="known options"):
        get_reader("criteo", delimiter=",")
    with pytest.raises(ConfigError, match="impression_expand"):
        get_reader("kdd12", label="ctr")


def test_criteo_schema_values_and_missing(criteo_file: Path) -> None:
    reader = get_reader("criteo")
    assert len(reader.fields) == 39 and reader.fields[0] == FieldSpec("I1", "numeric")
    assert reader.fields[13] == FieldSpec("C1", "categorical") and reader.extra_columns == ()
    t = reader.read_all(criteo_file)
    assert t.schema == reader.schema
    assert t.column_names == ["label", *[f"I{i}" for i in range(1, 14)], *[f"C{i}" for i in range(1, 27)]]
    assert t.schema.field("label").type == pa.int8()
    assert t.schema.field("I1").type == pa.int64() and t.schema.field("C1").type == pa.string()
    assert t.column("label").to_pylist() == [0, 1, 0, 1]
    assert t.column("I1").to_pylist() == [1, None, 3, None]
    assert t.column("I2").to_pylist() == [1, -1, 20, None]  # negative values kept
    assert t.column("I12").to_pylist() == [None, None, None, None]
    assert t.column("C1").to_pylist() == ["68fd1e64", "68fd1e64", "05db9164", None]
    assert t.column("C2").to_pylist() == ["80e26c9b", None, "80e26c9b", None]
    assert t.column("C26").null_count == 4


def test_compression_is_detected_from_magic_bytes_not_the_name(tmp_path: Path) -> None:
    text = criteo_text(CRITEO_ROWS)
    gz_named_txt = write(tmp_path / "a.txt", text, gz=True)
    plain_named_gz = write(tmp_path / "b.gz", text)
    reader = get_reader("criteo")
    a, b = reader.read_all(gz_named_txt), reader.read_all(plain_named_gz)
    assert a.equals(b) and a.num_rows == 4


def test_chunks_are_independent_of_chunk_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [
        criteo_line(int(rng.integers(2)), rng.integers(-1, 1000, 13).tolist(), [f"{v:08x}" for v in rng.integers(0, 50, 26)])
        for _ in range(600)
    ]
    path = write(tmp_path / "t.txt", criteo_text(lines))
    reader = get_reader("criteo")
    small = list(reader.iter_chunks(path, chunk_bytes=4096))
    assert len(small) > 10
    assert pa.concat_tables(small).equals(reader.read_all(path, chunk_bytes=64 << 20))


def test_avazu_with_and_without_header(tmp_path: Path) -> None:
    reader = get_reader("avazu")
    names = reader.field_names
    assert names[:3] == ("hour_of_day", "weekday", "is_weekend") and len(names) == 24
    assert "id" not in names and "click" not in names and "hour" not in names
    with_header = reader.read_all(write(tmp_path / "a.csv", AVAZU_HEADER + "\n" + "\n".join(AVAZU_ROWS) + "\n"))
    without = reader.read_all(write(tmp_path / "b.csv", "\n".join(AVAZU_ROWS) + "\n", gz=True))
    assert with_header.equals(without)
    t = with_header
    assert t.column("label").to_pylist() == [0, 1, 0]
    assert t.column("hour_of_day").to_pylist() == ["0", "23", "13"]
    assert t.column("weekday").to_pylist() == ["1", "5", "6"]  # Tue, Sat, Sun (Monday = 0)
    assert t.column("is_weekend").to_pylist() == ["0", "1", "1"]
    assert t.column("site_id").to_pylist() == ["1fbe01fe", "85f751fd", "1fbe01fe"]
    assert t.column("C1").to_pylist() == ["1005", "1005", "1002"]
    assert all(t.schema.field(n).type == pa.string() for n in names)


def test_kdd12_impression_expand_and_click_positive(tmp_path: Path) -> None:
    path = write(tmp_path / "training.txt", "\n".join(KDD12_ROWS) + "\n")
    expand = get_reader("kdd12").read_all(path)  # default label mode
    # rows: 1 impression (0 clicks) + 3 impressions (2 clicks) + 1 impression (1 click)
    assert expand.column("label").to_pylist() == [0, 1, 1, 0, 1]
    assert expand.column("AdID").to_pylist() == ["7686695", "21560664", "21560664", "21560664", "21748480"]
    assert expand.column("DisplayURL")[1].as_py() == "18446744073709551615"  # > int64, kept as text
    assert [f.name for f in get_reader("kdd12").fields] == [
        "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position", "QueryID", "KeywordID", "TitleID", "DescriptionID", "UserID",
    ]  # fmt: skip
    pos = get_reader("kdd12", label="click_positive").read_all(path)
    assert pos.num_rows == 3 and pos.column("label").to_pylist() == [0, 1, 1]


def test_kdd12_user_profile_join(tmp_path: Path) -> None:
    path = write(tmp_path / "training.txt", "\n".join(KDD12_ROWS) + "\n")
    profile = write(tmp_path / "userid_profile.txt", "\n".join(KDD12_PROFILE) + "\n", gz=True)
    reader = get_reader("kdd12", label="click_positive", user_profile=profile)
    assert reader.field_names[-2:] == ("Gender", "Age")
    t = reader.read_all(path)
    assert t.column("Gender").to_pylist() == [None, "1", "2"]  # user 490234 has no profile
    assert t.column("Age").to_pylist() == [None, "5", "3"]


def test_movielens_join_label_and_genres(movielens_dir: Path) -> None:
    reader = get_reader("movielens")
    assert reader.field_names == ("user_id", "item_id", "age", "gender", "occupation", "zip_prefix", "genres")
    assert reader.extra_columns == ("timestamp",)
    t = reader.read_all(movielens_dir / "u.data")
    assert t.column("label").to_pylist() == [1, 0, 1, 0, 1]  # rating >= 4
    assert t.column("user_id").to_pylist() == ["1", "1", "2", "1", "3"]
    assert t.column("age").to_pylist() == ["24", "24", "53", "24", "23"]
    assert t.column("zip_prefix").to_pylist() == ["857", "857", "T8H", "857", "320"]
    assert t.column("genres").to_pylist() == [
        "Animation|Children's|Comedy", "Drama", "Animation|Children's|Comedy", None, None,
    ]  # fmt: skip  (movie 12 has no genre flag, movie 99 is not in u.item)
    assert t.column("timestamp").type == pa.int64()
    assert t.column("timestamp").to_pylist() == [300, 100, 200, 200, 50]


def test_movielens_user_histories_are_chronological(movielens_dir: Path) -> None:
    h = user_histories(movielens_dir / "u.data")
    assert h.column("user_id").to_pylist() == [1, 2, 3]
    assert h.column("item_ids").to_pylist() == [[11, 12, 10], [10], [99]]
    assert h.column("timestamps").to_pylist() == [[100, 200, 300], [200], [50]]
    assert h.column("ratings").to_pylist() == [[3, 1, 5], [4], [4]]


def test_synthetic_reader_adds_true_prob(tmp_path: Path) -> None:
    from ttsctr.data.synthetic import generate_synthetic

    summary = generate_synthetic(tmp_path / "syn.txt", n_rows=500, seed=3)
    reader = get_reader("synthetic")
    assert reader.extra_columns == ("true_prob",) and reader.field_names == get_reader("criteo").field_names
    t = reader.read_all(tmp_path / "syn.txt", chunk_bytes=8192)
    proba = np.load(summary.proba_path)
    assert t.num_rows == 500 and t.schema.field("true_prob").type == pa.float64()
    np.testing.assert_array_equal(t.column("true_prob").to_numpy(), proba.astype(np.float64))
    assert int(np.asarray(t.column("label")).sum()) == summary.positives


def test_gzip_with_several_members_is_read_whole(tmp_path: Path) -> None:
    text = criteo_text(CRITEO_ROWS).encode()
    path = tmp_path / "multi.txt.gz"
    path.write_bytes(gzip.compress(text[:100]) + gzip.compress(text[100:]))
    assert get_reader("criteo").read_all(path).num_rows == 4


def test_line_iterator_used_for_diagnostics(tmp_path: Path) -> None:
    from ttsctr.data.readers import _iter_lines

    body = b"".join(b"line%d\r\n" % i for i in range(1, 5001)) + b"last"
    for gz in (False, True):
        path = write(tmp_path / f"lines{gz}.txt", body, gz=gz)
        for start in (1, 2, 2500, 5000, 5001):
            got = list(_iter_lines(path, start, block=1000))
            assert got[0] == (start, b"line%d" % start if start <= 5000 else b"last")
            assert len(got) == 5001 - start + 1 and got[-1] == (5001, b"last")
