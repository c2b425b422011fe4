"""Every backbone through the one trainer on encoded datasets: test AUC/logloss, size and FLOPs.

Each dataset must have been encoded by the data_processing pipeline first, e.g.

    kedro run --pipelines data_processing                                  # synthetic default
    kedro run --pipelines data_processing --params "dataset=criteo,raw_path=../shared/data/criteo/wide-resdnn_train.txt.gz,datasets.criteo.preprocessing.min_count=2"
    kedro run --pipelines data_processing --params "dataset=movielens,raw_path=../shared/data/movielens-100k/u.data.gz"

then ``python benchmarks/backbones.py --model-input data/05_model_input --datasets synthetic criteo movielens``.
A logistic regression on the same one-hot ids (scikit-learn, L2 with C=0.05, when installed) is
printed first as the reference every backbone should beat.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ttsctr.data.io import load_split
from ttsctr.features import FeatureSpec
from ttsctr.flops import model_cost
from ttsctr.metrics import log_loss, roc_auc
from ttsctr.models import available_models
from ttsctr.training import MemberSpec, TrainConfig, build_group, evaluate, train


def logistic_regression(tr, te) -> tuple[float, float] | None:
    try:
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    n = int(max(tr.x.max(), te.x.max())) + 1

    def one_hot(x: np.ndarray) -> "sp.csr_matrix":
        rows = np.repeat(np.arange(len(x)), x.shape[1])
        return sp.csr_matrix((np.ones(rows.size), (rows, x.ravel())), shape=(len(x), n))

    model = LogisticRegression(C=0.05, max_iter=300).fit(one_hot(tr.x), tr.y)
    p = model.predict_proba(one_hot(te.x))[:, 1]
    return roc_auc(te.y, p), log_loss(te.y, p)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-input", default="data/05_model_input")
    ap.add_argument("--datasets", nargs="+", default=["synthetic"])
    ap.add_argument("--models", nargs="+", default=available_models())
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    rows = []
    print("dataset    model      test_auc  test_logloss  dense_params  emb_params  MFLOPs/row  train_s", flush=True)
    for dataset in args.datasets:
        folder = Path(args.model_input) / dataset
        spec = FeatureSpec.load(folder / "feature_map.json")
        tr, va, te = (load_split(folder, s) for s in ("train", "validation", "test"))
        lr = logistic_regression(tr, te)
        if lr is not None:
            print(f"{dataset:<10} {'lr':<10} {lr[0]:.4f}    {lr[1]:.4f}", flush=True)
            rows.append({"dataset": dataset, "model": "lr", "test_auc": lr[0], "test_logloss": lr[1]})
        for name in args.models:
            group = build_group(spec, [MemberSpec(name, 0, args.preset)])
            config = TrainConfig(batch_size=args.batch_size, max_epochs=args.epochs, patience=1,
                                 num_threads=args.threads, progress=False)
            started = time.perf_counter()
            train(group, (tr.x, tr.y), (va.x, va.y), config)
            seconds = time.perf_counter() - started
            metrics = evaluate(group, te.x, te.y)
            cost = model_cost(group.members[0])
            row = {"dataset": dataset, "model": name, "preset": args.preset, "test_auc": metrics["auc"],
                   "test_logloss": metrics["logloss"], "dense_params": cost.dense_params,
                   "embedding_params": cost.embedding_params, "flops_per_row": cost.flops_per_row, "train_seconds": seconds}
            rows.append(row)
            print(f"{dataset:<10} {name:<10} {row['test_auc']:.4f}    {row['test_logloss']:.4f}        "
                  f"{cost.dense_params:>10,}  {cost.embedding_params:>10,}  {cost.flops_per_row / 1e6:>9.3f}  {seconds:>7.1f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
