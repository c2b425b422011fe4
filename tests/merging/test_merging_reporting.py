"""Markdown tables in the paper's layout, the scaling plot and DVC metrics."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool, scaling_table
from ttsctr.reporting import grouping_markdown, metrics_json, scaling_markdown, scaling_plot


def _table(scales, aucs, lls, sig) -> pd.DataFrame:
    n = len(scales)
    return pd.DataFrame(
        {
            "scale": scales,
            "n_members": scales,
            "auc_mean": aucs,
            "auc_std": [0.001] * n,
            "logloss_mean": lls,
            "logloss_std": [0.0005] * n,
            "p_value": [float("nan")] + [0.01] * (n - 1),
            "significant": sig,
        }
    )


FNN = _table([1, 2, 4], [0.78884, 0.78971, 0.7903], [0.37612, 0.3755, 0.37444], [False, True, False])
IPNN = _table([1, 2], [0.7911, 0.79262], [0.3744, 0.3733], [False, True])


def test_homogeneous_markdown_exact() -> None:
    md = scaling_markdown({"FNN": FNN, "IPNN": IPNN}, layout="homogeneous", dataset="Avazu")
    assert md == (
        "| Dataset | Method | FNN AUC↑ | FNN Logloss↓ | IPNN AUC↑ | IPNN Logloss↓ |\n"
        "|---|---|---:|---:|---:|---:|\n"
        "| Avazu | Backbone | 0.7888 | 0.3761 | 0.7911 | 0.3744 |\n"
        "|  | 2× | 0.7897* | 0.3755 | 0.7926* | 0.3733 |\n"
        "|  | 4× | 0.7903 | 0.3744 | – | – |\n"
    )


def test_heterogeneous_markdown_exact_and_header_off() -> None:
    md = scaling_markdown({"Wukong+Rankmixer": FNN}, layout="heterogeneous")
    assert md == (
        "| Method | Wukong+Rankmixer AUC↑ | Wukong+Rankmixer Logloss↓ |\n"
        "|---|---:|---:|\n"
        "| 1× | 0.7888 | 0.3761 |\n"
        "| 2× | 0.7897* | 0.3755 |\n"
        "| 4× | 0.7903 | 0.3744 |\n"
    )
    body = scaling_markdown({"W+R": FNN}, layout="heterogeneous", dataset="Criteo", header=False)
    assert body.splitlines()[0] == "| Criteo | 1× | 0.7888 | 0.3761 |"


def test_star_follows_only_significant_aucs() -> None:
    md = scaling_markdown({"FNN": FNN})
    rows = md.splitlines()[2:]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert [c[1].endswith("*") for c in cells] == [False, True, False]
    assert not any(c[2].endswith("*") for c in cells)  # never on logloss


def test_markdown_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="layout"):
        scaling_markdown({"FNN": FNN}, layout="wide")
    with pytest.raises(ConfigError, match="missing columns"):
        scaling_markdown({"FNN": FNN.drop(columns=["auc_std"])})
    with pytest.raises(ConfigError, match="mapping"):
        scaling_markdown(FNN)


def test_grouping_markdown_exact() -> None:
    config = {
        "Avazu": {"DCNv2": {1: 1, 2: 2, 4: 4, 8: 8, 16: 8}, "Wukong": {1: 1, 2: 2, 4: 2}},
        "Criteo": {"RankMixer": {1: 1, 16: 1}},
    }
    assert grouping_markdown(config) == (
        "| Dataset | Model | 1× | 2× | 4× | 8× | 16× |\n"
        "|---|---|---:|---:|---:|---:|---:|\n"
        "| Avazu | DCNv2 | 1 | 2 | 4 | 8 | 8 |\n"
        "|  | Wukong | 1 | 2 | 2 | – | – |\n"
        "| Criteo | RankMixer | 1 | – | – | – | 1 |\n"
    )
    assert grouping_markdown({"DCNv2": {1: 1, 2: 2}}).splitlines()[2] == "| DCNv2 | 1 | 2 |"
    with pytest.raises(ConfigError, match="dividing the scale"):
        grouping_markdown({"DCNv2": {4: 3}})


def test_metrics_json_headline_aucs() -> None:
    out = metrics_json({"FNN": FNN, "IPNN": IPNN})
    assert out == {
        "FNN": {"auc_1x": 0.78884, "auc_2x": 0.78971, "auc_4x": 0.7903},
        "IPNN": {"auc_1x": 0.7911, "auc_2x": 0.79262},
    }
    json.dumps(out, allow_nan=False)


def test_scaling_plot_writes_png_atomically(tmp_path, pool: MemberPool) -> None:
    table = scaling_table(pool, scales=(1, 2, 4), draws=2)
    target = tmp_path / "plots" / "fnn_scaling.png"
    out = scaling_plot(table, target, title="FNN on synthetic", bayes_auc=0.83)
    assert out == target and target.exists()
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["fnn_scaling.png"]  # no temp file left
    # several ensembles, no ceiling, overwrite in place
    scaling_plot({"a": table, "b": table}, target, title="", bayes_auc=None)
    assert target.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="bayes_auc"):
        scaling_plot(table, target, bayes_auc=math.nan)
