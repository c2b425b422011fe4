"""Optuna studies on a real SQLite storage: resume after an interruption, pruning, bad settings."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from ttsctr.baselines.fitting import fit_group
from ttsctr.baselines.scaling_study import check_studies, split_hyperparameters
from ttsctr.baselines.tuning import StudySettings, open_storage, run_study, search_space, suggest
from ttsctr.errors import ConfigError
from ttsctr.training import MemberSpec

SPACE = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
         "batch_size": {"type": "categorical", "choices": [256, 512]}}


class Interrupted(Exception):
    pass


def test_an_interrupted_study_resumes_with_its_finished_trials_intact(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    space = search_space(SPACE)
    settings = StudySettings(n_trials=5, startup_trials=2, pruner="none")
    calls = []

    def objective(trial, report):
        params = suggest(trial, space)
        calls.append(trial.number)
        if len(calls) == 3:
            raise Interrupted  # the process dies while trial 2 trains
        report(0.6, 1)
        return 0.5 + params["learning_rate"], {"seen": trial.number}

    with pytest.raises(Interrupted):
        run_study("s", objective, space, storage, settings, max_epochs=1)
    before = {t.number: (t.params, t.value) for t in optuna.load_study(study_name="s", storage=storage).trials
              if t.state == TrialState.COMPLETE}
    assert sorted(before) == [0, 1]
    outcome = run_study("s", objective, space, storage, settings, max_epochs=1)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert {t.number: (t.params, t.value) for t in trials if t.number in before} == before  # untouched
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 5
    assert trials[2].state == TrialState.FAIL  # the interrupted trial does not count
    assert calls == [0, 1, 2, 3, 4, 5]  # only the three missing trials ran again
    assert outcome.completed == 5 and outcome.failed == 1 and outcome.trials == 6
    # a third run has nothing left to do
    assert run_study("s", objective, space, storage, settings, max_epochs=1).trials == 6 and len(calls) == 6


def test_a_trial_left_running_by_a_dead_process_is_marked_failed(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    space = search_space(SPACE)
    settings = StudySettings(n_trials=1, startup_trials=1, pruner="none")
    run_study("s", lambda t, r: (suggest(t, space)["learning_rate"], {}), space, storage, settings, max_epochs=1)
    optuna.load_study(study_name="s", storage=storage).ask()  # RUNNING, never told
    run_study("s", lambda t, r: (suggest(t, space)["learning_rate"], {}), space, storage, settings, max_epochs=1)
    states = [t.state for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]


@pytest.mark.parametrize("warmup", [0, 1])
def test_pruning_stops_a_planted_bad_configuration_in_real_training(splits, tmp_path, warmup):
    """Two good trials, then a learning rate too small to learn anything: the median pruner
    stops it after its first epoch past the warm-up, while the good ones train to the end."""
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    space = search_space({"learning_rate": {"type": "float", "low": 1e-7, "high": 1e-2, "log": True}})
    settings = StudySettings(n_trials=3, startup_trials=2, pruner="median", warmup_epochs=warmup)
    training = {"max_epochs": 3, "patience": 3, "num_threads": 1, "batch_size": 256, "min_steps_per_epoch": None,
                "progress": False, "lr_decay_factor": None}
    epochs_run = {}

    def objective(trial, report):
        params = suggest(trial, space)
        member = MemberSpec("fnn", 0, "small")
        seen = epochs_run.setdefault(trial.number, [])
        fitted = fit_group(splits, [member], {**training, **params}, tmp_path / "fits",
                           on_epoch_end=lambda r: (seen.append(r["epoch"]), report(r["valid_auc"], r["epoch"])))
        return fitted.result["valid_auc"], {}

    outcome = run_study("prune", objective, space, storage, settings, max_epochs=3,
                        enqueue=[{"learning_rate": 3e-3}, {"learning_rate": 5e-3}, {"learning_rate": 1e-7}])
    states = [t.state for t in optuna.load_study(study_name="prune", storage=storage).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert epochs_run == {0: [1, 2, 3], 1: [1, 2, 3], 2: list(range(1, warmup + 2))}
    assert outcome.pruned == 1 and outcome.best_params["learning_rate"] in (3e-3, 5e-3)


def test_a_changed_search_space_is_refused_naming_the_parameter(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    space = search_space(SPACE)
    run_study("s", lambda t, r: (0.5, {}), space, storage, StudySettings(n_trials=1, startup_trials=1), max_epochs=1)
    changed = search_space({**SPACE, "batch_size": {"type": "categorical", "choices": [256, 1024]}})
    with pytest.raises(ConfigError, match=r"param_scaling.study.search_space.batch_size: study 's' was run with"):
        check_studies(storage, ["s", "absent"], changed)
    with pytest.raises(ConfigError, match=r"search_space.batch_size"):
        run_study("s", lambda t, r: (0.5, {}), changed, storage, StudySettings(n_trials=2, startup_trials=1), max_epochs=1)
    check_studies(storage, ["s"], space)  # the stored space itself is accepted


def test_the_search_space_list_form_equals_the_mapping_form():
    listed = search_space([{"name": name, **entry} for name, entry in SPACE.items()])
    assert listed == search_space(SPACE)
    with pytest.raises(ConfigError, match=r"parameter 'lr' appears twice"):
        search_space([{"name": "lr", "type": "float", "low": 0.1, "high": 1}] * 2)


def test_bad_study_settings_are_errors_naming_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match=r"param_scaling.study.storage: cannot open the Optuna storage 'nosuchdb://x'"):
        open_storage("nosuchdb://x")
    with pytest.raises(ConfigError, match=r"param_scaling.study.storage must be an SQLAlchemy URL"):
        open_storage("data/optuna.db")
    with pytest.raises(ConfigError, match=r"search_space.lr.type must be float, int or categorical"):
        search_space({"lr": {"type": "normal", "low": 0, "high": 1}})
    with pytest.raises(ConfigError, match=r"search_space.lr: missing key 'high'"):
        search_space({"lr": {"type": "float", "low": 0.1}})
    with pytest.raises(ConfigError, match=r"search_space.lr"):
        search_space({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})
    with pytest.raises(ConfigError, match=r"param_scaling.study.pruner must be median, hyperband or none"):
        StudySettings.from_dict({"pruner": "random"})
    with pytest.raises(ConfigError, match=r"search_space.widthh: not a training setting .* nor a config key of dcnv2"):
        split_hyperparameters({"widthh": 3}, "dcnv2", "small")
    model, training = split_hyperparameters({"dropout": 0.1, "batch_size": 512, "learning_rate": 1e-3}, "dcnv2", "small")
    assert model == {"dropout": 0.1}
    assert training == {"batch_size": 512, "learning_rate": 1e-3, "min_steps_per_epoch": None}


def test_a_study_run_with_other_training_settings_is_refused(tmp_path):
    """Changing the epoch cap (or the scaled configuration) must not mix trials of two settings."""
    from ttsctr.baselines.param_scaling import ScaledConfig
    from ttsctr.baselines.scaling_study import trial_settings

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    space = search_space(SPACE)
    scaled = ScaledConfig("dcnv2", "small", "width", 2.0, {"hidden_units": (256, 128)}, 2.0, 1.0, 1, 1)
    before = trial_settings(scaled, {"max_epochs": 12})
    settings = StudySettings(n_trials=1, startup_trials=1)
    run_study("s", lambda t, r: (suggest(t, space)["learning_rate"], {}), space, storage, settings, max_epochs=12,
              trial_settings=before)
    after = trial_settings(scaled, {"max_epochs": 50})
    assert after != before and trial_settings(scaled, {"max_epochs": 12}) == before
    with pytest.raises(ConfigError, match=r"study 's' was run with other training settings or configuration"):
        check_studies(storage, {"s": after}, space)
    with pytest.raises(ConfigError, match=r"study 's' was run with other training settings or configuration"):
        run_study("s", lambda t, r: (0.5, {}), space, storage, StudySettings(n_trials=2, startup_trials=1),
                  max_epochs=50, trial_settings=after)
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1  # nothing ran


def test_unknown_or_bad_baseline_settings_name_the_parameter():
    from ttsctr.baselines.fitting import baseline_training
    from ttsctr.baselines.settings import check_keys, whole_numbers

    with pytest.raises(ConfigError, match=r"width_scaling: unknown keys \['seed'\]"):
        check_keys({"seed": [0]}, ("configurations", "experts", "seeds"), "width_scaling")
    with pytest.raises(ConfigError, match=r"param_scaling.scales must be a non-empty list of whole numbers >= 1"):
        whole_numbers([1, 2.5], "param_scaling.scales")
    assert whole_numbers([1, 2.0, 4], "param_scaling.scales") == [1, 2, 4]
    with pytest.raises(ConfigError, match=r"param_scaling.study: unknown keys \['trials'\]"):
        StudySettings.from_dict({"trials": 3})
    with pytest.raises(ConfigError, match=r"param_scaling.study.warmup_epochs must be an integer >= 0"):
        StudySettings.from_dict({"warmup_epochs": -1})
    with pytest.raises(ConfigError, match=r"search_space.lr: unknown keys \['step'\] for a float distribution"):
        search_space({"lr": {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1}})
    with pytest.raises(ConfigError, match=r"baselines: unknown keys \['epochs'\]"):
        baseline_training({}, {"epochs": 3})
    with pytest.raises(ConfigError, match=r"training parameters: unknown keys \['max_epoch'\]"):
        baseline_training({}, {"training": {"max_epoch": 3}})
