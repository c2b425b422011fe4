"""One report of every result, beside the paper's numbers, with the paper's claims computed.

Plain library code; ``kedro run --pipeline report`` writes ``data/08_reporting/report.html``.

* :mod:`~ttsctr.report.collect`: what the pipelines wrote, with provenance (data version, sizes,
  seeds, MLflow runs).
* :mod:`~ttsctr.report.results` / :mod:`~ttsctr.report.claims`: claims C1–C8 computed from the
  tables ("not run" where the data is missing).
* :mod:`~ttsctr.report.paper`: the paper's full-data numbers (``paper_results.yaml``, cited).
* :mod:`~ttsctr.report.html`: the self-contained HTML page; :mod:`~ttsctr.report.build` puts it
  together.
"""

from ttsctr.report.build import build_report
from ttsctr.report.claims import CLAIMS, ClaimSettings, claims_frame, evaluate_claims

__all__ = ["CLAIMS", "ClaimSettings", "build_report", "claims_frame", "evaluate_claims"]
