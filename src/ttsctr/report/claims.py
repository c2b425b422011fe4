"""Which of the paper's claims hold on a dataset, computed from its result tables.

Every verdict is computed from the tables of a :class:`~ttsctr.report.results.DatasetResults`
(no hand-written conclusions). Per claim and dataset the verdict rests on *cells* (one
comparison each, defined per claim below):

* ``holds`` when every cell supports the claim, ``partly`` when some do, ``does not hold``
  when none do;
* ``not run`` when there is no cell: the table is absent, the ensemble is absent, or the table
  lacks the rows the comparison needs. A table that is present but lacks a needed *column* is
  malformed and raises :class:`~ttsctr.errors.ConfigError` naming the table and the column.

C3 ("at some group size") holds as soon as one cell supports it.

Each :class:`ClaimResult` carries ``comparisons`` (the number of cells), ``significant`` (how
many cells are significant at ``alpha`` among those with a stored p-value; ``None`` where no
test is stored) and a computed ``evidence`` sentence: AUCs with 4 decimals, p-values as
``p = 0.024``, ``p = 3e-04`` or ``p < 1e-300`` (an underflowed 0), and the number of
independent draws the numbers rest on where the table records it (``n_draws`` / ``draws``).

Cells:

* C1 — per backbone, the homogeneous, independently trained (group size 1) ensemble with the
  most scales (at least 2): supports when ``auc_mean`` never decreases from one scale to the
  next and the largest scale is a significant improvement over 1× by DeLong's test
  (``p_delong < alpha`` and a positive ``delong_auc_diff``; the table's ``significant`` flag
  where those columns are absent).
* C2 — per heterogeneous ensemble (group size 1), backbone and member count K present in both
  it and that backbone's homogeneous ensemble: supports when the heterogeneous AUC is higher.
  No paired test is stored.
* C3 — per grouped ensemble (group size > 1) whose baseline is present and member count K in
  both: supports when the grouped AUC is higher. The grouped table's p-values test against the
  baseline's single members (1×), not against the baseline at equal K, so none is counted.
* C4 — ``param_scaling``: per model and scale > 1, TTS (``method == "tts"``) against the
  FLOPs-matched parameter-scaled configuration chosen at that scale (``best_of_scale``);
  supports when TTS has the higher test AUC; ``p_value`` is DeLong's test of that pair.
* C5 — ``width_scaling``: per configuration, PM against the better of ME and D-MoE (mean test
  AUC over draws); the stored p-value tests PM against ``pm_vs`` (chosen by validation AUC):
  DeLong for one draw, a paired t-test over draws for several (as the report does).
* C6 — ``orthogonality``: per (model, param_scale), supports when ``auc_gain > 0``.
* C7 — ``model_merging``: per model at its largest K with both ``pred`` and ``weights`` rows:
  supports when plain weight averaging (``weights``) is below the backbone by more than
  ``collapse_margin`` and prediction merging (``pred``) is above the backbone. Other variants
  (``weights_aligned``, ``*_shared_init``) are reported in the evidence only.
* C8 — ``training_free``: per model, Naive merged with its own MC-dropout (``Naive+MC``) and
  its own feature masking (``Naive+FM``): supports when ``|auc_gain| <= no_gain_tolerance``.
  The training-based pairs (Naive with DP, DP with DP+MC) are quoted for context, not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import partial
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.reporting import _fmt
from ttsctr.report.results import DatasetResults, EnsembleResult

__all__ = ["CLAIMS", "STATUSES", "FRAME_COLUMNS", "ClaimSettings", "ClaimResult", "evaluate_claims", "claims_frame"]

CLAIMS: Mapping[str, str] = MappingProxyType({
    "C1": "AUC rises with homogeneous scale (per backbone)",
    "C2": "heterogeneous beats homogeneous at equal K",
    "C3": "grouped training helps at some group size",
    "C4": "TTS beats FLOPs-matched parameter scaling",
    "C5": "prediction merging beats Multi-Embed and D-MoE",
    "C6": "gains persist on top of parameter scaling",
    "C7": "weight merging collapses while prediction merging rises",
    "C8": "training-free MC-dropout / feature masking give about no gain",
})

STATUSES = ("holds", "partly", "does not hold", "not run")

FRAME_COLUMNS = ("claim", "statement", "dataset", "status", "evidence", "comparisons", "significant")


# ----------------------------------------------------------------------------- settings and results


@dataclass(frozen=True)
class ClaimSettings:
    """``alpha``: significance level; ``collapse_margin``: how far (AUC) weight averaging must
    fall below the backbone to count as a collapse (C7); ``no_gain_tolerance``: the largest
    ``|auc_gain|`` that counts as "about no gain" (C8)."""

    alpha: float = 0.05
    collapse_margin: float = 0.01
    no_gain_tolerance: float = 0.001

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(v)):
                raise ConfigError(f"report.claims.{f.name} must be a finite number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"report.claims.alpha must be in (0, 1), got {self.alpha!r}")
        for name in ("collapse_margin", "no_gain_tolerance"):
            if getattr(self, name) < 0:
                raise ConfigError(f"report.claims.{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "ClaimSettings":
        """Settings from a parameters mapping (``report.claims``); absent keys keep their
        defaults, unknown keys and non-numbers raise :class:`ConfigError` naming the key."""
        if m is None:
            return cls()
        if not isinstance(m, Mapping):
            raise ConfigError(f"report.claims must be a mapping, got {m!r}")
        known = [f.name for f in fields(cls)]
        for key in m:
            if key not in known:
                raise ConfigError(f"report.claims.{key}: unknown setting; known settings: {known}")
        return cls(**dict(m))


@dataclass(frozen=True)
class ClaimResult:
    claim: str
    statement: str
    dataset: str
    status: str
    evidence: str
    comparisons: int
    significant: int | None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ConfigError(f"claim {self.claim}: status must be one of {STATUSES}, got {self.status!r}")


# ----------------------------------------------------------------------------- formatting helpers


def _finite(v: Any) -> bool:
    try:
        return v is not None and v is not pd.NA and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _p(p: Any) -> str:
    """``p = 0.024``, ``p = 3e-04``, ``p < 1e-300`` (an underflowed 0) or ``p n/a``."""
    if not _finite(p):
        return "p n/a"
    v = float(p)
    if v == 0.0:
        return "p < 1e-300"
    return f"p = {v:.3f}" if v >= 0.001 else f"p = {v:.0e}"


_auc = _fmt  # 4 decimals, "n/a" when undefined
_diff = partial(_fmt, signed=True)  # signed difference


def _scale(v: Any) -> str:
    return f"{float(v):g}×"


def _draws(values: Iterable[Any], noun: str = "distinct draw") -> str | None:
    """``1 distinct draw``, ``8 distinct draws`` or ``1–16 distinct draws``; None when unknown."""
    vals = sorted({int(float(v)) for v in values if _finite(v)})
    if not vals:
        return None
    lo, hi = vals[0], vals[-1]
    text = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return f"{text} {noun}{'' if hi == 1 else 's'}"


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return False
    return bool(v)


def _status(supported: int, cells: int) -> str:
    if cells == 0:
        return "not run"
    if supported == cells:
        return "holds"
    return "partly" if supported else "does not hold"


def _count_sig(ps: Sequence[Any], alpha: float) -> int | None:
    """How many stored p-values are below ``alpha``; None when no cell has one."""
    stored = [float(p) for p in ps if _finite(p)]
    return sum(p < alpha for p in stored) if stored else None


def _sig_note(ps: Sequence[Any], supports: Sequence[bool], alpha: float) -> str:
    """``p < 0.05 in 3 of 8 (2 in favour, 1 against)``; ``no p-value stored`` when none is."""
    stored = [(float(p), s) for p, s in zip(ps, supports) if _finite(p)]
    if not stored:
        return "no p-value stored"
    sig = [s for p, s in stored if p < alpha]
    note = f"p < {alpha:g} in {len(sig)} of {len(stored)} tested"
    if sig:
        note += f" ({sum(sig)} in favour, {len(sig) - sum(sig)} against)"
    return note


# ----------------------------------------------------------------------------- table access


def _check(df: pd.DataFrame, columns: Sequence[str], what: str, dataset: str,
           numeric: Sequence[str] = ()) -> pd.DataFrame:
    """``df`` after checking it has ``columns``; ``numeric`` ones coerced to float."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{dataset}: {what} lacks column {missing[0]!r} (missing {missing}; "
                          f"has {list(df.columns)})")
    out = df.copy()
    for c in numeric:
        if c in out.columns:
            try:
                out[c] = pd.to_numeric(out[c]).astype(float)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{dataset}: {what}, column {c!r} must be numeric: {exc}") from None
    return out


_SCALING_NEEDED = ("scale", "n_members", "auc_mean", "significant")
_SCALING_NUMERIC = ("scale", "n_members", "n_draws", "auc_mean", "auc_1x", "n_1x", "delong_auc_diff", "p_delong")


def _scaling(e: EnsembleResult, dataset: str) -> pd.DataFrame:
    t = _check(e.table, _SCALING_NEEDED, f"scaling table of ensemble {e.name!r}", dataset, _SCALING_NUMERIC)
    t = t[t["auc_mean"].notna()]
    return t.sort_values("scale", kind="stable").drop_duplicates("scale").reset_index(drop=True)


def _baseline(results: DatasetResults, name: str, columns: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame | None:
    """The comparison's table with the needed columns checked; rows whose AUC (``test_auc`` /
    ``auc_gain``) is missing are not comparisons and are dropped."""
    t = results.baselines.get(name)
    if t is None:
        return None
    t = _check(t, columns, f"{name} table", results.dataset, numeric)
    for col in ("test_auc", "auc_gain"):
        if col in t.columns:
            t = t[t[col].notna()]
    return t


def _row_significant(row: pd.Series, alpha: float) -> bool:
    """A significant improvement over 1× at ``alpha`` by DeLong's test (the table's flag where
    the p-value column is absent)."""
    if "p_delong" not in row.index:
        return _as_bool(row["significant"])
    p = row["p_delong"]
    if not _finite(p):
        return False
    if "delong_auc_diff" in row.index and _finite(row["delong_auc_diff"]):
        up = float(row["delong_auc_diff"]) > 0
    elif "auc_1x" in row.index and _finite(row["auc_1x"]):
        up = float(row["auc_mean"]) > float(row["auc_1x"])
    else:
        up = _as_bool(row["significant"])
    return float(p) < alpha and up


def _homogeneous(results: DatasetResults, min_rows: int) -> dict[str, tuple[EnsembleResult, pd.DataFrame]]:
    """Per backbone, its independently trained homogeneous ensemble with the most scales (ties:
    the larger largest scale, then the first in the mapping)."""
    chosen: dict[str, tuple[EnsembleResult, pd.DataFrame]] = {}
    for e in results.ensembles.values():
        if e.layout != "homogeneous" or e.group_size != 1:
            continue
        t = _scaling(e, results.dataset)
        if len(t) < min_rows:
            continue
        b = e.backbones[0]
        key = (len(t), float(t["scale"].max()) if len(t) else 0.0)
        if b not in chosen or key > (len(chosen[b][1]), float(chosen[b][1]["scale"].max())):
            chosen[b] = (e, t)
    return chosen


def _row_at(t: pd.DataFrame, column: str, value: float) -> pd.Series | None:
    rows = t[t[column] == value]
    return rows.iloc[0] if len(rows) else None


def _draw_col(t: pd.DataFrame, column: str = "draws") -> list[Any]:
    return list(t[column]) if column in t.columns else []


@dataclass
class _Verdict:
    supported: int
    cells: int
    evidence: str
    significant: int | None
    partial: bool = False  # some comparisons inside the cells support the claim (C3)


def _summary(supported: int, cells: int, what: str) -> str:
    return f"{supported}/{cells} {what}"


# ----------------------------------------------------------------------------- the claims


def _c1(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    chosen = _homogeneous(results, min_rows=2)
    if not chosen:
        return _Verdict(0, 0, "no independently trained homogeneous ensemble with 2 or more scales", None)
    parts, supported, sig = [], 0, 0
    for b, (e, t) in chosen.items():
        aucs = t["auc_mean"].to_numpy(dtype=float)
        scales = t["scale"].to_numpy(dtype=float)
        drops = [f"{_scale(scales[i])}→{_scale(scales[i + 1])}" for i in range(len(aucs) - 1)
                 if not aucs[i + 1] >= aucs[i]]
        top = t.iloc[-1]
        top_sig = _row_significant(top, s.alpha)
        sig += top_sig
        ok = not drops and top_sig
        supported += ok
        text = f"{b} ({e.name}): " + " → ".join(_auc(a) for a in aucs)
        p = top["p_delong"] if "p_delong" in t.columns else None
        text += f"; {_scale(top['scale'])} vs 1× DeLong {_p(p)}" if p is not None else \
            f"; {_scale(top['scale'])} flagged {'significant' if top_sig else 'not significant'} vs 1×"
        notes = []
        if "n_draws" in t.columns and _finite(top["n_draws"]):
            notes.append(_draws([top["n_draws"]]))
        if "n_1x" in t.columns and _finite(top["n_1x"]):
            notes.append(f"1× = {int(top['n_1x'])} members")
        if notes:
            text += f" ({'; '.join(notes)})"
        if drops:
            text += f" — AUC falls {', '.join(drops)}"
        if not top_sig:
            text += f" — top scale not significant at α = {s.alpha:g}"
        parts.append(text)
    head = _summary(supported, len(chosen), "backbones rise monotonically to a significant top scale")
    return _Verdict(supported, len(chosen), head + ". " + ". ".join(parts), sig)


def _equal_k(a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[str], int, int, list[Any]]:
    """``a`` against ``b`` at every member count both tables hold: the evidence items, the number
    of cells, how many have ``a`` higher, and the draws the AUCs rest on."""
    items, cells, supported, draws = [], 0, 0, []
    for k in sorted(set(a["n_members"].dropna()) & set(b["n_members"].dropna())):
        ar, br = _row_at(a, "n_members", k), _row_at(b, "n_members", k)
        d = float(ar["auc_mean"]) - float(br["auc_mean"])
        cells += 1
        supported += d > 0
        draws += [r["n_draws"] for r in (ar, br) if "n_draws" in r.index]
        items.append(f"K={int(k)} {_auc(ar['auc_mean'])} vs {_auc(br['auc_mean'])} ({_diff(d)})")
    return items, cells, supported, draws


def _equal_k_text(head: str, parts: list[str], tail: str, draws: list[Any], missing: list[str]) -> str:
    d = _draws(draws)
    text = head + ". " + ". ".join(parts) + f" ({f'AUCs are means over {d}; ' if d else ''}{tail})"
    return text + (". Not compared: " + "; ".join(missing) if missing else "")


def _c2(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    hets = [e for e in results.ensembles.values() if e.layout == "heterogeneous" and e.group_size == 1]
    if not hets:
        return _Verdict(0, 0, "no heterogeneous ensemble", None)
    homs = _homogeneous(results, min_rows=1)
    parts, missing, cells, supported, draws = [], [], 0, 0, []
    for h in hets:
        ht = _scaling(h, results.dataset)
        for b in h.backbones:
            if b not in homs:
                missing.append(f"{h.name}: no homogeneous {b} ensemble")
                continue
            e, t = homs[b]
            items, n, up, ds = _equal_k(ht, t)
            if not n:
                missing.append(f"{h.name} vs {e.name}: no common member count")
                continue
            cells, supported, draws = cells + n, supported + up, draws + ds
            parts.append(f"{h.name} vs {e.name}: " + ", ".join(items))
    if cells == 0:
        return _Verdict(0, 0, "; ".join(missing) or "no comparable member counts", None)
    head = _summary(supported, cells, "(ensemble, backbone, K) cells have the heterogeneous AUC higher")
    return _Verdict(supported, cells, _equal_k_text(head, parts, "no paired test stored", draws, missing), None)


def _c3(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    grouped = [e for e in results.ensembles.values() if e.group_size > 1]
    if not grouped:
        return _Verdict(0, 0, "no grouped ensemble", None)
    parts, missing, cells, supported, draws, partial = [], [], 0, 0, [], False
    for g in grouped:
        base = results.ensembles.get(g.baseline) if g.baseline else None
        if base is None:
            missing.append(f"{g.name}: baseline {g.baseline or '(none given)'} not present")
            continue
        items, n, up, ds = _equal_k(_scaling(g, results.dataset), _scaling(base, results.dataset))
        if not n:
            missing.append(f"{g.name} vs {base.name}: no common member count")
            continue
        # one cell per grouped ensemble (group size): it supports the claim when grouped training
        # is above independent training at every common member count
        cells, supported, draws = cells + 1, supported + (up == n), draws + ds
        partial = partial or 0 < up < n
        parts.append(f"{g.name} (group size {g.group_size}) vs {base.name}, above at {up}/{n} K: " + ", ".join(items))
    if cells == 0:
        return _Verdict(0, 0, "; ".join(missing), None)
    head = f"grouped above independent training at every K for {supported}/{cells} group sizes"
    tail = "no test of grouped vs independent at equal K stored"
    return _Verdict(supported, cells, _equal_k_text(head, parts, tail, draws, missing), None, partial)


_PARAM = ("model", "scale", "method", "test_auc", "best_of_scale", "p_value")


def _c4(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    t = _baseline(results, "param_scaling", _PARAM, ("scale", "test_auc", "p_value", "draws"))
    if t is None:
        return _Verdict(0, 0, "no param_scaling table", None)
    parts, ps, sup_list, draws = [], [], [], []
    for model in dict.fromkeys(t["model"]):
        m = t[t["model"] == model]
        items = []
        for scale in sorted(v for v in set(m["scale"].dropna()) if v > 1):
            at = m[m["scale"] == scale]
            tts = at[at["method"] == "tts"]
            best = at[(at["method"] != "tts") & at["best_of_scale"].map(_as_bool)]
            if not len(tts) or not len(best):
                continue
            tr, br = tts.iloc[0], best.iloc[0]
            d = float(tr["test_auc"]) - float(br["test_auc"])
            sup_list.append(d > 0)
            ps.append(tr["p_value"])
            draws += [r["draws"] for r in (tr, br) if "draws" in r.index]
            label = str(br["method"]).removeprefix("param:")
            items.append(f"{_scale(scale)} {_auc(tr['test_auc'])} vs {label} {_auc(br['test_auc'])} "
                         f"({_diff(d)}, {_p(tr['p_value'])})")
        if items:
            parts.append(f"{model}: " + ", ".join(items))
    if not sup_list:
        return _Verdict(0, 0, "param_scaling table has no TTS row with a best parameter-scaled row at a scale > 1",
                        None)
    supported = sum(sup_list)
    head = (f"TTS above the best FLOPs-matched parameter-scaled configuration in {supported}/{len(sup_list)} "
            f"cells; {_sig_note(ps, sup_list, s.alpha)} (DeLong)")
    d = _draws(draws, "draw")
    text = head + ". " + ". ".join(parts) + (f" (each AUC rests on {d})" if d else "")
    return _Verdict(supported, len(sup_list), text, _count_sig(ps, s.alpha))


_WIDTH = ("configuration", "method", "test_auc")


def _width_p(c: pd.DataFrame) -> tuple[Any, str, str | None]:
    """PM's p-value against ``pm_vs``, the test's name and the baseline tested against."""
    pm = c[c["method"] == "PM"]
    if "seed" in pm.columns:
        pm = pm.sort_values("seed", kind="stable")
    versus = None
    if "pm_vs" in pm.columns and pm["pm_vs"].notna().any():
        versus = str(pm["pm_vs"].mode().iloc[0])
    if len(pm) == 1:
        p = pm["p_value"].iloc[0] if "p_value" in pm.columns else None
        return p, "DeLong", versus
    if {"seed", "pm_vs"} <= set(c.columns):
        from scipy.stats import ttest_rel

        other = []
        for seed, vs in zip(pm["seed"], pm["pm_vs"]):
            r = c[(c["seed"] == seed) & (c["method"] == vs)]
            if not len(r):
                return None, "paired t", versus
            other.append(float(r["test_auc"].iloc[0]))
        p = float(ttest_rel(pm["test_auc"].to_numpy(dtype=float), np.asarray(other)).pvalue)
        return p, f"paired t over {len(pm)} draws", versus
    return None, "no test", versus


def _c5(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    t = _baseline(results, "width_scaling", _WIDTH, ("test_auc", "p_value", "draws"))
    if t is None:
        return _Verdict(0, 0, "no width_scaling table", None)
    parts, ps, sup_list, draws = [], [], [], []
    for config in dict.fromkeys(t["configuration"]):
        c = t[t["configuration"] == config]
        means = c.groupby("method", sort=False)["test_auc"].mean()
        others = {m: means[m] for m in ("ME", "D-MoE") if m in means.index}
        if "PM" not in means.index or not others:
            continue
        best = max(others, key=lambda m: others[m])
        d = float(means["PM"]) - float(others[best])
        sup_list.append(d > 0)
        p, test, versus = _width_p(c)
        ps.append(p)
        pm = c[c["method"] == "PM"]
        n = int(pm["draws"].sum()) if "draws" in pm.columns and pm["draws"].notna().all() else len(pm)
        draws.append(n)
        rivals = " / ".join(f"{m} {_auc(v)}" for m, v in others.items())
        p_text = f"{test} {_p(p)}" + (f" vs {versus}" if versus else "")
        parts.append(f"{config}: PM {_auc(means['PM'])} vs {rivals} ({_diff(d)} over {best}; {p_text}; "
                     f"{_draws([n], 'draw')})")
    if not sup_list:
        return _Verdict(0, 0, "width_scaling table has no configuration with PM and ME or D-MoE rows", None)
    supported = sum(sup_list)
    head = (f"PM above max(ME, D-MoE) in {supported}/{len(sup_list)} configurations; "
            f"{_sig_note(ps, sup_list, s.alpha)}")
    return _Verdict(supported, len(sup_list), head + ". " + ". ".join(parts), _count_sig(ps, s.alpha))


_ORTHO = ("model", "param_scale", "auc_gain")


def _c6(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    t = _baseline(results, "orthogonality", _ORTHO, ("param_scale", "auc_gain", "p_value", "draws", "tts_members"))
    if t is None:
        return _Verdict(0, 0, "no orthogonality table", None)
    if not len(t):
        return _Verdict(0, 0, "orthogonality table has no row with an AUC gain", None)
    parts, ps, sup_list = [], [], []
    for model in dict.fromkeys(t["model"]):
        m = t[t["model"] == model].sort_values("param_scale", kind="stable")
        items = []
        for row in m.to_dict("records"):
            sup_list.append(float(row["auc_gain"]) > 0)
            p = row.get("p_value")
            ps.append(p)
            dim = f" {row['dimension']}" if "dimension" in row else ""
            items.append(f"{_scale(row['param_scale'])}{dim} {_diff(row['auc_gain'])}"
                         + (f" ({_p(p)})" if "p_value" in row else ""))
        k = ""
        if "tts_members" in m.columns and m["tts_members"].notna().any():
            k = f" (TTS {int(m['tts_members'].iloc[0])}×)"
        parts.append(f"{model}{k}: " + ", ".join(items))
    supported = sum(sup_list)
    head = (f"TTS gain positive at {supported}/{len(sup_list)} parameter scales; "
            f"{_sig_note(ps, sup_list, s.alpha)} (DeLong)")
    d = _draws(_draw_col(t), "draw")
    text = head + ". " + ". ".join(parts) + (f" (each cell rests on {d})" if d else "")
    return _Verdict(supported, len(sup_list), text, _count_sig(ps, s.alpha))


_MERGE = ("model", "members", "method", "test_auc")


def _c7(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    t = _baseline(results, "model_merging", _MERGE, ("members", "test_auc", "draws"))
    if t is None:
        return _Verdict(0, 0, "no model_merging table", None)
    parts, supported, cells = [], 0, 0
    for model in dict.fromkeys(t["model"]):
        m = t[t["model"] == model]
        base = m[m["method"] == "backbone"]
        ks = set(m[m["method"] == "pred"]["members"]) & set(m[m["method"] == "weights"]["members"])
        if not len(base) or not ks:
            continue
        k = max(ks)
        at = m[m["members"] == k]
        b = float(base["test_auc"].iloc[0])
        pred = float(at[at["method"] == "pred"]["test_auc"].iloc[0])
        weights = float(at[at["method"] == "weights"]["test_auc"].iloc[0])
        collapse, rise = b - weights > s.collapse_margin, pred > b
        ok = collapse and rise
        cells += 1
        supported += ok
        text = (f"{model} K={int(k)}: backbone {_auc(b)}, pred {_auc(pred)} ({_diff(pred - b)}), "
                f"weights {_auc(weights)} ({_diff(weights - b)})")
        others = [f"{method} {_auc(auc)}" for method, auc in zip(at["method"], at["test_auc"])
                  if method not in ("pred", "weights", "backbone")]
        if others:
            text += "; " + ", ".join(others)
        why = []
        if not collapse:
            why.append(f"weights not below backbone by > {s.collapse_margin:g}")
        if not rise:
            why.append("pred not above backbone")
        if why:
            text += " — " + " and ".join(why)
        parts.append(text)
    if cells == 0:
        return _Verdict(0, 0, "model_merging table has no model with backbone, pred and weights rows", None)
    head = _summary(supported, cells, f"models: weight averaging collapses (> {s.collapse_margin:g} below the "
                                      f"backbone) while prediction merging rises")
    d = _draws(_draw_col(t), "draw")
    tail = f" (each AUC rests on {d}; no test stored)" if d else " (no test stored)"
    return _Verdict(supported, cells, head + ". " + ". ".join(parts) + tail, None)


_FREE = ("source_i", "source_j", "auc_gain")
_BASE_SOURCE = "Naive"
_FREE_VARIANTS = ("Naive+MC", "Naive+FM")
_CONTEXT_PAIRS = (("Naive", "DP"), ("DP", "DP+MC"))


def _pair_gain(m: pd.DataFrame, a: str, b: str) -> float | None:
    r = m[((m["source_i"] == a) & (m["source_j"] == b)) | ((m["source_i"] == b) & (m["source_j"] == a))]
    return float(r["auc_gain"].iloc[0]) if len(r) else None


def _c8(results: DatasetResults, s: ClaimSettings) -> _Verdict:
    t = _baseline(results, "training_free", _FREE, ("auc_gain",))
    if t is None:
        return _Verdict(0, 0, "no training_free table", None)
    models = list(dict.fromkeys(t["model"])) if "model" in t.columns else [None]
    parts, supported, cells = [], 0, 0
    for model in models:
        m = t if model is None else t[t["model"] == model]
        items, context = [], []
        for variant in _FREE_VARIANTS:
            g = _pair_gain(m, _BASE_SOURCE, variant)
            if g is None:
                continue
            ok = abs(g) <= s.no_gain_tolerance
            cells += 1
            supported += ok
            items.append(f"{_BASE_SOURCE} + {variant} {_diff(g, 5)}")
        for a, b in _CONTEXT_PAIRS:
            g = _pair_gain(m, a, b)
            if g is not None:
                context.append(f"{a} + {b} {_diff(g, 5)}")
        if items:
            text = (f"{model}: " if model is not None else "") + ", ".join(items)
            if context:
                text += f" (training-based, not counted: {', '.join(context)})"
            parts.append(text)
    if cells == 0:
        return _Verdict(0, 0, "training_free table has no Naive + Naive+MC / Naive+FM pair", None)
    head = _summary(supported, cells, f"training-free pairs within ±{s.no_gain_tolerance:g} AUC of their better "
                                      f"member")
    return _Verdict(supported, cells, head + ". " + ". ".join(parts) + " (each source one trained model; no test "
                    "stored)", None)


_RULES: Mapping[str, Callable[[DatasetResults, ClaimSettings], _Verdict]] = MappingProxyType({
    "C1": _c1, "C2": _c2, "C3": _c3, "C4": _c4, "C5": _c5, "C6": _c6, "C7": _c7, "C8": _c8,
})


# ----------------------------------------------------------------------------- public API


def evaluate_claims(results: DatasetResults, settings: ClaimSettings = ClaimSettings()) -> list[ClaimResult]:
    """The verdicts of C1..C8 on one dataset, in order."""
    if not isinstance(results, DatasetResults):
        raise ConfigError(f"evaluate_claims: results must be DatasetResults, got {type(results).__name__}")
    if not isinstance(settings, ClaimSettings):
        raise ConfigError(f"evaluate_claims: settings must be ClaimSettings, got {type(settings).__name__}")
    out = []
    for claim, statement in CLAIMS.items():
        v = _RULES[claim](results, settings)
        if claim == "C3":  # "at some group size": one group size above at every K suffices
            status = ("not run" if v.cells == 0 else "holds" if v.supported
                      else "partly" if v.partial else "does not hold")
        else:
            status = _status(v.supported, v.cells)
        out.append(ClaimResult(claim, statement, results.dataset, status, v.evidence, v.cells,
                               v.significant if v.cells else None))
    return out


def claims_frame(results: Sequence[DatasetResults], settings: ClaimSettings = ClaimSettings()) -> pd.DataFrame:
    """Long table of every claim on every dataset: :data:`FRAME_COLUMNS`, one row per (dataset,
    claim), datasets in the given order; ``significant`` is a nullable integer (NA: no test)."""
    if isinstance(results, DatasetResults):
        results = [results]
    verdicts = [r for d in results for r in evaluate_claims(d, settings)]
    data: dict[str, Any] = {c: [getattr(r, c) for r in verdicts] for c in FRAME_COLUMNS}
    data["comparisons"] = pd.array(data["comparisons"], dtype="int64")
    data["significant"] = pd.array([pd.NA if v is None else int(v) for v in data["significant"]], dtype="Int64")
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))
