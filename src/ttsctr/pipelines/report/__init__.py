"""``kedro run --pipeline report``: the self-contained HTML report of every dataset's results."""

from ttsctr.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
