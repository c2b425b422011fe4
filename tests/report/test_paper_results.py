"""The paper's numbers shipped with ttsctr: they load, match the paper's tables, and bad files are refused."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from ttsctr.errors import ConfigError
from ttsctr.report.paper import (COLUMNS, DATASETS, TABLES, PaperResults, load_paper_results,
                                 paper_counterpart)


@pytest.fixture(scope="module")
def paper() -> PaperResults:
    return load_paper_results()


def _cell(paper: PaperResults, table, dataset, model, method, scale):
    df = paper.records
    rows = df[(df.table == table) & (df.dataset == dataset) & (df.model == model) & (df.method == method)
              & (df.scale == scale)]
    assert len(rows) >= 1, (table, dataset, model, method, scale)
    return rows


def test_shipped_file_loads_with_every_table_and_dataset(paper):
    df = paper.records
    assert list(df.columns) == list(COLUMNS)
    assert set(df.table) == set(TABLES)
    assert set(df.dataset) == set(DATASETS)
    for table in TABLES:
        assert set(df[df.table == table].dataset) == set(DATASETS), table
    assert df.groupby("table").size().to_dict() == {
        "homogeneous": 120, "heterogeneous": 54, "width_scaling": 27, "orthogonality": 60, "model_merging": 80}
    assert "Lyu" in paper.citation and "SIGIR" in paper.citation and "2026" in paper.citation
    assert paper.source.endswith("tts-prediction-merging-sigir26.md")
    assert "not measurements of this project" in paper.note
    assert df.auc.between(0.4, 1.0).all()


@pytest.mark.parametrize(("key", "auc", "logloss"), [
    (("orthogonality", "criteo", "wukong", "base", 1), 0.8104, 0.4411),      # Table 5
    (("orthogonality", "kdd12", "rankmixer", "tts16", 16), 0.8152, 0.1490),  # Table 5
    (("model_merging", "avazu", "dcnv2", "backbone", 1), 0.7945, 0.3711),    # Table 6
    (("model_merging", "criteo", "finalmlp", "weights", 16), 0.5027, 0.6397),
    (("homogeneous", "avazu", "fnn", "backbone", 1), 0.7888, 0.3761),         # Table 1
    (("homogeneous", "kdd12", "wukong", "tts", 16), 0.8150, 0.1491),
    (("heterogeneous", "avazu", "wukong+rankmixer", "tts", 32), 0.8028, 0.3661),  # Table 2
    (("heterogeneous", "criteo", "rankmixer+dcnv2", "backbone", 1), 0.8136, 0.4382),
    (("width_scaling", "criteo", "R+W", "PM", 2), 0.8138, 0.4380),           # Table 4
    (("width_scaling", "kdd12", "W*2", "D-MoE", 2), 0.8130, 0.1497),
])
def test_spot_checks_against_the_paper(paper, key, auc, logloss):
    rows = _cell(paper, *key)
    assert len(rows) == 1
    assert math.isclose(rows.auc.iloc[0], auc) and math.isclose(rows.logloss.iloc[0], logloss)


def test_garbled_kdd12_block_of_table_6_is_kept_as_printed_and_marked(paper):
    backbone = _cell(paper, "model_merging", "kdd12", "dcnv2", "backbone", 1)
    assert math.isclose(backbone.logloss.iloc[0], 0.4385)
    assert backbone.note.iloc[0].startswith("garbled in source:")
    duplicated = _cell(paper, "model_merging", "kdd12", "wukong", "weights", 16)
    assert len(duplicated) == 2 and duplicated.note.str.startswith("garbled in source:").all()
    fine = _cell(paper, "model_merging", "kdd12", "wukong", "pred", 16)
    assert fine.note.isna().all()


def test_counterpart_filters_table_model_and_method_over_all_datasets(paper):
    rows = paper_counterpart(paper, "orthogonality", model="wukong", method="base")
    assert len(rows) == 15 and set(rows.dataset) == set(DATASETS) and set(rows.scale) == {1, 2, 4, 8, 16}
    assert len(paper_counterpart(paper, "width_scaling")) == 27
    with pytest.raises(ConfigError, match="unknown paper table"):
        paper_counterpart(paper, "table7")


_GOOD = "{table: homogeneous, dataset: avazu, model: fnn, method: backbone, scale: 1, auc: 0.7888, logloss: 0.3761}"


@pytest.mark.parametrize(("bad", "field"), [
    ("{table: table7, dataset: avazu, model: fnn, method: backbone, scale: 1, auc: 0.79, logloss: 0.37}", "table"),
    ("{table: homogeneous, dataset: avazu, model: fnn, method: backbone, scale: 1, auc: 1.7, logloss: 0.37}", "auc"),
    ("{table: homogeneous, dataset: avazu, model: fnn, method: backbone, scale: 1, logloss: 0.37}", "auc"),
    ("{table: homogeneous, dataset: avazu, model: fnn, method: backbone, scale: 1, auc: 0.79, logloss: high}",
     "logloss"),
])
def test_bad_record_names_file_record_index_and_field(tmp_path: Path, bad, field):
    path = tmp_path / "paper.yaml"
    path.write_text("citation: c\nsource: s\nnote: n\nrecords:\n"
                    f"  - {_GOOD}\n  - {_GOOD}\n  - {bad}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_paper_results(path)
    message = str(info.value)
    assert str(path) in message
    assert "record 2" in message
    assert re.search(rf"field '{field}'", message), message
