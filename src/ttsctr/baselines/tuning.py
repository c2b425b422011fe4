"""Hyperparameter studies with Optuna: one study per (dataset, model, dimension, scale).

* Sampler: TPE (``optuna.samplers.TPESampler``, seeded). Pruner: ``median`` (MedianPruner) or
  ``hyperband`` (HyperbandPruner) on the per-epoch validation AUC: every epoch is
  ``trial.report(valid_auc, epoch)``, and ``trial.should_prune()`` stops the trial.
* Storage: any SQLAlchemy URL Optuna's ``RDBStorage`` accepts (``sqlite:///data/06_models/optuna.db``
  by default, PostgreSQL by configuration). A study is created or loaded by name; a rerun runs only
  the trials still missing (finished and pruned trials count), so an interrupted study resumes
  with its finished trials intact. A trial left ``RUNNING`` by a dead process is marked ``FAIL``
  (the run holds the dataset's lock, so no live process owns it) and does not count.
* The search space is stored in the study's user attributes; loading a study whose stored space
  differs from the configured one is an error naming the parameter, so trials of two spaces are
  never mixed.
* Tracking: with an active MLflow run, every trial is a nested run ``<study>#<trial>`` with its
  parameters, per-epoch validation AUC, final state (COMPLETE/PRUNED/FAIL) and test metrics.
  (optuna-integration's ``MLflowCallback`` does the same after a trial ends, but it is deprecated
  since Optuna 4.9 and logs nothing while the trial runs.)

Search-space entries (``param_scaling.study.search_space``, a list so that an environment's list
replaces the base one instead of merging into it; a mapping name -> entry is accepted too)::

    - {name: learning_rate, type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    - {name: dropout, type: float, low: 0.0, high: 0.3}
    - {name: batch_size, type: categorical, choices: [512, 1024, 2048]}
    - {name: num_layers, type: int, low: 1, high: 4}
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import mlflow

from ttsctr import tracking
from ttsctr.errors import ConfigError

__all__ = ["StudySettings", "StudyOutcome", "search_space", "open_storage", "run_study", "check_studies", "suggest"]

log = logging.getLogger(__name__)
SPACE_ATTR = "ttsctr.search_space"
SETTINGS_ATTR = "ttsctr.trial_settings"  # hash of what every trial trains (configuration, training settings)


def search_space(config: Mapping[str, Any], where: str = "param_scaling.study.search_space") -> dict[str, BaseDistribution]:
    """Optuna distributions from the configuration (see the module docstring for the format)."""
    if isinstance(config, (list, tuple)):  # the parameters' form: a list replaces, not merges, across envs
        entries = {}
        for i, entry in enumerate(config):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise ConfigError(f"{where}[{i}] must be a mapping with a 'name', got {entry!r}")
            if entry["name"] in entries:
                raise ConfigError(f"{where}: parameter {entry['name']!r} appears twice")
            entries[entry["name"]] = {k: v for k, v in entry.items() if k != "name"}
        config = entries
    if not isinstance(config, Mapping) or not config:
        raise ConfigError(f"{where} must list parameters with their distributions, got {config!r}")
    space: dict[str, BaseDistribution] = {}
    for name, entry in config.items():
        here = f"{where}.{name}"
        if not isinstance(entry, Mapping) or "type" not in entry:
            raise ConfigError(f"{here} must be a mapping with a 'type' (float, int or categorical), got {entry!r}")
        kind = entry["type"]
        allowed = {"float": {"type", "low", "high", "log"}, "int": {"type", "low", "high", "log"},
                   "categorical": {"type", "choices"}}.get(kind)
        if allowed is not None and set(entry) - allowed:
            raise ConfigError(f"{here}: unknown keys {sorted(set(entry) - allowed)} for a {kind} distribution; "
                              f"known keys: {sorted(allowed)}")
        try:
            if kind == "float":
                space[name] = FloatDistribution(float(entry["low"]), float(entry["high"]), log=bool(entry.get("log", False)))
            elif kind == "int":
                space[name] = IntDistribution(int(entry["low"]), int(entry["high"]), log=bool(entry.get("log", False)))
            elif kind == "categorical":
                choices = entry["choices"]
                if not isinstance(choices, (list, tuple)) or not choices:
                    raise ConfigError(f"{here}.choices must be a non-empty list, got {choices!r}")
                space[name] = CategoricalDistribution(tuple(choices))
            else:
                raise ConfigError(f"{here}.type must be float, int or categorical, got {kind!r}")
        except KeyError as exc:
            raise ConfigError(f"{here}: missing key {exc.args[0]!r} for a {kind} distribution") from None
        except ValueError as exc:  # Optuna's own check (low > high, log with low <= 0, ...)
            raise ConfigError(f"{here}: {exc}") from None
    return space


def _space_json(space: Mapping[str, BaseDistribution]) -> dict[str, str]:
    return {name: optuna.distributions.distribution_to_json(d) for name, d in sorted(space.items())}


def open_storage(url: str, where: str = "param_scaling.study.storage") -> optuna.storages.RDBStorage:
    """An Optuna RDB storage at ``url``; one that cannot be opened is a ConfigError naming ``where``."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"{where} must be an SQLAlchemy URL such as sqlite:///data/06_models/optuna.db, got {url!r}")
    if url.startswith("sqlite:///"):
        from pathlib import Path

        path = Path(url[len("sqlite:///"):])
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors of many kinds: report the URL
        raise ConfigError(f"{where}: cannot open the Optuna storage {url!r}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class StudySettings:
    """``n_trials`` (finished trials wanted), TPE ``seed`` and startup trials, pruner and its warm-up."""

    n_trials: int = 8
    seed: int = 0
    pruner: str = "median"  # median | hyperband | none
    startup_trials: int = 3  # TPE's random start and the median pruner's trials before it prunes
    warmup_epochs: int = 0  # epochs a trial runs before it may be pruned

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], where: str = "param_scaling.study") -> "StudySettings":
        known = {"n_trials", "seed", "pruner", "startup_trials", "warmup_epochs"}
        unknown = sorted(set(config) - known - {"storage", "search_space"})
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known keys: {sorted(known | {'storage', 'search_space'})}")
        settings = cls(**{k: v for k, v in config.items() if k in known})
        for name, minimum in (("n_trials", 1), ("startup_trials", 1), ("seed", 0), ("warmup_epochs", 0)):
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{where}.{name} must be an integer >= {minimum}, got {value!r}")
        if settings.pruner not in ("median", "hyperband", "none"):
            raise ConfigError(f"{where}.pruner must be median, hyperband or none, got {settings.pruner!r}")
        return settings

    def make_pruner(self, max_epochs: int) -> optuna.pruners.BasePruner:
        if self.pruner == "median":
            # epochs are reported as steps 1, 2, ...; Optuna may prune at any step >= n_warmup_steps
            return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials,
                                               n_warmup_steps=self.warmup_epochs + 1)
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs))
        return optuna.pruners.NopPruner()

    def make_sampler(self, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
        # offset by the trials already stored: a resumed study must not draw trial 0's start-up
        # parameters again (the sampler's random state is not stored with the study)
        return optuna.samplers.TPESampler(seed=self.seed + trials_so_far, n_startup_trials=self.startup_trials)


@dataclass
class StudyOutcome:
    """What a study cost and found. ``trials_until_best`` counts the finished (complete or pruned)
    trials up to and including the best one; ``wall_seconds`` sums the finished trials' own
    durations over all runs (failed trials are counted in ``failed``, not in the time)."""

    study_name: str
    trials: int
    completed: int
    pruned: int
    failed: int
    wall_seconds: float
    trials_until_best: int
    best_value: float
    best_params: dict[str, Any]
    best_user_attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _refuse_mismatch(name: str, stored: Any, wanted: Any, where: str, what: str) -> None:
    """A ConfigError when study ``name`` stored ``stored`` but ``wanted`` is configured (None: nothing stored)."""
    if stored is None or stored == wanted:
        return
    if isinstance(stored, dict) and isinstance(wanted, dict):
        diff = next(n for n in sorted(set(stored) | set(wanted)) if stored.get(n) != wanted.get(n))
        raise ConfigError(
            f"{where}.{diff}: study {name!r} was run with {stored.get(diff) or 'no such parameter'}, "
            f"configured now {wanted.get(diff) or 'absent'}; restore it or use another storage/study"
        )
    raise ConfigError(
        f"{where}: study {name!r} was run with other {what} ({stored} vs now {wanted}); "
        "its trials would mix two settings: restore them, or use another storage (param_scaling.study.storage)"
    )


def _check_attr(study: optuna.Study, attr: str, wanted: Any, where: str, what: str) -> None:
    stored = study.user_attrs.get(attr)
    if stored is None:
        study.set_user_attr(attr, wanted)
    _refuse_mismatch(study.study_name, stored, wanted, where, what)


def check_studies(storage: optuna.storages.BaseStorage, names: Sequence[str] | Mapping[str, str | None],
                  space: Mapping[str, BaseDistribution], where: str = "param_scaling.study") -> None:
    """Refuse, before anything trains, a stored study of these names run with another search space
    or (``names`` mapping study -> trial-settings hash) other training settings; writes nothing."""
    wanted = {name: None for name in names} if not isinstance(names, Mapping) else names
    stored = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for name, settings in wanted.items():
        if name not in stored:
            continue
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        if settings is not None:
            _refuse_mismatch(name, attrs.get(SETTINGS_ATTR), settings, where, "training settings or configuration")
        _refuse_mismatch(name, attrs.get(SPACE_ATTR), _space_json(space), f"{where}.search_space", "search space")


def _load_or_create(storage: optuna.storages.RDBStorage, name: str, space: Mapping[str, BaseDistribution],
                    settings: StudySettings, max_epochs: int, where: str, trial_settings: str | None) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                sampler=settings.make_sampler(), pruner=settings.make_pruner(max_epochs))
    if study.trials and study.user_attrs.get(SPACE_ATTR) is None:
        raise ConfigError(f"{where}: study {name!r} has trials but no stored search space; use another storage")
    _check_attr(study, SPACE_ATTR, _space_json(space), f"{where}.search_space", "search space")
    if trial_settings is not None:
        _check_attr(study, SETTINGS_ATTR, trial_settings, where, "training settings or configuration")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # the caller holds the dataset lock: a RUNNING trial is a leftover of a dead process (on a
        # storage shared by several hosts this would not hold: run one host per study)
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        log.warning("study %s: trial %d was left running by an interrupted run; marked FAIL", name, trial.number)
    study.sampler = settings.make_sampler(len(study.trials))
    return study


Objective = Callable[[optuna.Trial, Callable[[float, int], None]], tuple[float, dict[str, Any]]]


def run_study(
    name: str,
    objective: Objective,
    space: Mapping[str, BaseDistribution],
    storage: optuna.storages.RDBStorage,
    settings: StudySettings,
    *,
    max_epochs: int,
    enqueue: list[Mapping[str, Any]] | None = None,
    mlflow_tracking: bool = False,
    trial_settings: str | None = None,
    where: str = "param_scaling.study",
) -> StudyOutcome:
    """Run trials of study ``name`` until ``settings.n_trials`` have finished (complete or pruned).

    ``objective(trial, report)`` samples from ``trial`` (use ``trial.suggest_*`` with the names
    and distributions of ``space``, or :func:`suggest`), trains, calls ``report(valid_auc, epoch)``
    after every epoch (which raises ``optuna.TrialPruned`` when the pruner says so) and returns
    ``(best valid AUC, user attributes)``. ``enqueue``: parameter sets tried first (e.g. the
    base configuration's defaults), only on a new study. ``trial_settings``: a hash of what every
    trial trains besides the sampled parameters (configuration, training settings); a stored
    study with another hash is refused, so one study never mixes two settings.
    """
    study = _load_or_create(storage, name, space, settings, max_epochs, where, trial_settings)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    if enqueue and not study.trials:
        for params in enqueue:
            study.enqueue_trial(dict(params), skip_if_exists=True)

    def wrapped(trial: optuna.Trial) -> float:
        def report(value: float, epoch: int) -> None:
            trial.report(value, epoch)
            if run is not None:
                mlflow.log_metric("valid_auc", value, step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (valid AUC {value:.4f})")

        # A nested MLflow run per trial (what optuna-integration's MLflowCallback did; it is
        # deprecated since Optuna 4.9), open while the trial trains: its epochs arrive live.
        tags = {"study": name, "trial": str(trial.number)}
        pruned: optuna.TrialPruned | None = None
        with (tracking.nested_run(f"{name}#{trial.number}", tags=tags) if mlflow_tracking
              else contextlib.nullcontext()) as run:
            try:
                value, attrs = objective(trial, report)
            except optuna.TrialPruned as exc:  # a pruned trial's run ends FINISHED, tagged PRUNED
                pruned = exc
            if run is not None:
                tracking.log_flat_params(dict(trial.params))
                mlflow.set_tag("state", "PRUNED" if pruned else "COMPLETE")
                if pruned is None:
                    mlflow.log_metrics(tracking.finite_metrics({"best_valid_auc": value, **attrs}))
        if pruned is not None:
            raise pruned
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        return value

    while (missing := settings.n_trials - sum(t.state in finished for t in study.get_trials(deepcopy=False))) > 0:
        study.optimize(wrapped, n_trials=missing, catch=())
    return outcome(study)


def suggest(trial: optuna.Trial, space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """Every parameter of ``space`` sampled from ``trial`` with its own distribution."""
    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            out[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, IntDistribution):
            out[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        else:
            out[name] = trial.suggest_categorical(name, list(dist.choices))
    return out


def outcome(study: optuna.Study) -> StudyOutcome:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"study {study.study_name!r} has no completed trial (all were pruned or failed)")
    best = max(complete, key=lambda t: (t.value, -t.number))
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # finished trials only: a trial failed by a later run "completes" when it is marked, so its
    # duration would include the time the process was down
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished
                  if t.datetime_complete is not None and t.datetime_start is not None)
    return StudyOutcome(
        study_name=study.study_name,
        trials=len(trials),
        completed=len(complete),
        pruned=sum(t.state == TrialState.PRUNED for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        wall_seconds=float(seconds),
        trials_until_best=sum(t.number <= best.number for t in finished),
        best_value=float(best.value) if best.value is not None and math.isfinite(best.value) else float("nan"),
        best_params=dict(best.params),
        best_user_attrs={k: v for k, v in best.user_attrs.items()},
    )

