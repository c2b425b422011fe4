"""Node of ``kedro run --pipeline report``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ttsctr import tracking
from ttsctr.report import build_report

log = logging.getLogger(__name__)


def build_html_report(report: dict[str, Any], tts: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    """Every dataset's tables and figures under ``data/08_reporting`` in one HTML page, with the
    paper's claims computed from them; logged to MLflow as a nested run ``report``."""
    import mlflow

    page, claims = build_report(Path.cwd(), report, tts, mlflow.get_tracking_uri())
    if tracking.tracking_active():
        with tracking.nested_run("report", tags={"report": "html"}):
            mlflow.log_text(page, "report/report.html")
            mlflow.log_text(claims.to_csv(index=False), "report/claims.csv")
    summary = claims.pivot_table(index="claim", columns="dataset", values="status", aggfunc="first", sort=False)
    log.info("claims of the paper, computed from the results:\n%s", summary.to_string())
    return page, claims
