"""EST scaling law on MovieLens-100K sequences: ΔGAUC = E·X^α against FLOPs (C) and dense parameters (P).

    python benchmarks/est_scaling_law.py [--epochs 30] [--seeds 2] [--depths 1,2,3,4] [--widths 8,16,32,48]
                                         [--threads 1] [--quick] [--out PNG]

What it measures (EST paper §6.4, Figures 4 and 5, at toy scale): EST is trained at several
depths S (``num_layers``; at the preset's width, 16 for ``small``) and several token widths d
(``embedding_dim``; at the preset's depth, 2 for ``small``; the other ``small`` settings, 2 heads,
FFN expansion 2, MLP (128, 64), stay fixed), plus the paper's base model, here ``seq_mean_pool``
(mean-pooled behaviours + N into an MLP, ``small`` preset). Data, split and protocol are those
of ``benchmarks/est_movielens.py``: sequences built by ``ttsctr.data.sequences`` from
``../shared/data/movielens-100k`` (chronological 8:1:1 split), the project's trainer with the
``reference`` protocol (early stopping on validation AUC, ``--epochs`` as the cap). Each model
is trained with ``--seeds`` seeds (0, 1, ...); test AUC and GAUC (per user, impression-weighted)
are averaged over the seeds, and

    ΔGAUC = (GAUC − GAUC_base) / GAUC_base · 100 %

with both GAUCs seed-averaged (``ΔGAUC sd`` is the seed-to-seed sd of the per-seed ΔGAUC
against the mean base, a noise yardstick: GAUC on ~10k test rows moves by a few 0.1 %). C is
the measured FLOPs per row (``ttsctr.flops.model_cost``; the paper uses GFLOPs per batch of 60,
which only rescales E, not α); P the dense parameters (embedding tables excluded, as in the
paper). The power law is fitted (``ttsctr.analysis.fit_power_law``, least squares in the
original space) separately for the depth axis and the width axis, against C and against P.
Points with ΔGAUC ≤ 0 cannot enter a power law: they are dropped with a note, and a fit with
fewer than 3 points left is not made. At this scale (≈ 80k training rows, models of 10⁴-10⁵
dense parameters) EST need not beat the base model at all (README: EST small GAUC 0.6886 vs
seq_mean_pool 0.7009 in one run), so expect noisy or missing fits; this measures whether a
power law shows up here, it does not reproduce the paper's 5-50 GFLOPs / 30M-0.3B range.

Writes a log-log plot (left: against C, right: against P) to ``--out`` and the table as CSV
beside it (same stem, ``.csv``), the fits as ``<stem>_fits.csv``.

Time on 1 thread of a shared 2-core machine: the full default run (7 distinct EST shapes + the
base, 2 seeds, 16 trainings; early stopping ends each after 3-5 epochs, the best epoch being
the first or second) took 977 s (~16 min), the depth-3/4 and width-32/48 models dominating;
``--quick`` (1 seed, 1 epoch, depths 1,2,3, widths 8,16,24, the first 8,000 training rows)
about 30 s. Not run by the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "08_reporting" / "movielens_seq" / "est_scaling_law.png"


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sorted(set(values))


def fit_axes(table):
    """Fit ΔGAUC% = E·X^α per axis (depth, width) against C and P; print the fits and the dropped
    points; return (one dict per fit for the CSV, {"C": image, "P": image})."""
    from ttsctr.analysis import fit_power_law, plot_power_law

    fit_rows, series = [], {"C": {}, "P": {}}
    print("\npower law ΔGAUC% = E·X^α (least squares in the original space; se from the covariance; "
          "R² in log space)")
    for axis in ("depth", "width"):
        part = table[table["axis"].str.split("+").map(lambda a, axis=axis: axis in a)]
        kept = part[part["delta_gauc_pct"] > 0]
        dropped = part[part["delta_gauc_pct"] <= 0]
        if len(dropped):
            listed = ", ".join(f"S={int(r.depth)} d={int(r.width)} ({r.delta_gauc_pct:+.3f}%)"
                               for r in dropped.itertuples())
            print(f"  {axis} axis: dropped {len(dropped)} of {len(part)} point(s) with ΔGAUC ≤ 0 "
                  f"(no power law through them): {listed}")
        for xname, column in (("C", "flops_per_row"), ("P", "dense_params")):
            fitted = None
            if len(kept) < 3:
                print(f"  {axis} vs {xname}: only {len(kept)} point(s) with ΔGAUC > 0, fewer than 3: no fit")
            elif kept[column].nunique() < 2:
                print(f"  {axis} vs {xname}: the points share one {xname}: no fit")
            else:
                fitted = fit_power_law(kept[column].to_numpy(float), kept["delta_gauc_pct"].to_numpy(float))
                print(f"  {axis} vs {xname}: E = {fitted.E:.4g} ± {fitted.E_se:.2g}, α = {fitted.alpha:.4f} ± "
                      f"{fitted.alpha_se:.4f}, R² (log) = {fitted.r2_log:.3f}, n = {fitted.n}")
            fit_rows.append({"axis": axis, "x": xname, "n_points": len(part), "n_used": len(kept),
                             **({k: v for k, v in fitted.to_dict().items() if k != "cov"} if fitted else {})})
            # all points: the plot leaves out those ≤ 0 itself and says how many in the legend
            series[xname][f"{axis} axis"] = (part[column].to_numpy(float), part["delta_gauc_pct"].to_numpy(float),
                                             fitted)
    labels = {"C": "inference FLOPs per row (C)", "P": "dense parameters (P)"}
    panels = {x: plot_power_law(series[x], labels[x], "ΔGAUC vs seq_mean_pool (%)", symbol=x,
                                title=f"EST on MovieLens-100K: ΔGAUC against {x}", size=(700, 520))
              for x in ("C", "P")}
    return fit_rows, panels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", default=str(ROOT.parent / "shared" / "data" / "movielens-100k"))
    ap.add_argument("--epochs", type=int, default=30, help="epoch cap (early stopping usually ends sooner)")
    ap.add_argument("--preset", default="small", help="EST / seq_mean_pool preset the shapes start from")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--depths", type=_ints, default=[1, 2, 3, 4], help="depth axis S, at the preset's width")
    ap.add_argument("--widths", type=_ints, default=[8, 16, 32, 48], help="width axis d, at the preset's depth")
    ap.add_argument("--synthetic", type=int, default=0, metavar="USERS",
                    help="instead of MovieLens: the planted synthetic sequences of USERS users x 40 events "
                         "(ttsctr.data.sequences.synthetic_sequences, 1,000 items, L = 50, k = 10), a log with "
                         "headroom (its Bayes-optimal AUC is printed)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: 1 seed, 1 epoch, depths 1,2,3, widths 8,16,24, 8,000 training rows")
    ap.add_argument("--out", default=None, help=f"plot path (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                "with --quick, est_scaling_law_quick.png beside it)")
    args = ap.parse_args()
    train_rows = None
    if args.quick:
        args.epochs, args.seeds, args.depths, args.widths, train_rows = 1, 1, [1, 2, 3], [8, 16, 24], 8000
    out = Path(args.out) if args.out else DEFAULT_OUT.with_stem(DEFAULT_OUT.stem + ("_quick" if args.quick else ""))
    raw = Path(args.raw)
    if args.synthetic and not args.out:
        out = DEFAULT_OUT.parent.with_name("synthetic_seq") / out.name
    if not args.synthetic and not (raw / "u.data.gz").exists() and not (raw / "u.data").exists():
        print(f"MovieLens-100K not found in {raw} (expected u.data, u.item, u.user there); nothing to do")
        return 0
    if args.seeds < 1 or args.epochs < 1:
        ap.error("--seeds and --epochs must be >= 1")
    torch.set_num_threads(args.threads)

    import pandas as pd
    from PIL import Image

    from ttsctr.data.sequences import (
        SequenceConfig,
        bayes_auc,
        build_movielens_sequences,
        read_movielens,
        sequence_inputs,
        synthetic_sequences,
    )
    from ttsctr.flops import model_cost
    from ttsctr.metrics import group_auc, roc_auc
    from ttsctr.models.est import PRESETS
    from ttsctr.training import MemberSpec, TrainConfig, build_group, predict_logits, train

    if args.preset not in PRESETS:
        ap.error(f"--preset must be one of {sorted(PRESETS)}")
    preset = PRESETS[args.preset]
    base_depth, base_width = preset.num_layers, preset.embedding_dim
    bad = [d for d in args.widths if d % preset.num_heads]
    if bad:
        ap.error(f"--widths {bad} not divisible by the preset's {preset.num_heads} heads")

    start = time.perf_counter()
    if args.synthetic:
        data = synthetic_sequences(n_users=args.synthetic, n_items=1000, events_per_user=40, config=SequenceConfig(), seed=0)
        print(f"synthetic sequences: Bayes-optimal test AUC {bayes_auc(data):.4f}, GAUC "
              f"{group_auc(data.label[data.split == 2], data.true_prob[data.split == 2], data.user[data.split == 2]):.4f}")
    else:
        data = build_movielens_sequences(*read_movielens(raw), SequenceConfig())
    spec, splits = sequence_inputs(data)
    if train_rows is not None:
        splits["train"] = tuple(a[:train_rows] for a in splits["train"])
    users = data.user[data.split == 2]
    y = splits["test"][1]
    print(f"{'synthetic' if args.synthetic else 'MovieLens-100K'} sequences: {len(data.label)} events, {data.n_items} items; rows train/valid/test "
          f"{', '.join(str(v[0].shape[0]) for v in splits.values())}; built in {time.perf_counter() - start:.1f} s")
    config = TrainConfig.from_protocol("reference", max_epochs=args.epochs, num_threads=args.threads, progress=False)

    # (depth, width) -> axes it belongs to; the (base_depth, base_width) shape is on both, trained once
    shapes: dict[tuple[int, int], list[str]] = {}
    for s in args.depths:
        shapes.setdefault((s, base_width), []).append("depth")
    for d in args.widths:
        shapes.setdefault((base_depth, d), []).append("width")
    n_runs = (len(shapes) + 1) * args.seeds
    print(f"{len(shapes)} EST shapes (depths {args.depths} at d = {base_width}, widths {args.widths} at S = "
          f"{base_depth}) + seq_mean_pool, {args.seeds} seed(s) each: {n_runs} trainings, epoch cap {args.epochs}, "
          f"{args.threads} thread(s)", flush=True)

    def fit(name: str, seed: int, overrides: dict) -> dict:
        t = time.perf_counter()
        group = build_group(spec, [MemberSpec(name, seed, args.preset, overrides)], weight_init=config.weight_init)
        result = train(group, splits["train"], splits["validation"], config)
        p = predict_logits(group, splits["test"][0])[:, 0]
        cost = model_cost(group.members[0])
        row = {"auc": roc_auc(y, p), "gauc": group_auc(y, p, users), "dense_params": cost.dense_params,
               "flops_per_row": cost.flops_per_row, "epochs": result.epochs_completed,
               "seconds": time.perf_counter() - t}
        print(f"  {name} {overrides or ''} seed {seed}: AUC {row['auc']:.4f}, GAUC {row['gauc']:.4f}, "
              f"{row['epochs']} epochs, {row['seconds']:.0f} s", flush=True)
        return row

    def averaged(name: str, overrides: dict) -> dict:
        runs = [fit(name, seed, overrides) for seed in range(args.seeds)]
        return {"gauc_runs": [r["gauc"] for r in runs], "auc": float(np.mean([r["auc"] for r in runs])),
                "gauc": float(np.mean([r["gauc"] for r in runs])), "dense_params": runs[0]["dense_params"],
                "flops_per_row": runs[0]["flops_per_row"], "epochs": float(np.mean([r["epochs"] for r in runs])),
                "seconds": float(sum(r["seconds"] for r in runs))}

    base = averaged("seq_mean_pool", {})
    base_gauc = base["gauc"]
    records = []

    def record(model: str, axis: str, depth: int | None, width: int, res: dict) -> None:
        per_seed = [(g - base_gauc) / base_gauc * 100 for g in res["gauc_runs"]]
        records.append({
            "model": model, "axis": axis, "depth": depth, "width": width, "dense_params": res["dense_params"],
            "flops_per_row": res["flops_per_row"], "test_auc": res["auc"], "gauc": res["gauc"],
            "delta_gauc_pct": (res["gauc"] - base_gauc) / base_gauc * 100,
            "delta_gauc_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan"),
            "epochs": res["epochs"], "seconds": res["seconds"], "seeds": args.seeds,
        })

    record("seq_mean_pool", "base", None, base_width, base)
    for (depth, width), axes in shapes.items():
        record("est", "+".join(axes), depth, width, averaged("est", {"num_layers": depth, "embedding_dim": width}))
    table = pd.DataFrame(records)

    print(f"\nseed-averaged over {args.seeds} seed(s); ΔGAUC relative to seq_mean_pool (GAUC {base_gauc:.4f})")
    print(f"{'model':14s} {'axis':>11s} {'S':>2s} {'d':>3s} {'dense P':>8s} {'FLOPs/row':>10s} {'test AUC':>8s} "
          f"{'GAUC':>7s} {'ΔGAUC%':>7s} {'sd':>5s} {'ep':>4s} {'s':>5s}")
    for r in records:
        depth = "-" if r["depth"] is None else str(r["depth"])
        print(f"{r['model']:14s} {r['axis']:>11s} {depth:>2s} {r['width']:3d} {r['dense_params']:8d} "
              f"{r['flops_per_row']:10.0f} {r['test_auc']:8.4f} {r['gauc']:7.4f} {r['delta_gauc_pct']:+7.3f} "
              f"{r['delta_gauc_sd']:5.2f} {r['epochs']:4.1f} {r['seconds']:5.0f}")

    fit_rows, panels = fit_axes(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = Image.new("RGB", (1400, 520), "white")
    canvas.paste(panels["C"], (0, 0))
    canvas.paste(panels["P"], (700, 0))
    canvas.save(out)
    table.to_csv(out.with_suffix(".csv"), index=False)
    pd.DataFrame(fit_rows).to_csv(out.with_name(out.stem + "_fits.csv"), index=False)
    print(f"\nwrote {out}, {out.with_suffix('.csv').name}, {out.stem}_fits.csv")
    print(f"total {time.perf_counter() - start:.0f} s wall on {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
