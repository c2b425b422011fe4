"""EST on MovieLens-100K behaviour sequences beside its ablations, baselines and its own test-time scaling.

    python benchmarks/est_movielens.py [--epochs 30] [--preset small] [--seeds 4] [--threads 1]

Builds the sequences from ``../shared/data/movielens-100k`` (``ttsctr.data.sequences``: label
rating ≥ 4, user history B_u = the last L = 50 items strictly before the event, candidate
history B_c = the 10 earlier items closest in content to the candidate, chronological 8:1:1
split) and trains, through the project's trainer (``reference`` protocol, early stopping on
validation AUC), on the same split:

* ``est`` (LCA + CSA), ``est`` with ``attention=lca_only`` and ``attention=full``
  (Full-Attention), ``seq_mean_pool`` (mean-pooled behaviours + N into an MLP);
* ``est`` with a SimTier token (``simtier=True``); the hierarchical baselines ``din_dcnv2`` and
  ``din_rankmixer`` (DIN target attention compresses each sequence, then DCNv2 / RankMixer);
* the tabular backbones of ``--tabular`` (DCNv2, RankMixer, DeepFM, Wukong) on the
  non-behavioural fields N only, and a logistic regression on N (the floor);
* ``--seeds`` EST members merged (Eq. 10) at 1, 2, 4, ... members with DeLong's test against
  the single members (``ttsctr.merging.scaling_table``).

It prints test AUC, GAUC (per-user, impression-weighted), logloss, FLOPs per row (measured) and
each model's AUC and FLOPs as ratios to ``seq_mean_pool`` trained in the same run. Not run by the
tests (minutes on 2 cores); its numbers are in the README.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", default=str(ROOT.parent / "shared" / "data" / "movielens-100k"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tabular", default="dcnv2,rankmixer,deepfm,wukong",
                    help="tabular backbones trained on the non-behavioural fields N (comma-separated)")
    args = ap.parse_args()
    raw = Path(args.raw)
    if not (raw / "u.data.gz").exists() and not (raw / "u.data").exists():
        print(f"MovieLens-100K not found in {raw} (expected u.data, u.item, u.user there); nothing to do")
        return 0
    torch.set_num_threads(args.threads)

    from ttsctr.baselines import fit_logistic_regression
    from ttsctr.data.sequences import SequenceConfig, build_movielens_sequences, read_movielens, sequence_inputs
    from ttsctr.flops import model_cost
    from ttsctr.merging import MemberPool, scaling_table, sigmoid
    from ttsctr.metrics import group_auc, log_loss, roc_auc
    from ttsctr.training import MemberSpec, TrainConfig, build_group, predict_logits, train

    start = time.perf_counter()
    data = build_movielens_sequences(*read_movielens(raw), SequenceConfig())
    spec, splits = sequence_inputs(data)
    users = data.user[data.split == 2]
    y = splits["test"][1]
    f = spec.num_context_fields
    print(f"MovieLens-100K sequences: {len(data.label)} events, {data.n_items} items, "
          f"{data.truncated} histories truncated at L = {spec.user_len}; rows train/valid/test "
          f"{', '.join(str(v[0].shape[0]) for v in splits.values())}; built in {time.perf_counter() - start:.1f} s")
    config = TrainConfig.from_protocol("reference", max_epochs=args.epochs, num_threads=args.threads, progress=False)

    context = spec.context_spec()
    lr = fit_logistic_regression(*((x[:, :f], t) for x, t in splits.values()), context.num_features)
    rows = [("logistic regression (N)", lr.test_auc, float("nan"), lr.test_logloss, float("nan"), 0.0)]
    logits = {}

    def fit(label: str, name: str, seed: int = 0, overrides: dict | None = None, context_only: bool = False) -> None:
        t = time.perf_counter()
        use = context if context_only else spec
        cut = (lambda x: x[:, :f]) if context_only else (lambda x: x)
        group = build_group(use, [MemberSpec(name, seed, args.preset, overrides or {})], weight_init=config.weight_init)
        train(group, (cut(splits["train"][0]), splits["train"][1]), (cut(splits["validation"][0]), splits["validation"][1]),
              config)
        p = predict_logits(group, cut(splits["test"][0]))[:, 0]
        logits[label] = p
        flops = model_cost(group.members[0]).flops_per_row
        rows.append((label, roc_auc(y, p), group_auc(y, p, users), log_loss(y, sigmoid(p)), flops,
                     time.perf_counter() - t))
        print(f"  {label}: AUC {rows[-1][1]:.4f}, {rows[-1][5]:.0f} s", flush=True)

    fit("seq_mean_pool", "seq_mean_pool")
    fit("est (LCA + CSA)", "est")
    fit("est lca_only", "est", overrides={"attention": "lca_only"})
    fit("est full attention", "est", overrides={"attention": "full"})
    fit("est + simtier", "est", overrides={"simtier": True})
    fit("din + dcnv2", "din_dcnv2")
    fit("din + rankmixer", "din_rankmixer")
    for backbone in args.tabular.split(","):
        fit(f"{backbone} (N)", backbone, context_only=True)
    for seed in range(1, args.seeds):
        fit(f"est seed {seed}", "est", seed)

    ref = next(r for r in rows if r[0] == "seq_mean_pool")
    print(f"\n{'model':26s} {'AUC':>7s} {'GAUC':>7s} {'logloss':>8s} {'FLOPs/row':>11s} {'AUC/ref':>8s} {'FLOPs/ref':>9s} {'s':>5s}")
    for name, auc, gauc, ll, flops, sec in rows:
        print(f"{name:26s} {auc:7.4f} {gauc:7.4f} {ll:8.4f} {flops:11.0f} {auc / ref[1]:8.4f} "
              f"{flops / ref[4]:9.2f} {sec:5.0f}")

    members = ["est (LCA + CSA)"] + [f"est seed {s}" for s in range(1, args.seeds)]
    pool = MemberPool(np.stack([logits[m] for m in members], axis=1), y.astype(np.int64), member_names=tuple(members))
    scales = [s for s in (1, 2, 4, 8, 16) if s <= len(members)]
    table = scaling_table(pool, scales=scales, draws=8, seed=0, groups=users, name="est")
    print(f"\nEST test-time scaling ({len(members)} seeds; DeLong vs the mean single member; distinct draws):")
    print(table[["scale", "n_members", "n_draws", "auc_mean", "gauc_mean", "logloss_mean", "delong_auc_diff",
                 "p_delong", "significant", "pairwise_r"]].to_string(index=False))
    print(f"\ntotal {time.perf_counter() - start:.0f} s on {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
