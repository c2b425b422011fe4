"""A merged ensemble as an MLflow pyfunc model that takes raw feature rows.

The model carries the dataset's feature map and vocabulary, so it encodes raw rows exactly as
training did (unseen categorical values and rare values map to their field's OOV id), runs every
member, merges with the ensemble's configured rule (:data:`ttsctr.merging.MERGE_RULES`:
``mean_prob``, the mean of probabilities of Eq. 10/11, or ``mean_logit``) within each training
group and across groups weighted by group size (Eq. 13) — the same merge as the scaling tables —
and returns one probability per row.

Serve it with ``ttsctr-serve -m models:/ttsctr-<dataset>-<ensemble>/<version>`` (``ttsctr.serve``):
MLflow's own scoring app (``mlflow.pyfunc.scoring_server``, the app ``mlflow models serve
--env-manager local`` runs, same routes and error format) behind :mod:`ttsctr.http_guard`, which
answers before any JSON parsing: 413 for a body above ``--max-body-bytes`` (default 16 MiB), 400
for JSON nested deeper than ``--max-depth`` (default 32) -- plain ``mlflow models serve`` answers
a ~1,000-deep body with a RecursionError and HTTP 500 -- and 400 for ``NaN``/``Infinity`` literals.
Bad requests (no rows, missing, extra or duplicated columns, wrong types) become HTTP 400 with a
message naming the columns, never a crash of the server.

Request contract (JSON, UTF-8; what MLflow's JSON parsing hands to :meth:`MergedEnsembleModel.predict`):

* numeric fields: JSON integers, integral floats, or ``null``; a string (``"abc"``, ``"25"``), a
  fractional number, a bool or an integer outside int64 (``2**70``) is rejected;
* categorical fields: JSON strings exactly as in the raw file (``"68fd1e64"``), or ``null``. JSON
  numbers are **not** converted to text: a number has no unique text form (``"0144"`` vs ``144``,
  ``"1"`` vs ``1.0``), so converting would silently turn a known value into an unseen one (OOV)
  and answer a wrong probability with 200. The client gets a 400 naming the field instead;
* missing is ``null``, never ``NaN``: JSON has no NaN, and ``NaN``/``Infinity``/``-Infinity``
  literals (which Python's ``json`` writes for float NaN/inf) are a 400 from the guard. In the
  model, a float NaN in a categorical field is a number like ``12345`` (400 naming the field).
  How MLflow's parsing (pandas) hands values over, in ``dataframe_records`` and
  ``dataframe_split`` alike: ``null`` among strings -> a ``str`` column whose missing values are
  NaN (missing: pandas' own marker, indistinguishable from a ``NaN`` literal there, hence the
  guard); only ``null`` -> an ``object`` column of ``None`` (missing); any ``NaN`` literal with
  only ``null``/``NaN`` beside it -> a ``float64`` column (400);
* an empty string means missing in both kinds, as an empty field does in the raw files (the
  readers parse ``""`` as null); values never seen in training are served as OOV;
* a record that repeats a key keeps the last value (JSON parsing); repeated ``dataframe_split``
  columns are a 400.

Behaviour-sequence datasets (EST; a model-input folder whose feature map has a ``sequence``
block, :mod:`ttsctr.data.sequence_store`) are served from events instead of raw rows. The model
also carries the folder's ``content.npy``, ``users.parquet`` and ``items.parquet`` and encodes
with :class:`~ttsctr.data.sequence_store.SequenceEventEncoder`, exactly as the published splits
were encoded. One record per event:

* ``user_id``, ``item_id``: JSON integers (integral floats accepted) of a user / item of the
  training data; the candidate's attributes come from ``items.parquet``, the user's from
  ``users.parquet``;
* ``history``: a JSON array of the item ids the user interacted with strictly before the event,
  oldest first; ``[]`` for none (fully masked sequences). ``null``, a string or a number is a 400,
  as is an unknown item (the message names it). B_u keeps the last L items (longer histories
  are truncated, and counted in an INFO log line), B_c the k items most content-similar to the
  candidate among the whole history;
* optionally ``timestamp`` (the event's) and ``history_timestamps`` (one per history item),
  together or not at all: then every history item must be strictly earlier than the event.

The answer is the same as for tabular datasets: one ``probability`` per event.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ttsctr.data.sequence_store import example_events, sequence_split_events  # noqa: F401 (re-exported)
from ttsctr.data.version import OPTIONAL_VERSIONED_FILES
from ttsctr.errors import TTSCTRError
from ttsctr.merging.rules import get_rule

MODEL_INPUT_FILES = ("feature_map.json", "vocabulary.parquet")
# what a behaviour-sequence model input adds (ttsctr.data.sequence_store): content, users, items
SEQUENCE_INPUT_FILES = OPTIONAL_VERSIONED_FILES
# the request columns of a sequence model; timestamp and history_timestamps go together
SEQUENCE_COLUMNS = ("user_id", "item_id", "history")
SEQUENCE_TIME_COLUMNS = ("timestamp", "history_timestamps")

_logger = logging.getLogger(__name__)


class MergedEnsembleModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: raw DataFrame -> DataFrame with column ``probability``.

    ``merge_rule`` is pickled with the model; versions logged before it existed merged by the
    mean of probabilities and keep doing so.
    """

    def __init__(self, merge_rule: str = "mean_prob") -> None:
        super().__init__()
        self.merge_rule = get_rule(merge_rule).name

    def load_context(self, context: Any) -> None:
        from ttsctr.data.io import load_feature_map
        from ttsctr.data.preprocess import FeatureEncoder
        from ttsctr.data.sequence_store import SequenceEventEncoder, is_sequence_map
        from ttsctr.training import load_group

        model_input = context.artifacts["model_input"]
        self.sequence = is_sequence_map(load_feature_map(model_input))
        self.encoder = (SequenceEventEncoder.from_model_input(model_input) if self.sequence
                        else FeatureEncoder.load(model_input))
        names = sorted(k for k in context.artifacts if k.startswith("group_"))
        self.groups = [load_group(context.artifacts[name])[0].eval() for name in names]
        sizes = np.array([len(g.members) for g in self.groups], dtype=np.float64)
        self.group_weights = sizes / sizes.sum()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if getattr(self, "sequence", False):
            return self._predict_events(model_input)
        frame = _as_frame(model_input)
        if len(frame) == 0:
            raise _bad_request("the request holds no rows; expected at least one row with exactly the raw "
                               f"fields {list(self.encoder.field_names)}")
        try:
            x = self.encoder.encode_raw_frame(frame)
        except TTSCTRError as exc:
            raise _bad_request(self._explain(exc)) from exc
        except (ValueError, TypeError, ArithmeticError, pa.ArrowException) as exc:
            # any other failure to encode comes from the request's values, not from the model
            raise _bad_request(f"the raw rows could not be encoded: {type(exc).__name__}: {exc}") from exc
        rule = getattr(self, "merge_rule", "mean_prob")
        return pd.DataFrame({"probability": predict_merged(self.groups, self.group_weights, x, rule=rule)})

    def _predict_events(self, model_input: Any) -> pd.DataFrame:
        """The sequence path: events (user_id, item_id, history, ...) -> merged probabilities."""
        events = _events_frame(_as_events(model_input))
        try:
            encoded = self.encoder.encode(events)
        except TTSCTRError as exc:
            raise _bad_request(str(exc)) from exc
        except (ValueError, TypeError, KeyError, ArithmeticError, IndexError) as exc:
            # any other failure to encode comes from the request's values, not from the model
            raise _bad_request(f"the events could not be encoded: {type(exc).__name__}: {exc}") from exc
        if encoded.truncated:
            _logger.info("%d of %d event(s) have a history longer than L = %d: only the last %d items went into B_u",
                         encoded.truncated, len(events), self.encoder.spec.user_len, self.encoder.spec.user_len)
        rule = getattr(self, "merge_rule", "mean_prob")
        return pd.DataFrame({"probability": predict_merged(self.groups, self.group_weights, encoded.x, rule=rule)})

    def _explain(self, exc: TTSCTRError) -> str:
        field = getattr(exc, "field", None)
        kinds = {f.name: f.kind for f in self.encoder.fields}
        if field is not None and kinds.get(field) == "categorical":
            return (f"{exc}. Categorical values are JSON strings exactly as in the raw file "
                    "(e.g. \"68fd1e64\") or null; numbers are not converted to text")
        return str(exc)


def _bad_request(message: str) -> MlflowException:
    """MLflow's scoring server answers an MlflowException with this code as HTTP 400 carrying ``message``."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _plain(value: Any) -> Any:
    """numpy arrays/scalars (what MLflow's ``instances``/``inputs`` parsing produces) -> Python objects."""
    if isinstance(value, np.ndarray):
        value = value.tolist()  # a 0-d array becomes its scalar; object arrays keep their elements
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_frame(model_input: Any) -> pd.DataFrame:
    """The request as a DataFrame of raw rows; what cannot be one is a 400."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    try:
        if isinstance(model_input, dict):
            cols = {str(k): _plain(v) for k, v in model_input.items()}
            if cols and not any(isinstance(v, list) for v in cols.values()):
                return pd.DataFrame([cols])  # one row given as {field: value}
            return pd.DataFrame(cols)
        if isinstance(model_input, (list, tuple)) and all(isinstance(r, dict) for r in model_input):
            return pd.DataFrame([{str(k): _plain(v) for k, v in r.items()} for r in model_input])
        return pd.DataFrame(_plain(model_input))
    except (ValueError, TypeError) as exc:
        raise _bad_request(f"the input is not a table of raw rows ({exc}); send JSON "
                           "dataframe_records or dataframe_split") from exc


def _as_events(model_input: Any) -> pd.DataFrame:
    """The request of a sequence model as a DataFrame of events; what cannot be one is a 400.

    A dict is one event (``{"user_id": 1, "item_id": 2, "history": [3, 4]}``) unless its
    ``history`` holds one array per event (columns).
    """
    if isinstance(model_input, pd.DataFrame):
        return model_input
    try:
        if isinstance(model_input, dict):
            cols = {str(k): _plain(v) for k, v in model_input.items()}
            history = cols.get("history")
            columnar = isinstance(history, list) and bool(history) and all(
                isinstance(h, list) or h is None for h in history)
            return pd.DataFrame(cols) if columnar else pd.DataFrame([cols])
        if isinstance(model_input, (list, tuple)) and all(isinstance(r, dict) for r in model_input):
            return pd.DataFrame([{str(k): _plain(v) for k, v in r.items()} for r in model_input])
    except (ValueError, TypeError) as exc:
        raise _bad_request(f"the input is not a table of events ({exc}); send JSON dataframe_records "
                           f"with {list(SEQUENCE_COLUMNS)}") from exc
    raise _bad_request(f"the input is not a table of events (got a {type(model_input).__name__}); send JSON "
                       f"dataframe_records with {list(SEQUENCE_COLUMNS)}")


def _event_int(value: Any, column: str, row: int) -> int:
    """A JSON integer (or an integral float) of event ``row``; anything else is a 400 naming it."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad_request(f"event {row}: {column} {value!r} is not an integer; expected a JSON integer")
    if isinstance(value, float):
        if not np.isfinite(value) or value != int(value):
            raise _bad_request(f"event {row}: {column} {value!r} is not an integer; expected a JSON integer")
        value = int(value)
    if not -(2**63) <= value < 2**63:
        raise _bad_request(f"event {row}: {column} {value!r} is outside int64")
    return value


def _event_ints(value: Any, column: str, row: int) -> list[int]:
    """A JSON array of integers of event ``row`` (``[]`` allowed); ``null``, text, numbers are a 400."""
    value = _plain(value)
    if not isinstance(value, (list, tuple)):
        wanted = ("the item ids the user interacted with before the event, oldest first ([] for none)"
                  if column == "history" else "one integer per history item")
        raise _bad_request(f"event {row}: {column} is {value!r}, not a JSON array; expected {wanted}")
    out = []
    for v in value:
        try:
            out.append(_event_int(v, column, row))
        except MlflowException:
            raise _bad_request(f"event {row}: {column} holds {v!r}, not an integer; expected a JSON array of "
                               "integers") from None
    return out


def _events_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The events checked and normalised (Python ints, lists of ints) for the encoder; 400s name the column."""
    expected = (f"exactly the columns {list(SEQUENCE_COLUMNS)}, optionally with both "
                f"{list(SEQUENCE_TIME_COLUMNS)}")
    if len(frame) == 0:
        raise _bad_request(f"the request holds no events; expected at least one record with {expected}")
    cols = [str(c) for c in frame.columns]
    known = SEQUENCE_COLUMNS + SEQUENCE_TIME_COLUMNS
    missing = [c for c in SEQUENCE_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in known]
    repeated = sorted({c for c in cols if cols.count(c) > 1})
    times = [c for c in SEQUENCE_TIME_COLUMNS if c in cols]
    lone = [f"{a} without {b}" for a, b in (SEQUENCE_TIME_COLUMNS, SEQUENCE_TIME_COLUMNS[::-1]) if times == [a]]
    if missing or extra or repeated or lone:
        parts = [f"missing columns {missing}" if missing else "", f"unexpected columns {extra}" if extra else "",
                 f"duplicated columns {repeated}" if repeated else "", *lone]
        raise _bad_request(f"{'; '.join(p for p in parts if p)}; expected {expected}")
    frame = frame.set_axis(cols, axis=1)
    out: dict[str, list[Any]] = {c: [] for c in SEQUENCE_COLUMNS + tuple(times)}
    for row, record in enumerate(frame[list(out)].itertuples(index=False, name=None)):
        values = dict(zip(out, record))
        out["user_id"].append(_event_int(values["user_id"], "user_id", row))
        out["item_id"].append(_event_int(values["item_id"], "item_id", row))
        out["history"].append(_event_ints(values["history"], "history", row))
        if times:
            out["timestamp"].append(_event_int(values["timestamp"], "timestamp", row))
            out["history_timestamps"].append(_event_ints(values["history_timestamps"], "history_timestamps", row))
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in out.items()})


@torch.no_grad()
def predict_merged(groups: Sequence[torch.nn.Module], weights: np.ndarray, x: np.ndarray, batch_size: int = 65536,
                   rule: str = "mean_prob") -> np.ndarray:
    """Eq. 13 over groups of Eq. 11 merged predictions, in the space of ``rule``.

    Each group's member logits ``(N, M_i)`` are mapped to the rule's space (probabilities for
    ``mean_prob``, logits for ``mean_logit``) in float64, averaged within the group, combined
    across groups with ``weights`` (group size / total) and mapped back to a probability —
    :class:`ttsctr.merging.MergeRule` applied as :func:`ttsctr.merging.merge_pool` does.
    """
    from ttsctr.training import predict_logits

    r = get_rule(rule)
    x = np.ascontiguousarray(x, dtype=np.int32)
    acc = np.zeros(len(x), dtype=np.float64)
    for group, weight in zip(groups, weights):
        # in the precision the group was trained and measured in (stored in its checkpoint)
        logits = predict_logits(group, x, batch_size=batch_size).astype(np.float64)  # (N, M_i) member logits
        acc += weight * r.to_space(logits).mean(axis=1)
    return np.asarray(r.to_prob(acc), dtype=np.float64)


def model_input_files(model_input_dir: str | Path) -> tuple[str, ...]:
    """The files of ``model_input_dir`` a served model carries: the feature map and vocabulary,
    and for a behaviour-sequence folder also its content vectors and user / item tables
    (:data:`SEQUENCE_INPUT_FILES`)."""
    from ttsctr.data.io import load_feature_map
    from ttsctr.data.sequence_store import is_sequence_map

    fmap = load_feature_map(model_input_dir)
    if not is_sequence_map(fmap):
        return MODEL_INPUT_FILES
    return MODEL_INPUT_FILES + SEQUENCE_INPUT_FILES


def build_artifacts(model_input_dir: str | Path, group_checkpoints: Sequence[str | Path], workdir: str | Path) -> dict[str, str]:
    """Collect what the pyfunc model needs into ``workdir`` and return MLflow's artifacts mapping.

    The groups' ids mean something only with the vocabulary they were trained with: every
    checkpoint's data version must be the one published in ``model_input_dir`` before and after
    its feature map and vocabulary are copied, or :class:`~ttsctr.data.version.DataVersionError`
    is raised and nothing is logged.
    """
    from ttsctr.data.version import require_data_version
    from ttsctr.training import checkpoint_data_version

    workdir = Path(workdir)
    model_input = workdir / "model_input"
    model_input.mkdir(parents=True, exist_ok=True)
    versions = {str(ckpt): checkpoint_data_version(ckpt) for ckpt in group_checkpoints}
    for ckpt, version in versions.items():
        require_data_version(model_input_dir, version, what=f"serving the group checkpoint {ckpt}")
    for name in model_input_files(model_input_dir):
        shutil.copy2(Path(model_input_dir) / name, model_input / name)
    for ckpt, version in versions.items():  # the copied files are those of that version
        require_data_version(model_input_dir, version, what=f"serving the group checkpoint {ckpt}")
    artifacts = {"model_input": str(model_input)}
    for i, ckpt in enumerate(group_checkpoints):
        artifacts[f"group_{i:03d}"] = str(ckpt)
    return artifacts


def model_signature(model_input_dir: str | Path) -> Any:
    """The signature of a merged ensemble: the dataset's raw fields in, ``probability`` out
    (for a behaviour-sequence dataset: ``user_id``, ``item_id``, ``history``, ``timestamp`` and
    ``history_timestamps`` in).

    The raw fields are declared with MLflow's ``Any`` type and as optional: MLflow's schema
    enforcement would otherwise answer in its own words (or drop columns) before the model's
    checks run, and those checks are stricter (a number in a categorical field, a missing or
    extra column: see the module docstring). ``ttsctr-serve`` rejects extra columns before MLflow
    drops them (:func:`ttsctr.serve.create_app`).
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from ttsctr.data.io import load_feature_map
    from ttsctr.data.sequence_store import is_sequence_map

    fmap = load_feature_map(model_input_dir)
    if is_sequence_map(fmap):
        # the event columns (module docstring); Any lets the history arrays through as lists
        names = [*SEQUENCE_COLUMNS, *SEQUENCE_TIME_COLUMNS]
    else:
        names = [f["name"] for f in fmap["fields"]]
    return ModelSignature(inputs=Schema([ColSpec(AnyType(), name, required=False) for name in names]),
                          outputs=Schema([ColSpec("double", "probability")]))


def raw_input_example(source: dict[str, Any], model_input_dir: str | Path, rows: int = 1) -> pd.DataFrame:
    """``rows`` real raw rows of the dataset's raw file(s), with exactly the served fields.

    For a behaviour-sequence folder: ``rows`` real events of its test split with their real
    histories (:func:`sequence_split_events`), the first ones with a history (else the first
    ones); ``source`` is not read.

    ``source``: ``format``, ``raw_files`` (as in the data_processing summary); the reader options
    are the feature map's. The first rows whose categorical fields are all present are taken
    (else the first rows): MLflow stores the example as JSON and reads it back with pandas, which
    turns a categorical column of nothing but ``null`` into float NaN, a number to the model.
    """
    from ttsctr.data.io import load_feature_map
    from ttsctr.data.readers import get_reader
    from ttsctr.data.sequence_store import is_sequence_map

    fmap = load_feature_map(model_input_dir)
    if is_sequence_map(fmap):
        return example_events(model_input_dir, rows, fmap=fmap)
    reader = get_reader(source["format"], **(fmap.get("reader_options") or {}))
    categorical = [f.name for f in reader.fields if f.kind == "categorical"]
    for chunk in reader.iter_chunks(source["raw_files"][0], 1 << 20):
        if not chunk.num_rows:
            continue
        frame = chunk.select(list(reader.field_names)).to_pandas()
        complete = frame[frame[categorical].notna().all(axis=1)] if categorical else frame
        return (complete if len(complete) >= rows else frame).head(rows).reset_index(drop=True)
    raise TTSCTRError(f"{source['raw_files'][0]}: no rows to take an input example from")


def raw_split_rows(source: dict[str, Any], model_input_dir: str | Path, split: str = "test",
                   base: str | Path | None = None) -> pa.Table:
    """The raw rows (exactly the served fields) that went into an encoded ``split``, in its order.

    ``source``: ``format`` and ``raw_path`` (as in the data_processing summary; a relative path is
    taken from ``base``). Re-draws the random split with the feature map's seed and ratios, so
    it applies to ``split: random`` encodings (of one raw file): the requests a load test or a
    serving check sends for rows whose stored predictions are known.
    """
    from ttsctr.data.io import load_feature_map
    from ttsctr.data.preprocess import assign_random_splits
    from ttsctr.data.readers import get_reader

    fmap = load_feature_map(model_input_dir)
    pre = fmap["preprocess"]
    if pre.get("split", "random") != "random":
        raise TTSCTRError(f"raw_split_rows needs a random split; {model_input_dir} was split {pre.get('split')!r}")
    reader = get_reader(source["format"], **(fmap.get("reader_options") or {}))
    raw_path = Path(source["raw_path"])
    if not raw_path.is_absolute() and base is not None:
        raw_path = Path(base) / raw_path
    table = pa.concat_tables(list(reader.iter_chunks(raw_path)))
    codes = assign_random_splits(np.arange(table.num_rows, dtype=np.uint64), pre["seed"], pre["split_ratios"])
    wanted = {"train": 0, "validation": 1, "test": 2}[split]
    return table.filter(pa.array(codes == wanted)).select(list(reader.field_names))


def log_ensemble_model(
    *,
    name: str,
    model_input_dir: str | Path,
    group_checkpoints: Sequence[str | Path],
    tags: dict[str, str] | None = None,
    merge_rule: str = "mean_prob",
    input_example: pd.DataFrame | None = None,
) -> Any:
    """Log a merged ensemble in the active MLflow run; returns MLflow's ModelInfo.

    Logged with its :func:`model_signature` and, when given, a raw ``input_example``
    (:func:`raw_input_example`), which MLflow runs through the model once to check it. Register
    it with :func:`ttsctr.tracking.register_version` (one version per identity, also under
    races). ``merge_rule`` is the ensemble's configured rule (``mean_prob`` or ``mean_logit``);
    an unknown rule is a :class:`~ttsctr.errors.ConfigError` before anything is logged.
    """
    from ttsctr.tracking import pip_requirements

    python_model = MergedEnsembleModel(merge_rule)
    with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow_logging():
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=python_model,
            artifacts=build_artifacts(model_input_dir, group_checkpoints, tmp),
            pip_requirements=pip_requirements(),
            signature=model_signature(model_input_dir),
            input_example=input_example,
            tags=tags,
        )


@contextmanager
def _quiet_mlflow_logging() -> Iterator[None]:
    """Silence what MLflow repeats for every logged model: the python_model object is
    cloudpickled (intended: the class lives in the installed ttsctr package) and the input
    example is validated against the signature (informational)."""
    names = ("mlflow.pyfunc", "mlflow.models.model", "mlflow.models.signature", "mlflow.models.utils")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
