"""The self-contained HTML report: every table and figure, the paper's numbers beside ours, the claims.

One file, no external resources (CSS inline, images embedded as ``data:`` URIs), so it opens
offline and can be mailed. Markdown the pipelines wrote is rendered with ``markdown`` (tables
extension); the paper's numbers are shown in their own, labelled tables, never mixed into ours.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import markdown as md
import pandas as pd

from ttsctr.report.claims import CLAIMS
from ttsctr.report.collect import DatasetReport, Section
from ttsctr.report.paper import PaperResults, paper_counterpart

__all__ = ["paper_table", "render_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #ccc;padding:.25em .5em}
th{background:#f2f2f2}td{font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
.provenance{background:#f7f9fc;border-left:4px solid #6b8fd6;padding:.4em .8em;font-size:.85em}
.provenance dt{font-weight:600;float:left;clear:left;width:11em}.provenance dd{margin-left:11.5em}
.paper{background:#fff8ec;border-left:4px solid #d9a43a;padding:.4em .8em;font-size:.88em}
.holds{background:#cfeccf}.partly{background:#fff0b3}.does-not-hold{background:#f6c6c6}.not-run{background:#e4e4e4;color:#555}
section{margin-bottom:2em}nav a{margin-right:1em}.small{font-size:.85em;color:#555}
"""


def _md(text: str | None, shift: int = 2) -> str:
    if not text:
        return ""
    text = re.sub(r"^(#{1,4}) ", lambda m: "#" * min(6, len(m.group(1)) + shift) + " ", text, flags=re.M)
    return md.markdown(text, extensions=["tables"])


def _image(path: Any) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, na_rep="–", escape=True, float_format=lambda v: f"{v:.4f}")


def _num(v: Any, digits: int = 4) -> str:
    """A number for the page; missing or non-numeric values as an en dash."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if f != f else f"{f:.{digits}f}"


def _status_class(status: str) -> str:
    return status.replace(" ", "-")


def paper_table(paper: PaperResults, section: Section, description: Mapping[str, Any] | None) -> pd.DataFrame | None:
    """The paper's counterpart of one of our sections as a small wide table ("AUC / logloss"
    cells), or None where the paper has no table for it. Cells marked garbled in the source are
    left out; inconsistent ones carry a dagger."""
    if section.kind == "ensemble":
        if not description or "layout" not in description:
            return None
        backbones = str(description["backbones"]).split("+")
        table = "homogeneous" if description["layout"] == "homogeneous" else "heterogeneous"
        names = ["+".join(backbones), "+".join(reversed(backbones))]
        df = pd.concat([paper_counterpart(paper, table, model=n) for n in dict.fromkeys(names)], ignore_index=True)
        index, columns = ["dataset", "model"], "scale"
    elif section.kind == "width_scaling":
        df, index, columns = paper_counterpart(paper, "width_scaling"), ["dataset", "model"], "method"
    elif section.kind == "orthogonality":
        df, index, columns = paper_counterpart(paper, "orthogonality"), ["dataset", "model", "method"], "scale"
    elif section.kind == "model_merging":
        df, index, columns = paper_counterpart(paper, "model_merging"), ["dataset", "method", "scale"], "model"
    else:
        return None
    note = df["note"].fillna("")
    df = df[~note.str.startswith("garbled")].copy()
    if df.empty:
        return None
    dagger = df["note"].fillna("").str.startswith("inconsistent").map({True: " †", False: ""})
    df["cell"] = df["auc"].map(_num) + " / " + df["logloss"].map(_num) + dagger
    wide = df.pivot_table(index=index, columns=columns, values="cell", aggfunc="first", sort=False)
    wide.columns = [f"{c}×" if columns == "scale" else str(c) for c in wide.columns]
    return wide.reset_index()


def _provenance(p: Mapping[str, Any]) -> str:
    rows = [("dataset", p.get("dataset")), ("data version", p.get("data_version") or "unknown")]
    sizes = p.get("sizes") or {}
    rows += [(str(k), v) for k, v in sizes.items()]
    runs = p.get("mlflow_runs") or {}
    rows.append(("MLflow run", ", ".join(f"{k}: {v}" for k, v in runs.items()) if runs else "not found in the tracking store"))
    rows.append(("files", ", ".join(p.get("files") or [])))
    body = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f'<dl class="provenance">{body}</dl>'


def _section(section: Section, paper: PaperResults, anchor: str) -> str:
    parts = [f'<section id="{anchor}"><h3>{html.escape(section.title)}</h3>', _provenance(section.provenance),
             _md(section.markdown, shift=3)]
    parts += [_image(p) for p in section.images]
    counterpart = paper_table(paper, section, section.provenance.get("sizes"))
    if counterpart is not None:
        parts.append('<div class="paper"><b>The paper\'s numbers, other data</b> (Lyu et al., SIGIR 2026, full '
                     "Avazu / Criteo / KDD12; AUC / logloss as published, not measured here and not comparable "
                     "cell by cell with the table above; † inconsistent in the source, cells garbled in the "
                     "source left out)" + _table(counterpart) + "</div>")
    elif section.kind in ("param_scaling", "efficiency", "training_free", "analysis"):
        parts.append('<p class="small">The paper shows this as a figure only; no table to set beside it.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _dataset_header(report: DatasetReport) -> str:
    rows = []
    s = report.summary or {}
    if s:
        rows.append(("data version", s.get("data_version")))
        rows.append(("rows", f"{s.get('rows')} ({s.get('positives')} clicks)"))
        for split, v in (s.get("splits") or {}).items():
            rows.append((f"{split} split", f"{v.get('rows')} rows, positive rate {_num(v.get('positive_rate'))}"))
        if s.get("bayes_optimal_auc") is not None:
            rows.append(("Bayes-optimal test AUC", f"{_num(s['bayes_optimal_auc'])} (planted model)"))
        rows.append(("raw files", ", ".join(s.get("raw_files") or [])))
    lr = report.logistic or {}
    if lr:
        rows.append(("logistic regression", f"test AUC {_num(lr.get('test_auc'))}, logloss "
                                            f"{_num(lr.get('test_logloss'))} (C = {lr.get('C')}), the floor of every table"))
    if not rows:
        return "<p>No data summary found.</p>"
    body = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f'<dl class="provenance">{body}</dl>'


def _claims(claims: pd.DataFrame, datasets: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(d)}</th>" for d in datasets)
    rows = []
    for cid, statement in CLAIMS.items():
        cells = []
        for d in datasets:
            hit = claims[(claims["claim"] == cid) & (claims["dataset"] == d)]
            status = hit["status"].iloc[0] if len(hit) else "not run"
            cells.append(f'<td class="{_status_class(status)}"><a href="#{cid}-{d}">{html.escape(status)}</a></td>')
        rows.append(f"<tr><td><b>{cid}</b> {html.escape(statement)}</td>{''.join(cells)}</tr>")
    matrix = f"<table><tr><th>claim</th>{head}</tr>{''.join(rows)}</table>"
    details = []
    for r in claims.itertuples():
        sig = "no test stored" if pd.isna(r.significant) else f"{int(r.significant)} significant"
        details.append(f'<tr id="{r.claim}-{r.dataset}"><td>{r.claim}</td><td>{html.escape(r.dataset)}</td>'
                       f'<td class="{_status_class(r.status)}">{html.escape(r.status)}</td>'
                       f"<td>{int(r.comparisons)} ({sig})</td><td>{html.escape(r.evidence)}</td></tr>")
    detail = ("<table><tr><th>claim</th><th>dataset</th><th>status</th><th>cells</th><th>evidence (computed)</th></tr>"
              + "".join(details) + "</table>")
    return matrix + "<h3>Evidence</h3>" + detail


def render_report(reports: Sequence[DatasetReport], claims: pd.DataFrame, paper: PaperResults, *,
                  generated: str, project: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """The whole report as one HTML string."""
    datasets = [r.dataset for r in reports]
    nav = "".join(f'<a href="#{d}">{html.escape(d)}</a>' for d in datasets)
    meta = ", ".join(f"{k} {v}" for k, v in project.items())
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>ttsctr report</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>Test-time scaling by prediction merging: report</h1>",
        f"<p class='small'>Generated {html.escape(generated)}; {html.escape(meta)}. Every number below was read "
        "from the files the pipelines wrote; the claims are computed from them.</p>",
        f"<nav>{nav}<a href='#paper'>paper numbers</a></nav>",
        "<h2 id='claims'>Which of the paper's claims hold here</h2>",
        "<p class='small'>holds: every comparison supports the claim (C3: one group size above independent training at every K); partly: some do; does not hold: "
        "none does; not run: the data for it was not produced. Thresholds: "
        + html.escape(", ".join(f"{k} = {v}" for k, v in settings.items())) + ".</p>",
        _claims(claims, datasets),
    ]
    for report in reports:
        parts.append(f"<h2 id='{html.escape(report.dataset)}'>{html.escape(report.dataset)}</h2>")
        parts.append(_dataset_header(report))
        if not report.sections:
            parts.append("<p>No results for this dataset.</p>")
        for i, section in enumerate(report.sections):
            parts.append(_section(section, paper, f"{report.dataset}-{section.name}-{i}"))
    parts += ["<h2 id='paper'>Where the paper's numbers come from</h2>",
              f"<p>{html.escape(paper.citation)}</p>",
              f"<p class='small'>{html.escape(paper.note)} Copied from the paper's tables into "
              "<code>src/ttsctr/report/paper_results.yaml</code> (source: "
              f"<code>{html.escape(paper.source)}</code>).</p>", "</body></html>"]
    return "\n".join(parts)
