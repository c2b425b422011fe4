"""Efficiency of parameter scaling against test-time scaling (paper §3.3.2, Fig. 4b-c).

Two measurements, each for "one big model" (parameter scaling k×) and "k base members whose
predictions are averaged" (test-time scaling k×), the members run one after another in this
process or side by side in worker processes:

* **training time per epoch** — :func:`training_seconds_per_epoch` (members trained one after
  another, here) and :func:`parallel_training_seconds_per_epoch` (members spread over worker
  processes that train at the same time). Every member is trained as an independent group of
  one with :func:`ttsctr.training.train`, so an "epoch" is exactly what ``train`` does per
  epoch: the optimiser steps over the training rows *and* the scoring of the validation rows
  used for early stopping. Parameter scaling is the same call with one (big) member.
* **inference latency per batch** — :func:`inference_latency`: the wall time from a numpy batch
  of feature ids to the numpy vector of merged probabilities (the mean of every member's
  sigmoid, Eq. 10). ``mode="sequential"`` runs the models one after another in this process;
  ``mode="parallel"`` keeps one persistent worker process per model (or per chunk of models
  when ``processes < len(models)``) and measures the full round trip: pickling the batch to
  every worker through a pipe, the workers' forward passes, pickling their logits back, and
  the averaging in the parent. :func:`merged_prediction` returns the merged probabilities of
  either mode (they agree up to float rounding), :class:`SequentialPredictor` /
  :class:`ParallelPredictor` are the predictors both use.

Thread counts decide CPU timings, so they are explicit. Sequential runs use the caller's torch
setting (``torch.get_num_threads()``) unless ``threads_per_process`` / ``TrainConfig.num_threads``
say otherwise. Worker processes each call ``torch.set_num_threads(threads_per_process)``, by
default ``max(1, cores // processes)`` where ``cores`` is the number of CPUs this process may
run on (``os.sched_getaffinity``): the workers share the machine instead of oversubscribing it.
Every result reports the thread count it ran with.

Workers are started with the ``spawn`` start method (``forkserver`` on request; ``fork`` is
refused: a forked child inherits torch's OpenMP thread pool in an undefined state and can
deadlock). A spawned worker imports torch and ttsctr afresh, which takes seconds; that start-up
and the transfer of the inputs are *not* part of the measured times (workers report ready, then
the clock starts), and are reported separately where it matters (``setup_seconds``). Workers
are stopped and joined on every exit path, errors and ``KeyboardInterrupt`` included; a worker
that fails or dies raises :class:`EfficiencyWorkerError` with its traceback or exit code.

Everything runs on CPU (the trainer's device); the paper's Fig. 4 was measured on an 8-core CPU
with one GPU, so absolute numbers are not comparable, the ratios are what is measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
import traceback
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ttsctr.errors import ConfigError, DataFormatError, TTSCTRError
from ttsctr.features import FeatureSpec
from ttsctr.models.base import CTRModel
from ttsctr.training.checkpoint import spec_dict, spec_from_dict
from ttsctr.training.config import TrainConfig
from ttsctr.training.group import GroupModel, MemberSpec, build_group, merged_probability
from ttsctr.training.inputs import check_x, check_y
from ttsctr.training.trainer import _autocast
from ttsctr.training.trainer import train as train_group

__all__ = [
    "INFERENCE_MODES",
    "START_METHODS",
    "LATENCY_KEYS",
    "EfficiencyWorkerError",
    "available_cores",
    "default_threads_per_process",
    "training_seconds_per_epoch",
    "parallel_training_seconds_per_epoch",
    "SequentialPredictor",
    "ParallelPredictor",
    "open_predictor",
    "merged_prediction",
    "inference_latency",
]

INFERENCE_MODES = ("sequential", "parallel")
START_METHODS = ("spawn", "forkserver")
#: Keys of the dict :func:`inference_latency` returns.
LATENCY_KEYS = (
    "mode",
    "num_models",
    "num_members",
    "processes",
    "threads_per_process",
    "batch_size",
    "repeats",
    "warmup",
    "p50_ms",
    "p90_ms",
    "mean_ms",
    "min_ms",
    "max_ms",
    "setup_seconds",
)

ArrayPair = tuple[np.ndarray, np.ndarray]
# Seconds a worker gets to exit after being asked to stop, before it is terminated, then killed;
# shorter when closing because of an error (a busy worker reads "stop" only when its task ends).
_STOP_GRACE_SECONDS = 10.0
_ERROR_GRACE_SECONDS = 1.0


class EfficiencyWorkerError(TTSCTRError, RuntimeError):
    """A worker process of a parallel measurement failed (its traceback is in the message) or died."""


# --------------------------------------------------------------------------- argument checks


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads_per_process(processes: int) -> int:
    """``max(1, available_cores() // processes)``: torch threads of each of ``processes`` workers."""
    return max(1, available_cores() // max(1, int(processes)))


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _optional_threads(value: Any, name: str = "threads_per_process") -> int | None:
    return None if value is None else _positive_int(value, name)


def _check_start_method(start_method: Any) -> str:
    if start_method not in START_METHODS:
        raise ConfigError(
            f"start_method must be one of {list(START_METHODS)}, got {start_method!r} "
            "('fork' is not offered: a forked child inherits torch's thread pool and can deadlock)"
        )
    return start_method


def _split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``parts`` contiguous chunks whose sizes differ by at most one (order kept)."""
    base, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        chunks.append(list(items[start : start + size]))
        start += size
    return chunks


# --------------------------------------------------------------------------- worker pool


def _worker_reply(conn: Any, fn: Callable[[], Any]) -> bool:
    """Send ``("ok", fn())`` or ``("error", traceback)``; True when it succeeded."""
    try:
        result = fn()
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("error", traceback.format_exc()))
        return False
    conn.send(("ok", result))
    return True


class _Worker:
    """Parent-side handle of one worker process: its process and its end of the pipe."""

    def __init__(self, index: int, process: Any, conn: Any) -> None:
        self.index, self.process, self.conn = index, process, conn

    def describe(self) -> str:
        return f"worker {self.index} (pid {self.process.pid})"

    def send(self, message: Any, doing: str) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionError, EOFError) as exc:
            code = self.process.exitcode
            raise EfficiencyWorkerError(f"{self.describe()} is gone (exit code {code}) while {doing}") from exc

    def receive(self, doing: str) -> Any:
        """The worker's next ``("ok", value)`` value; its error or death raises."""
        if not self.conn.poll():
            multiprocessing.connection.wait([self.conn, self.process.sentinel])
        if self.conn.poll():
            try:
                status, value = self.conn.recv()
            except (EOFError, ConnectionError):
                status, value = None, None
            if status == "ok":
                return value
            if status == "error":
                raise EfficiencyWorkerError(f"{doing} failed in {self.describe()}:\n{value}")
        self.process.join(1.0)
        raise EfficiencyWorkerError(
            f"{self.describe()} exited with code {self.process.exitcode} while {doing} "
            "(killed, out of memory, or crashed before it could report)"
        )


class _WorkerPool:
    """Start ``len(args_per_worker)`` processes running ``target(conn, *args)``; stop them on close.

    A worker first answers once (its set-up), then serves requests until it receives ``("stop",)``
    or its pipe closes. :meth:`close` asks every worker to stop, waits, then terminates and
    finally kills the ones still alive, and joins them all; it is safe to call twice.
    """

    def __init__(self, target: Callable[..., None], args_per_worker: Sequence[tuple], start_method: str) -> None:
        self.workers: list[_Worker] = []
        context = multiprocessing.get_context(_check_start_method(start_method))
        try:
            for index, args in enumerate(args_per_worker):
                parent_conn, child_conn = context.Pipe(duplex=True)
                process = context.Process(
                    target=target, args=(child_conn, *args), name=f"ttsctr-efficiency-{index}", daemon=True
                )
                process.start()
                child_conn.close()  # the child holds its own copy; ours would hide the child's death
                self.workers.append(_Worker(index, process, parent_conn))
            for worker in self.workers:
                worker.receive("starting up")
        except BaseException:
            self.close(_ERROR_GRACE_SECONDS)
            raise

    def close(self, grace_seconds: float = _STOP_GRACE_SECONDS) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(("stop",))
        deadline = time.monotonic() + grace_seconds
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            for stop in (worker.process.terminate, worker.process.kill):
                if worker.process.is_alive():
                    stop()
                    worker.process.join(2.0)
            with contextlib.suppress(OSError, ValueError):
                worker.conn.close()
            if not worker.process.is_alive():
                with contextlib.suppress(ValueError):
                    worker.process.close()
        self.workers = []

    def __enter__(self) -> "_WorkerPool":
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        self.close(_ERROR_GRACE_SECONDS if exc_type is not None else _STOP_GRACE_SECONDS)


def _serve(conn: Any, command: str, handle: Callable[[tuple], Any]) -> None:
    """A worker's loop: answer every ``command`` message with ``handle(message)`` until ``stop``
    or until the parent's end of the pipe closes."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        if message[0] == command:
            _worker_reply(conn, lambda: handle(message))


def _worker_preamble(threads: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- training


def _train_config_for(config: TrainConfig, epochs: int, num_threads: int | None) -> TrainConfig:
    """``config`` run for exactly ``epochs`` epochs: patience past the cap, no progress bar."""
    return dataclasses.replace(
        config, max_epochs=epochs, patience=epochs + 1, progress=False, num_threads=num_threads
    )


def _check_training_inputs(
    members: Sequence[MemberSpec | Mapping[str, Any]],
    spec: FeatureSpec,
    train_data: Any,
    valid_data: Any,
    config: Any,
    epochs: Any,
) -> tuple[list[MemberSpec], ArrayPair, ArrayPair, int]:
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(spec, FeatureSpec):
        raise ConfigError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
    members = [m if isinstance(m, MemberSpec) else MemberSpec.from_dict(m) for m in members]
    if not members:
        raise ConfigError("members: at least one member is required")
    epochs = _positive_int(epochs, "epochs")
    pairs = []
    for name, data in (("train", train_data), ("valid", valid_data)):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ConfigError(f"{name} must be an (x, y) pair of arrays, got a {type(data).__name__}")
        x = check_x(data[0], spec, name)
        pairs.append((x, check_y(data[1], x.shape[0], name)))
    positives, rows = int(pairs[1][1].sum()), pairs[1][1].shape[0]
    if positives in (0, rows):  # train() would refuse it too, but in a worker: say it here, first
        raise DataFormatError(
            "valid",
            found=f"only label {int(positives > 0)} in {rows} validation rows",
            expected="both classes (validation AUC is undefined otherwise)",
        )
    return members, pairs[0], pairs[1], epochs


def _time_train(group: GroupModel, train_data: ArrayPair, valid_data: ArrayPair, config: TrainConfig) -> float:
    """Wall seconds of one ``train`` call on an already built group."""
    start = time.perf_counter()
    result = train_group(group, train_data, valid_data, config)
    seconds = time.perf_counter() - start
    if result.epochs_completed != config.max_epochs:  # cannot happen with patience > max_epochs
        raise EfficiencyWorkerError(f"training ran {result.epochs_completed} epochs, not {config.max_epochs}")
    return seconds


def training_seconds_per_epoch(
    members: Sequence[MemberSpec | Mapping[str, Any]],
    spec: FeatureSpec,
    train: ArrayPair,
    valid: ArrayPair,
    config: TrainConfig,
    *,
    epochs: int = 1,
) -> float:
    """Seconds per epoch of training ``members`` one after another in this process.

    Each member is built (untimed) as an independent group of one and trained with
    :func:`ttsctr.training.train` for exactly ``epochs`` epochs (``max_epochs=epochs``, patience
    beyond it, no progress bar, no checkpoints); the timed span is the whole ``train`` call: input
    checks, the optimiser steps and the per-epoch validation scoring. Returns the sum over members
    divided by ``epochs``. Threads: ``config.num_threads``, or the caller's torch setting when None.
    One member (e.g. a parameter-scaled preset) gives the parameter-scaling time.
    """
    members, train_data, valid_data, epochs = _check_training_inputs(members, spec, train, valid, config, epochs)
    run_config = _train_config_for(config, epochs, config.num_threads)
    total = 0.0
    for member in members:
        group = build_group(spec, [member], run_config.weight_init)  # building is not timed
        total += _time_train(group, train_data, valid_data, run_config)
    return total / epochs


def _training_worker_main(
    conn: Any,
    member_dicts: list[dict[str, Any]],
    feature_spec: dict[str, Any],
    train_data: ArrayPair,
    valid_data: ArrayPair,
    config_dict: dict[str, Any],
    threads: int,
) -> None:
    """Worker: set threads, build its groups of one, report ready; on ``("go",)`` train them in turn."""
    try:
        _worker_preamble(threads)
        spec = spec_from_dict(feature_spec)
        members = [MemberSpec.from_dict(m) for m in member_dicts]
        config = TrainConfig.from_dict(config_dict)
        groups = [build_group(spec, [m], config.weight_init) for m in members]
    except BaseException:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    _serve(conn, "go", lambda _: [_time_train(g, train_data, valid_data, config) for g in groups])


def parallel_training_seconds_per_epoch(
    members: Sequence[MemberSpec | Mapping[str, Any]],
    spec: FeatureSpec,
    train: ArrayPair,
    valid: ArrayPair,
    config: TrainConfig,
    *,
    processes: int,
    epochs: int = 1,
    threads_per_process: int | None = None,
    start_method: Literal["spawn", "forkserver"] = "spawn",
) -> float:
    """Seconds per epoch of training ``members`` in ``processes`` worker processes at once.

    The members are split into ``min(processes, len(members))`` contiguous chunks; each worker
    receives its chunk as member dicts, the feature spec as a dict, its own pickled copy of the
    numpy train/valid arrays (memory: one copy per worker) and ``config.to_dict()``. A worker sets
    ``torch.set_num_threads(threads_per_process)`` (default ``max(1, cores // processes)``; it
    replaces ``config.num_threads``), builds its groups of one, and reports ready. Then the clock
    starts, every worker is told to go, and trains its members one after another exactly as
    :func:`training_seconds_per_epoch` does; the clock stops when the last worker reports. So the
    measured wall time includes the workers competing for cores and memory bandwidth but not
    process start-up (importing torch) or the transfer of the data. Returns wall time / ``epochs``.
    """
    members, train_data, valid_data, epochs = _check_training_inputs(members, spec, train, valid, config, epochs)
    processes = min(_positive_int(processes, "processes"), len(members))
    threads = _optional_threads(threads_per_process) or default_threads_per_process(processes)
    config_dict = _train_config_for(config, epochs, threads).to_dict()
    args = [
        ([m.to_dict() for m in chunk], spec_dict(spec), train_data, valid_data, config_dict, threads)
        for chunk in _split_evenly(members, processes)
    ]
    with _WorkerPool(_training_worker_main, args, start_method) as pool:
        start = time.perf_counter()
        for worker in pool.workers:
            worker.send(("go",), "training")
        for worker in pool.workers:
            worker.receive("training")
        wall = time.perf_counter() - start
    return wall / epochs


# --------------------------------------------------------------------------- inference


def _model_recipe(model: nn.Module) -> tuple:
    """How a worker rebuilds ``model`` before loading its state dict (picklable, no tensors).

    A CTR backbone is rebuilt from its class, feature spec and config, a :class:`GroupModel` from
    its members' recipes; any other module is sent whole (``torch.save`` bytes), so its class must
    be importable in a fresh process.
    """
    if isinstance(model, GroupModel):
        return ("group", [_model_recipe(m) for m in model.members], model.member_specs, model.spec, model.precision)
    if isinstance(model, CTRModel):
        return ("backbone", type(model), model.spec, model.config)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    return ("module", buffer.getvalue())


def _model_payload(model: nn.Module) -> dict[str, Any]:
    """Recipe plus weights as ``torch.save`` bytes (not torch's shared-memory pickling, which
    would move the caller's tensors into shared memory)."""
    recipe = _model_recipe(model)
    weights = None
    if recipe[0] != "module":
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        weights = buffer.getvalue()
    return {"recipe": recipe, "weights": weights}


def _rebuild(recipe: tuple) -> nn.Module:
    kind = recipe[0]
    if kind == "group":
        _, members, member_specs, spec, precision = recipe
        group = GroupModel([_rebuild(m) for m in members], member_specs, spec)
        group.precision = precision
        return group
    if kind == "backbone":
        _, model_class, spec, config = recipe
        return model_class(spec, config)
    return torch.load(io.BytesIO(recipe[1]), map_location="cpu", weights_only=False)  # our own bytes


def _model_from_payload(payload: Mapping[str, Any]) -> nn.Module:
    model = _rebuild(payload["recipe"])
    if payload["weights"] is not None:
        model.load_state_dict(torch.load(io.BytesIO(payload["weights"]), map_location="cpu", weights_only=True))
    return model.eval()


def _model_precision(model: nn.Module) -> str:
    precision = getattr(model, "precision", "fp32")
    return precision if precision in ("fp32", "bf16") else "fp32"


def _member_logits(models: Sequence[nn.Module], x: np.ndarray) -> np.ndarray:
    """(B, F) ids -> (B, total members) float32 logits: a model's (B,) output is one column,
    a group's (B, M) output M columns. Eval mode is the caller's job; no gradients here."""
    ids = torch.from_numpy(x)
    columns = []
    with torch.inference_mode():
        for model in models:
            with _autocast(_model_precision(model)):
                out = model(ids)
            out = out.float().reshape(ids.shape[0], -1)
            columns.append(out)
    return torch.cat(columns, dim=1).numpy()


def _inference_worker_main(conn: Any, payloads: list[dict[str, Any]], threads: int) -> None:
    """Worker: set threads, rebuild its models in eval mode, then answer every ``("logits", x)``."""
    models: list[nn.Module] = []

    def setup() -> int:
        _worker_preamble(threads)
        models.extend(_model_from_payload(p) for p in payloads)
        return torch.get_num_threads()

    if not _worker_reply(conn, setup):
        return
    _serve(conn, "logits", lambda message: _member_logits(models, message[1]))


def _models_list(models: Any) -> list[nn.Module]:
    if isinstance(models, nn.Module):
        models = [models]
    models = list(models)
    if not models:
        raise ConfigError("models: at least one model is required")
    for i, model in enumerate(models):
        if not isinstance(model, nn.Module):
            raise ConfigError(f"models[{i}] is a {type(model).__name__}, not a torch nn.Module")
    return models


def _feature_specs(models: Sequence[nn.Module]) -> list[FeatureSpec]:
    specs: list[FeatureSpec] = []
    for model in models:
        spec = getattr(model, "spec", None)
        if isinstance(spec, FeatureSpec) and spec not in specs:
            specs.append(spec)
    return specs


class _Predictor:
    """Common part: checks a batch against the models' feature specs, merges member logits."""

    mode: str = ""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.models = _models_list(models)
        self._specs = _feature_specs(self.models)
        self.processes = 0
        self.threads_per_process = 0
        self.num_members = 0
        self.setup_seconds = 0.0

    def check_batch(self, x: Any) -> np.ndarray:
        """``x`` as a contiguous int32/int64 (B, F) array valid for every model's feature spec."""
        x = np.asarray(x)
        for spec in self._specs:
            x = check_x(x, spec, "x_batch")
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ConfigError(
                f"x_batch must be a 2-D integer array of feature ids, got shape {x.shape} dtype {x.dtype}"
            )
        return np.ascontiguousarray(x)

    def member_logits(self, x: np.ndarray) -> np.ndarray:
        """(B, members) float32 logits of an already checked batch."""
        raise NotImplementedError

    def merge_checked(self, x: np.ndarray) -> np.ndarray:
        """Merged probability of an already checked batch (the span :func:`inference_latency` times)."""
        return merged_probability(self.member_logits(x))

    def __call__(self, x: Any) -> np.ndarray:
        """(B,) float64 mean of every member's probability (Eq. 10) for the (B, F) ids ``x``."""
        return self.merge_checked(self.check_batch(x))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class SequentialPredictor(_Predictor):
    """Runs the models one after another in this process (eval mode, ``torch.inference_mode``).

    Models are switched to eval mode while the predictor is open and get their train/eval flags
    back on :meth:`close`. Torch uses ``threads_per_process`` threads while open (default: the
    caller's current setting), restored on close.
    """

    mode = "sequential"

    def __init__(self, models: Sequence[nn.Module], *, threads_per_process: int | None = None) -> None:
        super().__init__(models)
        start = time.perf_counter()
        requested = _optional_threads(threads_per_process)
        self._previous_threads = torch.get_num_threads()
        self._training_flags = {m: m.training for model in self.models for m in model.modules()}
        for model in self.models:
            model.eval()
        if requested is not None:
            torch.set_num_threads(requested)
        self.processes = 1
        self.threads_per_process = torch.get_num_threads()
        self._closed = False
        self.setup_seconds = time.perf_counter() - start

    def member_logits(self, x: np.ndarray) -> np.ndarray:
        logits = _member_logits(self.models, x)
        self.num_members = logits.shape[1]
        return logits

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        torch.set_num_threads(self._previous_threads)
        for module, training in self._training_flags.items():
            module.training = training


class ParallelPredictor(_Predictor):
    """One persistent worker process per model, or per contiguous chunk of models when
    ``processes < len(models)``; use it as a context manager (workers stop on exit, also on errors).

    The models are sent once, at start-up, as recipes (class, feature spec and config of a
    backbone; member specs of a group) plus ``torch.save``-d state dicts; the caller's models are
    not touched. Each worker sets ``torch.set_num_threads(threads_per_process)`` (default
    ``max(1, cores // processes)``), rebuilds its models in eval mode and waits. A call sends the
    batch to every worker (pickled through a pipe), waits for all of them, concatenates their
    member logits in model order and averages the probabilities here: the measured round trip
    includes this IPC. ``setup_seconds`` is the start-up (process spawn, imports, model transfer).
    """

    mode = "parallel"

    def __init__(
        self,
        models: Sequence[nn.Module],
        *,
        processes: int | None = None,
        threads_per_process: int | None = None,
        start_method: Literal["spawn", "forkserver"] = "spawn",
    ) -> None:
        super().__init__(models)
        start = time.perf_counter()
        wanted = len(self.models) if processes is None else _positive_int(processes, "processes")
        self.processes = min(wanted, len(self.models))
        requested = _optional_threads(threads_per_process)
        self.threads_per_process = requested or default_threads_per_process(self.processes)
        _check_start_method(start_method)
        args = [
            ([_model_payload(m) for m in chunk], self.threads_per_process)
            for chunk in _split_evenly(self.models, self.processes)
        ]
        self._pool = _WorkerPool(_inference_worker_main, args, start_method)
        self.setup_seconds = time.perf_counter() - start

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty once closed)."""
        return [w.process.pid for w in self._pool.workers]

    def member_logits(self, x: np.ndarray) -> np.ndarray:
        workers = self._pool.workers
        if not workers:
            raise ConfigError("this ParallelPredictor is closed; open a new one")
        try:
            for worker in workers:
                worker.send(("logits", x), "predicting")
            logits = np.concatenate([worker.receive("predicting") for worker in workers], axis=1)
        except BaseException:
            self._pool.close(_ERROR_GRACE_SECONDS)  # other workers may still owe an answer: pipes out of step
            raise
        self.num_members = logits.shape[1]
        return logits

    def close(self) -> None:
        """Stop and join the workers (safe to call twice)."""
        self._pool.close()

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        self._pool.close(_ERROR_GRACE_SECONDS if exc_type is not None else _STOP_GRACE_SECONDS)


def _check_mode(mode: Any) -> str:
    if mode not in INFERENCE_MODES:
        raise ConfigError(f"mode must be one of {list(INFERENCE_MODES)}, got {mode!r}")
    return mode


def open_predictor(
    models: Sequence[nn.Module],
    *,
    mode: Literal["sequential", "parallel"] = "sequential",
    processes: int | None = None,
    threads_per_process: int | None = None,
    start_method: Literal["spawn", "forkserver"] = "spawn",
) -> SequentialPredictor | ParallelPredictor:
    """A :class:`SequentialPredictor` or :class:`ParallelPredictor` (use ``with``; see both).

    ``processes`` and ``start_method`` belong to ``mode="parallel"``; giving ``processes`` with
    ``mode="sequential"`` is a :class:`~ttsctr.errors.ConfigError` rather than silently ignored.
    """
    mode = _check_mode(mode)
    if mode == "sequential":
        if processes is not None:
            raise ConfigError(f"processes={processes!r} applies to mode='parallel' only; mode is 'sequential'")
        _check_start_method(start_method)
        return SequentialPredictor(models, threads_per_process=threads_per_process)
    return ParallelPredictor(
        models, processes=processes, threads_per_process=threads_per_process, start_method=start_method
    )


def merged_prediction(
    models: Sequence[nn.Module],
    x: np.ndarray,
    *,
    mode: Literal["sequential", "parallel"] = "sequential",
    processes: int | None = None,
    threads_per_process: int | None = None,
    start_method: Literal["spawn", "forkserver"] = "spawn",
) -> np.ndarray:
    """(B,) float64 mean of every member's probability for the (B, F) ids ``x``, computed the
    way :func:`inference_latency` computes it in ``mode`` (workers are started and stopped here)."""
    with open_predictor(
        models, mode=mode, processes=processes, threads_per_process=threads_per_process, start_method=start_method
    ) as predictor:
        return predictor(x)


def inference_latency(
    models: Sequence[nn.Module],
    x_batch: np.ndarray,
    *,
    mode: Literal["sequential", "parallel"],
    processes: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    threads_per_process: int | None = None,
    start_method: Literal["spawn", "forkserver"] = "spawn",
) -> dict[str, Any]:
    """Per-batch latency of merging ``models``' predictions on ``x_batch``, in milliseconds.

    The batch is checked once (untimed); then ``warmup`` untimed and ``repeats`` timed calls each
    go from the numpy batch to the (B,) merged probabilities: ``sequential`` runs the models one
    after another here; ``parallel`` is the round trip to persistent workers (batch pickled to
    every worker, forward passes side by side, logits pickled back, averaging here), see
    :class:`ParallelPredictor`. Worker start-up is not timed; it is ``setup_seconds``.

    Returns a dict with :data:`LATENCY_KEYS`: ``mode``, ``num_models``, ``num_members`` (columns
    averaged: a group counts its members), ``processes`` (workers; 1 for sequential),
    ``threads_per_process`` (torch threads of each process), ``batch_size``, ``repeats``,
    ``warmup``, ``p50_ms``, ``p90_ms``, ``mean_ms``, ``min_ms``, ``max_ms``, ``setup_seconds``.
    """
    mode = _check_mode(mode)
    repeats = _positive_int(repeats, "repeats")
    warmup = _positive_int(warmup, "warmup", minimum=0)
    with open_predictor(
        models, mode=mode, processes=processes, threads_per_process=threads_per_process, start_method=start_method
    ) as predictor:
        x = predictor.check_batch(x_batch)
        for _ in range(warmup):
            predictor.merge_checked(x)
        milliseconds = np.empty(repeats, dtype=np.float64)
        for i in range(repeats):
            start = time.perf_counter()
            predictor.merge_checked(x)
            milliseconds[i] = (time.perf_counter() - start) * 1000.0
        result = {
            "mode": mode,
            "num_models": len(predictor.models),
            "num_members": int(predictor.num_members),
            "processes": int(predictor.processes),
            "threads_per_process": int(predictor.threads_per_process),
            "batch_size": int(x.shape[0]),
            "repeats": repeats,
            "warmup": warmup,
            "p50_ms": float(np.percentile(milliseconds, 50)),
            "p90_ms": float(np.percentile(milliseconds, 90)),
            "mean_ms": float(milliseconds.mean()),
            "min_ms": float(milliseconds.min()),
            "max_ms": float(milliseconds.max()),
            "setup_seconds": float(predictor.setup_seconds),
        }
    return result
