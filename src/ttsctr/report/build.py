"""Build the report of everything under ``data/08_reporting``: collect, compute the claims, render."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.report.claims import ClaimSettings, claims_frame
from ttsctr.report.collect import RunIndex, collect_dataset, discover_datasets
from ttsctr.report.html import render_report
from ttsctr.report.paper import load_paper_results

log = logging.getLogger(__name__)

__all__ = ["REPORT_KEYS", "build_report"]

REPORT_KEYS = ("datasets", "claims")


def _project_meta(root: Path) -> dict[str, str]:
    from ttsctr import __version__

    meta = {"ttsctr": __version__}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            meta["commit"] = commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return meta


def build_report(root: Path, settings: Mapping[str, Any], tts: Mapping[str, Any], tracking_uri: str | None,
                 generated: str | None = None) -> tuple[str, pd.DataFrame]:
    """The HTML report and the claims table (claim × dataset) of the datasets under
    ``<root>/<tts.paths.reporting>`` (``settings.datasets``: a list to restrict them, empty = all)."""
    unknown = [k for k in settings if k not in REPORT_KEYS]
    if unknown:
        raise ConfigError(f"report: unknown keys {unknown}; expected some of {list(REPORT_KEYS)}")
    paths = tts.get("paths") or {}
    reporting = paths.get("reporting", "data/08_reporting")
    found = discover_datasets(root / reporting)
    wanted = settings.get("datasets") or []
    if isinstance(wanted, str) or not isinstance(wanted, Sequence):
        raise ConfigError(f"report.datasets must be a list of dataset names, got {wanted!r}")
    missing = [d for d in wanted if d not in found]
    if missing:
        raise ConfigError(f"report.datasets: no results for {missing} under {root / reporting} (found {found})")
    datasets = list(wanted) or found
    if not datasets:
        raise ConfigError(f"report: no results under {root / reporting}; run `kedro run` (or a comparison) first")
    claim_settings = ClaimSettings.from_mapping(settings.get("claims"))
    runs = RunIndex(tracking_uri, root)
    reports = [collect_dataset(root, d, tts, runs, reporting=reporting,
                               models=paths.get("models", "data/06_models")) for d in datasets]
    claims = claims_frame([r.results for r in reports], claim_settings)
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = render_report(reports, claims, load_paper_results(), generated=generated, project=_project_meta(root),
                         settings={"alpha": claim_settings.alpha, "collapse_margin": claim_settings.collapse_margin,
                                   "no_gain_tolerance": claim_settings.no_gain_tolerance})
    return page, claims
