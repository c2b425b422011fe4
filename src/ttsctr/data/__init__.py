"""Raw click-log readers, the synthetic click-log generator and OptFS-style preprocessing.

Plain library code (no Kedro): ``readers`` turn raw files into arrow chunks, ``synthetic``
writes Criteo-format logs with known click probabilities, ``preprocess`` encodes them into
parquet splits of global int32 ids plus a feature map, ``io`` loads those splits.

The preprocessing entry point is ``ttsctr.data.preprocess.preprocess`` (import it from the
submodule: it is deliberately not re-exported here, so that ``ttsctr.data.preprocess`` stays the
module).
"""

from ttsctr.data.io import (
    SPLITS,
    EncodedSplit,
    atomic_dir,
    atomic_file,
    atomic_write_json,
    load_feature_map,
    load_split,
)
from ttsctr.data.preprocess import (
    FeatureEncoder,
    PreprocessConfig,
    numeric_token,
    numeric_tokens,
    stable_hash,
    stable_hash_array,
)
from ttsctr.data.readers import READERS, FieldSpec, RawReader, get_reader, user_histories
from ttsctr.data.synthetic import SyntheticSummary, bayes_optimal_auc, generate_synthetic

__all__ = [
    "SPLITS",
    "EncodedSplit",
    "atomic_dir",
    "atomic_file",
    "atomic_write_json",
    "load_feature_map",
    "load_split",
    "FeatureEncoder",
    "PreprocessConfig",
    "numeric_token",
    "numeric_tokens",
    "stable_hash",
    "stable_hash_array",
    "READERS",
    "FieldSpec",
    "RawReader",
    "get_reader",
    "user_histories",
    "SyntheticSummary",
    "bayes_optimal_auc",
    "generate_synthetic",
]
