"""Training and inference throughput of every backbone, beside references measured in the same run.

For each backbone × preset (``small`` and ``default``) on planted Criteo-like data (39
fields, ~1.0M ids, batch 4096) it measures:

* **train e2e**   rows/s of one epoch of ``ttsctr.training.train`` (shuffle, gather, forward,
  group loss, backward, fused Adam; validation excluded), fp32;
* **ceiling**     the same model's forward + loss + backward + optimizer step on one batch
  already resident, repeated — the compute ceiling; ``e2e/ceil`` should be >= 0.9;
* **bf16**        ``train`` with ``precision="bf16"`` (autocast around forward) and its ratio to fp32;
* **infer**       rows/s of ``predict_logits`` (eval batch 16384), fp32 and bf16;
* **library**     deepctr-torch on the equal architecture where it has one (fnn ≈ DeepFM
  without FM, deepfm, dcn, dcnv2 = DCN-M, ipnn = PNN), fed by its own loader and training
  loop (``fit``, stock Adam) and ``predict``; parameter counts of both are printed.

    .venv/bin/python benchmarks/train_throughput.py --threads 2 --models fnn,deepfm,dcnv2
    .venv/bin/python benchmarks/train_throughput.py --quick          # smoke run, small sizes

The machine is shared: numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ttsctr.features import FeatureSpec  # noqa: E402
from ttsctr.models import available_models  # noqa: E402
from ttsctr.training import (  # noqa: E402
    MemberSpec,
    TrainConfig,
    _make_optimizer,
    build_group,
    group_loss,
    predict_logits,
    train,
)

# 13 bucketised numeric fields + 26 categorical fields with cardinalities of the order of
# Criteo's after rare-id filtering (~1.0M ids in total).
CRITEO_LIKE_VOCAB = (
    [48, 98, 76, 42, 160, 110, 70, 52, 95, 10, 36, 40, 64]
    + [1_460, 560, 172_000, 91_000, 300, 22, 12_500, 630, 4, 41_000, 5_600, 160_000, 3_200,
       28, 11_000, 141_000, 11, 4_700, 2_000, 5, 158_000, 18, 16, 52_000, 82, 37_000]
)  # fmt: skip
BATCH = 4096


def planted_criteo_like(rows: int, seed: int = 0) -> tuple[FeatureSpec, np.ndarray, np.ndarray]:
    """Power-law ids per field, labels from a planted first-order + FM-style logit (~25% positives)."""
    rng = np.random.default_rng(seed)
    names = tuple(f"I{i}" for i in range(1, 14)) + tuple(f"C{i}" for i in range(1, 27))
    spec = FeatureSpec(names, tuple(CRITEO_LIKE_VOCAB))
    offsets = np.asarray(spec.offsets, dtype=np.int64)
    local = np.empty((rows, spec.num_fields), dtype=np.int64)
    for j, v in enumerate(spec.vocab_sizes):
        local[:, j] = np.minimum((v * rng.random(rows) ** 3).astype(np.int64), v - 1)  # popular ids first
    x = (local + offsets).astype(np.int32)
    w = rng.normal(0, 0.15, spec.num_features).astype(np.float32)
    v = rng.normal(0, 0.12, (spec.num_features, 4)).astype(np.float32)
    e = v[x]
    s = e.sum(axis=1)
    logit = -1.4 + w[x].sum(axis=1) + 0.5 * ((s * s).sum(axis=1) - (e * e).sum(axis=(1, 2)))
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return spec, x, y


def _cpu_busy(seconds: float) -> float | None:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat), or None where unavailable."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            v = [int(t) for t in fh.readline().split()[1:8]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t1, i1 = sample()
        time.sleep(seconds)
        t2, i2 = sample()
    except OSError:
        return None
    return 1.0 - (i2 - i1) / max(1, t2 - t1)


def wait_for_quiet(max_seconds: float, threshold: float = 0.15) -> str:
    """Wait (up to ``max_seconds``) until other processes leave the CPUs idle for 3 s."""
    if max_seconds <= 0:
        return "not waited"
    deadline = time.monotonic() + max_seconds
    busy = None
    while time.monotonic() < deadline:
        busy = _cpu_busy(3.0)
        if busy is None:
            return "unknown"
        if busy < threshold:
            return f"quiet ({busy:.0%} busy)"
    return f"NOT quiet ({busy:.0%} busy after {max_seconds:.0f}s)"


def ceiling_rows_per_s(
    spec: FeatureSpec, member: MemberSpec, x: np.ndarray, y: np.ndarray, steps: int, repeats: int, bf16: bool = False
) -> float:
    """Forward + loss + backward + optimizer step on one resident batch, repeated.

    Best of ``repeats`` timed chunks of ``steps`` steps (after two warm-up steps): on a
    shared machine the best chunk is the least disturbed one.
    """
    group = build_group(spec, [member])
    opt = _make_optimizer(group, TrainConfig())
    xb = torch.from_numpy(np.ascontiguousarray(x[:BATCH]))
    yb = torch.from_numpy(np.ascontiguousarray(y[:BATCH]))
    group.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = group(xb)
        loss = group_loss(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    for _ in range(2):
        step()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, steps * xb.shape[0] / (time.perf_counter() - t0))
    return best


def e2e_rows_per_s(spec, member, train_xy, valid_xy, precision: str, epochs: int) -> tuple[float, float]:
    """Training rows/s of train() (validation excluded) and inference rows/s of predict_logits.

    Training: the best epoch of ``epochs``, skipping the first when there are several (it also
    pays one-off costs: Adam state allocation, first-touch page faults). Inference: best of 3.
    """
    group = build_group(spec, [member])
    cfg = TrainConfig(batch_size=BATCH, max_epochs=epochs, patience=epochs, progress=False, precision=precision)
    result = train(group, train_xy, valid_xy, cfg)
    rates = [h["rows_per_s"] for h in result.history]
    train_rps = max(rates[1:] if len(rates) > 1 else rates)
    n_inf = min(len(train_xy[1]), 100_000)
    xi = train_xy[0][:n_inf]
    predict_logits(group, xi[:16384], precision=precision)  # warm-up
    infer = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        predict_logits(group, xi, batch_size=16384, precision=precision)
        infer = max(infer, n_inf / (time.perf_counter() - t0))
    return train_rps, infer


# --------------------------------------------------------------------------- deepctr-torch


def import_deepctr() -> Any:
    """deepctr_torch, without the version check it starts on import (a PyPI request in a thread)."""
    with mock.patch("requests.get", side_effect=OSError("offline benchmark")):
        before = set(threading.enumerate())
        with contextlib.redirect_stdout(io.StringIO()):
            import deepctr_torch  # noqa: F401
            from deepctr_torch import models

            for t in set(threading.enumerate()) - before:
                t.join(timeout=5)
    return models


def deepctr_model(models: Any, backbone: str, preset_cfg: Any, spec: FeatureSpec) -> tuple[Any, str] | None:
    if backbone not in ("fnn", "deepfm", "dcn", "dcnv2", "ipnn"):
        return None  # no equal architecture in deepctr-torch (finalmlp, wukong, rankmixer)
    from deepctr_torch.inputs import SparseFeat

    cols = [SparseFeat(n, vocabulary_size=v, embedding_dim=preset_cfg.embedding_dim) for n, v in zip(spec.field_names, spec.vocab_sizes)]
    hidden = tuple(preset_cfg.hidden_units)
    common = dict(dnn_hidden_units=hidden, l2_reg_embedding=0.0, l2_reg_dnn=0.0, init_std=1e-4, seed=0, device="cpu")
    if backbone == "fnn":
        return models.DeepFM(cols, cols, use_fm=False, l2_reg_linear=0.0, **common), "DeepFM(use_fm=False): FNN + first-order term"
    if backbone == "deepfm":
        return models.DeepFM(cols, cols, use_fm=True, l2_reg_linear=0.0, **common), "DeepFM"
    if backbone in ("dcn", "dcnv2"):
        kind = "vector" if backbone == "dcn" else "matrix"
        m = models.DCN(cols, cols, cross_num=preset_cfg.cross_layers, cross_parameterization=kind, l2_reg_linear=0.0, l2_reg_cross=0.0, **common)
        return m, f"DCN(cross_parameterization='{kind}') + first-order term"
    if backbone == "ipnn":
        return models.PNN(cols, use_inner=True, use_outter=False, **common), "PNN(use_inner=True)"
    return None


def deepctr_rows_per_s(model: Any, spec: FeatureSpec, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    local = x.astype(np.int64) - np.asarray(spec.offsets)
    feed = {n: local[:, j] for j, n in enumerate(spec.field_names)}
    model.compile("adam", "binary_crossentropy", metrics=[])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train_rps = 0.0
        for _ in range(2):  # best of two epochs, as for ours (the first pays one-off costs)
            t0 = time.perf_counter()
            model.fit(feed, y, batch_size=BATCH, epochs=1, verbose=0)
            train_rps = max(train_rps, len(y) / (time.perf_counter() - t0))
        n_inf = min(len(y), 100_000)
        inf = {k: v[:n_inf] for k, v in feed.items()}
        infer_rps = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            model.predict(inf, batch_size=16384)
            infer_rps = max(infer_rps, n_inf / (time.perf_counter() - t0))
    return train_rps, infer_rps


# --------------------------------------------------------------------------- main


def fmt(v: Any, spec: str = ",.0f") -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="all", help="comma-separated backbones (default: all registered)")
    ap.add_argument("--presets", default="small,default")
    ap.add_argument("--rows", type=int, default=100_000, help="training rows per measured epoch")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run (rows 3×batch, few ceiling steps)")
    ap.add_argument("--epochs", type=int, default=3, help="train() epochs per measurement; the best after the first is reported")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="SECONDS",
        help="before each model, wait up to SECONDS for the CPUs to be idle (shared machines)",
    )
    ap.add_argument("--no-library", action="store_true", help="skip deepctr-torch")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = 3 * BATCH if args.quick else args.rows
    steps, repeats = (3, 1) if args.quick else (8, 3)
    epochs = 1 if args.quick else max(1, args.epochs)
    names = available_models() if args.models == "all" else [m.strip().lower() for m in args.models.split(",") if m.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]

    spec, x, y = planted_criteo_like(rows + 8192, seed=0)
    train_xy, valid_xy = (x[:rows], y[:rows]), (x[rows:], y[rows:])
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}; "
        f"{rows:,} training rows (e2e: best epoch after the first of {epochs}; ceiling: best of {repeats}×{steps} steps), {spec.num_fields} fields, {spec.num_features:,} ids, batch {BATCH}, "
        f"positives {y.mean():.1%}",
        flush=True,
    )

    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.2f} before the run: other processes share the CPUs, numbers will be noisy", flush=True)

    lib_models, lib_note = None, ""
    if not args.no_library:
        try:
            lib_models = import_deepctr()
            import deepctr_torch

            lib_note = f"deepctr-torch {deepctr_torch.__version__}"
        except ImportError:
            lib_note = (
                "deepctr-torch is not installed: `pip install deepctr-torch==0.3.0` (needs only torch>=2.4, tqdm, "
                "scikit-learn; pulls no other torch). fuxictr 2.3.10 also resolves with torch==2.13.0 but brings "
                "ray[data], polars and h5py, so it is not used here."
            )
    print(f"library reference: {lib_note or 'skipped (--no-library)'}", flush=True)

    from ttsctr.models import model_config

    results = []
    for name in names:
        for preset in presets:
            member = MemberSpec(name, 0, preset)
            t_start = time.perf_counter()
            probe = build_group(spec, [member])
            params = sum(p.numel() for p in probe.parameters())
            del probe
            row: dict[str, Any] = {"model": name, "preset": preset, "params": params}
            row["cpu"] = wait_for_quiet(args.wait_quiet)
            # Ceiling measured before and after the end-to-end run, best kept: a burst of
            # load from another process then cannot make the ratio look better than it is.
            ceil_a = ceiling_rows_per_s(spec, member, x, y, steps, repeats)
            row["e2e"], row["infer"] = e2e_rows_per_s(spec, member, train_xy, valid_xy, "fp32", epochs)
            row["ceiling"] = max(ceil_a, ceiling_rows_per_s(spec, member, x, y, steps, repeats))
            row["e2e_over_ceiling"] = row["e2e"] / row["ceiling"]
            if not args.no_bf16:
                ceil_a = ceiling_rows_per_s(spec, member, x, y, steps, repeats, bf16=True)
                row["bf16_e2e"], row["bf16_infer"] = e2e_rows_per_s(spec, member, train_xy, valid_xy, "bf16", epochs)
                row["bf16_ceiling"] = max(ceil_a, ceiling_rows_per_s(spec, member, x, y, steps, repeats, bf16=True))
                row["bf16_over_fp32"] = row["bf16_e2e"] / row["e2e"]
                row["bf16_e2e_over_ceiling"] = row["bf16_e2e"] / row["bf16_ceiling"]
            if lib_models is not None:
                built = deepctr_model(lib_models, name, model_config(name, preset), spec)
                if built is not None:
                    lib, desc = built
                    row["lib_arch"] = desc
                    row["lib_params"] = sum(p.numel() for p in lib.parameters())
                    row["lib_train"], row["lib_infer"] = deepctr_rows_per_s(lib, spec, train_xy[0], train_xy[1])
                    del lib
            row["bench_seconds"] = time.perf_counter() - t_start
            row["cpu_after"] = f"{_cpu_busy(1.0) or 0:.0%} busy"
            results.append(row)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)

    header = (
        "| model | preset | params | train e2e rows/s | ceiling rows/s | e2e/ceil | bf16 train rows/s | bf16/fp32 "
        "| infer fp32 rows/s | infer bf16 rows/s | deepctr params | deepctr train rows/s | deepctr infer rows/s | other load before / after |"
    )
    print()
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for r in results:
        print(
            f"| {r['model']} | {r['preset']} | {r['params']:,} | {fmt(r['e2e'])} | {fmt(r['ceiling'])} | {r['e2e_over_ceiling']:.2f} "
            f"| {fmt(r.get('bf16_e2e'))} | {fmt(r.get('bf16_over_fp32'), '.2f')} | {fmt(r['infer'])} | {fmt(r.get('bf16_infer'))} "
            f"| {fmt(r.get('lib_params'), ',')} | {fmt(r.get('lib_train'))} | {fmt(r.get('lib_infer'))} "
            f"| {r['cpu']} / {r['cpu_after']} |"
        )
    if lib_models is None and not args.no_library:
        print(f"\n{lib_note}")
    print(f"\nload average (1 min): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (this run adds about its thread count)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "threads": torch.get_num_threads(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
