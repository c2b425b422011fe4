"""The published layout of behaviour-sequence datasets and the encoding of a served event."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from projecthelpers import TINY_SEQUENCE, TINY_SEQUENCE_LOG, publish_tiny_sequences
from ttsctr.data.io import load_split, load_splits
from ttsctr.data.sequence_store import (
    SequenceEventEncoder,
    build_sequence_data,
    load_feature_spec,
    write_sequence_model_input,
)
from ttsctr.data.sequences import sequence_inputs
from ttsctr.data.version import compute_data_version
from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import SequenceFeatureSpec
from ttsctr.validation import validate_sequence_padding

SEQUENCE, GENERATE = TINY_SEQUENCE, TINY_SEQUENCE_LOG


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq") / "synthetic_seq"
    data, version = publish_tiny_sequences(folder)
    return data, folder, json.loads((folder / "feature_map.json").read_text()), version


def _history(data, row: int) -> list[int]:
    """Every item the row's user rated strictly before it, in (timestamp, item) order."""
    earlier = np.flatnonzero((data.user == data.user[row]) & (data.timestamp < data.timestamp[row]))
    earlier = earlier[np.lexsort((data.fields["item"][earlier], data.timestamp[earlier]))]
    return data.fields["item"][earlier].tolist()


def test_published_splits_hold_fixed_width_list_columns_and_load_as_the_model_inputs(published) -> None:
    data, folder, fmap, version = published
    spec, splits = sequence_inputs(data)
    schema = pq.read_schema(folder / "train.parquet")
    assert schema.field("user_seq").type == pa.list_(pa.int32(), 6)
    assert schema.field("cand_seq").type == pa.list_(pa.int32(), 3)
    loaded = load_splits(folder, version, what="test")
    assert isinstance(loaded.spec, SequenceFeatureSpec) and loaded.spec == spec
    np.testing.assert_array_equal(loaded.spec.content, spec.content)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(loaded, name)[0], splits[name][0])
        np.testing.assert_array_equal(getattr(loaded, name)[1], splits[name][1])
    test = load_split(folder, "test")
    assert set(test.extras) == {"user", "timestamp", "user_seq_len", "cand_seq_len", "true_prob"}
    np.testing.assert_array_equal(test.extras["user_seq_len"], data.user_seq_len[data.split == 2])


def test_data_version_covers_the_content_vectors(published, tmp_path) -> None:
    data, folder, _, version = published
    other = tmp_path / "other"
    content = data.content.copy()
    content[1] = -content[1]
    write_sequence_model_input(type(data)(**{**data.__dict__, "content": content}), other, dataset="x", fmt="synthetic_seq")
    assert compute_data_version(other) != version


def test_served_events_encode_exactly_like_the_published_rows(published) -> None:
    data, folder, _, _ = published
    spec, splits = sequence_inputs(data)
    encoder = SequenceEventEncoder.from_model_input(folder)
    rows = np.flatnonzero(data.split == 2)
    events = pd.DataFrame({"user_id": data.user[rows], "item_id": data.fields["item"][rows],
                           "history": [_history(data, r) for r in rows]})
    encoded = encoder.encode(events)
    np.testing.assert_array_equal(encoded.x, splits["test"][0])
    assert encoded.truncated == int(np.count_nonzero([len(h) > 6 for h in events["history"]])) > 0


def test_an_empty_history_is_fully_masked_and_a_long_one_keeps_its_last_items(published) -> None:
    _, folder, _, _ = published
    encoder = SequenceEventEncoder.from_model_input(folder)
    spec = encoder.spec
    f, pad = spec.num_context_fields, np.asarray(spec.slot_offsets)
    history = list(range(1, 21))
    out = encoder.encode(pd.DataFrame({"user_id": [1, 2], "item_id": [5, 5], "history": [[], history]}))
    assert out.empty_history == 1 and out.truncated == 1
    np.testing.assert_array_equal(out.x[0, f:], pad)  # every slot is padding
    np.testing.assert_array_equal(out.x[1, f:f + 6] - pad[:6], history[-6:])


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ({"user_id": 999, "item_id": 5, "history": [1]}, "event 0: unknown user 999"),
        ({"user_id": 1, "item_id": 5, "history": [1, 77]}, "event 0: unknown item 77"),
        ({"user_id": 1, "item_id": 5, "history": [1, 2], "timestamp": 100, "history_timestamps": [50, 100]},
         "history item 1 at 100, not before the event at 100"),
    ],
)
def test_bad_events_are_refused_naming_the_event_and_id(published, event, match) -> None:
    encoder = SequenceEventEncoder.from_model_input(published[1])
    with pytest.raises(DataFormatError, match=match):
        encoder.encode(pd.DataFrame([event]))


def test_an_item_without_content_is_refused_naming_it(published) -> None:
    encoder = SequenceEventEncoder.from_model_input(published[1])
    encoder._norm = encoder._norm.copy()
    encoder._norm[3] = 0.0
    with pytest.raises(DataFormatError, match="item 3 has no content vector"):
        encoder.encode(pd.DataFrame([{"user_id": 1, "item_id": 5, "history": [1, 3]}]))


def test_gx_padding_check_names_rows_whose_mask_or_padding_is_wrong() -> None:
    pad = np.array([5, 5, 5, 5])
    ids = np.array([[5, 5, 7, 8], [5, 9, 5, 8], [5, 5, 5, 5]])
    ok = validate_sequence_padding({"user_seq": (ids[[0, 2]], pad)}, {"user_seq": np.array([2, 0])}, split="train",
                                   source="t", gx_root=None, build_docs=False, log_to_mlflow=False)
    assert ok.success
    bad = validate_sequence_padding({"user_seq": (ids, pad)}, {"user_seq": np.array([2, 3, 7])}, split="train",
                                    source="t", gx_root=None, build_docs=False, log_to_mlflow=False)
    text = bad.to_text()
    assert not bad.success and "left-padded" in text and "non-padding slots" in text and "[0, 4]" in text


def test_unknown_sequence_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        build_sequence_data("synthetic_seq", [], SEQUENCE, {"n_userz": 3})
    with pytest.raises(ConfigError, match="unknown field"):
        build_sequence_data("synthetic_seq", [], {"user_length": 3}, GENERATE)
    with pytest.raises(ConfigError, match="needs raw_path"):
        build_sequence_data("movielens_seq", [], SEQUENCE)


def test_a_tabular_folder_keeps_its_plain_spec(tmp_path) -> None:
    from ttsctr.features import FeatureSpec

    (tmp_path / "feature_map.json").write_text(json.dumps({"fields": [{"name": "a", "vocab_size": 3}]}))
    spec = load_feature_spec(tmp_path)
    assert type(spec) is FeatureSpec and spec.field_names == ("a",)
