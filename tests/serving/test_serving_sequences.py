"""Serving a merged EST ensemble of a behaviour-sequence dataset: events with their history in.

A tiny published ``synthetic_seq`` folder (30 users, 40 items, L = 6, k = 3) and an untrained
one-member EST group (``small``), logged with :func:`ttsctr.serving.log_ensemble_model` in a
throwaway MLflow store and loaded back with ``mlflow.pyfunc.load_model`` (module fixture). The
served model must encode an event exactly as the published rows were encoded (its input example
and every reconstructed test event give the stored ids) and answer the group's own forward on
those ids; bad requests are MlflowExceptions with HTTP 400 naming the column or the item.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import infer_and_parse_data

from ttsctr.data.io import load_split
from projecthelpers import TINY_SEQUENCE, publish_tiny_sequences
from ttsctr.data.sequence_store import SequenceEventEncoder, load_feature_spec
from ttsctr.serve import StrictColumns
from ttsctr.serving import log_ensemble_model, model_signature, raw_input_example, sequence_split_events
from ttsctr.training import MemberSpec, build_group, predict_logits, save_group

L, K = TINY_SEQUENCE["user_len"], TINY_SEQUENCE["candidate_len"]
COLUMNS = ["user_id", "item_id", "history", "timestamp", "history_timestamps"]


@dataclass
class Served:
    folder: Path
    group: Any
    model: Any  # the loaded pyfunc model
    model_dir: Path  # its local copy
    encoder: SequenceEventEncoder
    test_x: np.ndarray
    example: pd.DataFrame

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The group's own merged probability (one member: its sigmoid) on ids ``x``."""
        logits = predict_logits(self.group, np.asarray(x, dtype=np.int32)).astype(np.float64)
        return (1.0 / (1.0 + np.exp(-logits))).mean(axis=1)

    def predict(self, events: Any) -> np.ndarray:
        return self.model.predict(events)["probability"].to_numpy()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("seqserve")
    folder = root / "synthetic_seq"
    data, version = publish_tiny_sequences(folder)
    spec = load_feature_spec(folder)
    group = build_group(spec, [MemberSpec(backbone="est", preset="small", seed=0)])
    checkpoint = save_group(group, None, spec, root / "group.pt", data_version=version)
    example = raw_input_example({"format": "synthetic_seq"}, folder)
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.MlflowClient(uri).create_experiment("serving-sequences")  # no global active experiment
        with mlflow.start_run(experiment_id=experiment):
            info = log_ensemble_model(name="est_x1", model_input_dir=folder, group_checkpoints=[checkpoint],
                                      input_example=example)
        model_dir = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "model")))
        model = mlflow.pyfunc.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    group.eval()
    encoder = SequenceEventEncoder.from_model_input(folder)
    return Served(folder, group, model, model_dir, encoder, load_split(folder, "test").x, example)


def _bad(served: Served, events: Any, *needles: str, model: Any = None) -> str:
    with pytest.raises(MlflowException) as exc:
        (model or served.model).predict(events)
    assert exc.value.get_http_status_code() == 400, exc.value
    message = exc.value.message
    for needle in needles:
        assert needle in message, message
    return message


def _event(user: int, item: int, history: list[int]) -> dict[str, Any]:
    return {"user_id": user, "item_id": item, "history": history}


# -------------------------------------------------------------------------------------- encoding
def test_signature_artefacts_and_input_example(served: Served) -> None:
    schema = served.model.metadata.get_input_schema()
    assert schema.input_names() == COLUMNS
    assert model_signature(served.folder).inputs.input_names() == COLUMNS
    assert served.model.metadata.get_output_schema().input_names() == ["probability"]
    stored = served.model.metadata.load_input_example(str(served.model_dir))  # as MLflow stored it (JSON)
    assert list(stored.columns) == COLUMNS
    assert list(stored["history"].iloc[0]) == served.example["history"].iloc[0]
    carried = {p.name for p in (served.model_dir / "artifacts" / "model_input").iterdir()}
    assert carried == {"feature_map.json", "vocabulary.parquet", "content.npy", "users.parquet", "items.parquet"}


def test_input_example_is_a_real_test_event_encoded_as_its_stored_row(served: Served) -> None:
    example = served.example
    assert len(example) == 1 and len(example["history"].iloc[0]) > 0
    lengths = pd.read_parquet(served.folder / "test.parquet", columns=["user_seq_len"])["user_seq_len"].to_numpy()
    row = int(np.argmax(lengths > 0))  # the first test event with a history
    np.testing.assert_array_equal(served.encoder.encode(example).x[0], served.test_x[row])
    # every reconstructed test and train event encodes to its stored row: serving encodes as training did
    events = sequence_split_events(served.folder, "test")
    np.testing.assert_array_equal(served.encoder.encode(events).x, served.test_x)
    train = sequence_split_events(served.folder, "train", timestamps=False)
    assert list(train.columns) == ["user_id", "item_id", "history"]
    np.testing.assert_array_equal(served.encoder.encode(train).x, load_split(served.folder, "train").x)


# -------------------------------------------------------------------------------------- predictions
def test_predictions_are_the_groups_forward_on_the_stored_rows(served: Served) -> None:
    events = sequence_split_events(served.folder, "test")
    assert events["history"].map(len).gt(1).sum() >= 5  # histories of several events
    expected = served.forward(served.test_x)
    assert np.std(expected) > 1e-4  # not a constant model: the comparison means something
    np.testing.assert_allclose(served.predict(events), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(served.predict(events[["user_id", "item_id", "history"]]), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(served.predict(served.example), served.forward(served.encoder.encode(served.example).x),
                               rtol=0, atol=1e-6)
    # as MLflow's scoring server parses JSON bodies (dataframe_records, dataframe_split)
    head = events.head(8)
    records = json.loads(head.to_json(orient="records"))
    split = json.loads(head.to_json(orient="split", index=False))
    for body in ({"dataframe_records": records}, {"dataframe_split": split}):
        parsed = infer_and_parse_data(json.loads(json.dumps(body)))
        np.testing.assert_allclose(served.predict(parsed), expected[:8], rtol=0, atol=1e-6)


def test_empty_history_is_fully_masked_with_a_finite_probability(served: Served) -> None:
    events = pd.DataFrame([_event(1, 1, []), _event(2, 3, [5, 7])])
    x = served.encoder.encode(events).x
    spec = served.encoder.spec
    slots = np.asarray(spec.offsets)[spec.num_context_fields:]
    np.testing.assert_array_equal(x[0, spec.num_context_fields:], slots)  # every slot is its padding id
    p = served.predict(events)
    assert np.isfinite(p).all() and ((0 < p) & (p < 1)).all()
    np.testing.assert_allclose(p, served.forward(x), rtol=0, atol=1e-6)
    parsed = infer_and_parse_data({"dataframe_records": [_event(1, 1, [])]})  # a column of [] only
    np.testing.assert_allclose(served.predict(parsed), p[:1], rtol=0, atol=1e-6)


def test_history_longer_than_l_is_truncated_for_b_u_and_logged(served: Served, caplog) -> None:
    history = [3, 9, 14, 2, 27, 31, 8, 12, 40, 5]  # L + 4 items, oldest first
    long, last = pd.DataFrame([_event(4, 11, history)]), pd.DataFrame([_event(4, 11, history[-L:])])
    enc_long, enc_last = served.encoder.encode(long), served.encoder.encode(last)
    f = served.encoder.spec.num_context_fields
    assert enc_long.truncated == 1 and enc_last.truncated == 0
    np.testing.assert_array_equal(enc_long.x[:, : f + L], enc_last.x[:, : f + L])  # context and B_u: the last L
    with caplog.at_level(logging.INFO, logger="ttsctr.serving"):
        p = served.predict(long)
    np.testing.assert_allclose(p, served.forward(enc_long.x), rtol=0, atol=1e-6)  # B_c searched the whole history
    assert any("1 of 1 event(s)" in r.getMessage() and "longer than L = 6" in r.getMessage() for r in caplog.records)


# -------------------------------------------------------------------------------------- bad requests
def test_bad_requests_are_400s_naming_the_column_or_item(served: Served) -> None:
    good = _event(1, 2, [3, 4])
    frame = lambda **kw: pd.DataFrame([{**good, **kw}])  # noqa: E731
    _bad(served, pd.DataFrame([good]).drop(columns=["history"]), "missing columns ['history']")
    _bad(served, pd.DataFrame([good]).drop(columns=["item_id"]), "missing columns ['item_id']")
    _bad(served, frame(history=[3, 999]), "history", "unknown item 999")
    _bad(served, frame(history=[0]), "unknown item 0")
    _bad(served, frame(user_id=10_000), "user_id", "unknown user 10000")
    _bad(served, frame(item_id=77), "item_id", "unknown item 77")
    _bad(served, frame(history=None), "history is None, not a JSON array", "[] for none")
    _bad(served, frame(history="3,4"), "history is '3,4', not a JSON array")
    _bad(served, frame(history=5), "history is 5, not a JSON array")
    _bad(served, frame(history=[3, 4.5]), "history holds 4.5")
    _bad(served, frame(history=[True]), "history holds True")
    _bad(served, frame(user_id="1"), "user_id '1' is not an integer")
    _bad(served, frame(timestamp=5), "timestamp without history_timestamps")
    _bad(served, frame(history_timestamps=[1, 2]), "history_timestamps without timestamp")
    _bad(served, frame(timestamp=100, history_timestamps=[50, 100]), "history_timestamps", "not before the event")
    _bad(served, frame(timestamp=100, history_timestamps=[50]), "1 timestamps for 2 history items")
    _bad(served, pd.DataFrame(columns=["user_id", "item_id", "history"]), "no events")
    # MLflow drops undeclared columns before the model; ttsctr-serve's StrictColumns answers 400 first
    extra = pd.DataFrame([{**good, "rating": 5}])
    _bad(served, extra, "unexpected columns ['rating']", model=StrictColumns(served.model))
    _bad(served, extra, "unexpected columns ['rating']", model=_PythonModel(served.model.unwrap_python_model()))
    # integral floats are integers; events may come as a list of records (JSON "inputs")
    np.testing.assert_allclose(served.predict(frame(user_id=1.0, history=[3.0, 4])), served.predict(frame()), atol=0)
    np.testing.assert_allclose(served.predict([good]), served.predict(frame()), atol=0)
    # a bare dict is spread into one row per history item by MLflow's schema enforcement: a 400, never a guess
    _bad(served, good, "history is 3, not a JSON array")


class _PythonModel:
    """The model's own predict, without MLflow's schema enforcement in front of it."""

    def __init__(self, python_model: Any) -> None:
        self._model = python_model

    def predict(self, data: Any) -> Any:
        return self._model.predict(None, data)
