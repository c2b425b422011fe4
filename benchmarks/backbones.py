"""Every backbone through the one trainer on encoded datasets: test AUC/logloss, size and FLOPs.

Each dataset must have been encoded by the data_processing pipeline first, e.g.

    kedro run --pipelines data_processing                                  # synthetic default
    kedro run --pipelines data_processing --params "dataset=criteo,raw_path=../shared/data/criteo/wide-resdnn_train.txt.gz,datasets.criteo.preprocessing.min_count=2"
    kedro run --pipelines data_processing --params "dataset=movielens,raw_path=../shared/data/movielens-100k/u.data.gz"

then ``python benchmarks/backbones.py --model-input data/05_model_input --datasets synthetic criteo movielens``.
Every backbone is trained with the project's training recipe (``TrainConfig`` of ``--protocol``,
``reference`` by default; ``--set key=value`` overrides one setting) at ``--preset`` (``default``,
the paper's reference sizes). A logistic regression on the same one-hot ids
(:mod:`ttsctr.baselines.logistic`, C chosen on validation) is printed first as the floor every
backbone should clear; ``vs_lr`` is each backbone's test AUC minus it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ttsctr.data.io import load_split
from ttsctr.features import FeatureSpec
from ttsctr.flops import model_cost
from ttsctr.baselines import fit_logistic_regression
from ttsctr.models import available_models
from ttsctr.training import MemberSpec, TrainConfig, build_group, evaluate, train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-input", default="data/05_model_input")
    ap.add_argument("--datasets", nargs="+", default=["synthetic"])
    ap.add_argument("--models", nargs="+", default=[m for m in available_models() if m != "lr"])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--protocol", default="reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a TrainConfig field")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = TrainConfig.from_dict({"protocol": args.protocol, "num_threads": args.threads, "progress": False, **overrides})
    rows = []
    print("dataset    model      test_auc  vs_lr    test_logloss  best_epoch  batch  dense_params  MFLOPs/row  train_s",
          flush=True)
    for dataset in args.datasets:
        folder = Path(args.model_input) / dataset
        spec = FeatureSpec.load(folder / "feature_map.json")
        tr, va, te = (load_split(folder, s) for s in ("train", "validation", "test"))
        lr = fit_logistic_regression((tr.x, tr.y), (va.x, va.y), (te.x, te.y), spec.num_features)
        print(f"{dataset:<10} {'lr':<10} {lr.test_auc:.4f}    {0.0:+.4f}  {lr.test_logloss:.4f}        (C={lr.C:g})",
              flush=True)
        rows.append({"dataset": dataset, "model": "lr", "test_auc": lr.test_auc, "test_logloss": lr.test_logloss, "C": lr.C})
        for name in args.models:
            group = build_group(spec, [MemberSpec(name, args.seed, args.preset)], weight_init=config.weight_init)
            started = time.perf_counter()
            fit = train(group, (tr.x, tr.y), (va.x, va.y), config)
            seconds = time.perf_counter() - started
            metrics = evaluate(group, te.x, te.y)
            cost = model_cost(group.members[0])
            row = {"dataset": dataset, "model": name, "preset": args.preset, "protocol": args.protocol,
                   "test_auc": metrics["auc"], "vs_lr": metrics["auc"] - lr.test_auc, "test_logloss": metrics["logloss"],
                   "best_epoch": fit.best_epoch, "batch_size": fit.batch_size, "dense_params": cost.dense_params,
                   "embedding_params": cost.embedding_params, "flops_per_row": cost.flops_per_row, "train_seconds": seconds}
            rows.append(row)
            print(f"{dataset:<10} {name:<10} {row['test_auc']:.4f}    {row['vs_lr']:+.4f}  {row['test_logloss']:.4f}        "
                  f"{fit.best_epoch:>3}/{fit.epochs_completed:<3}    {fit.batch_size:>5}  {cost.dense_params:>12,}  "
                  f"{cost.flops_per_row / 1e6:>9.3f}  {seconds:>7.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
