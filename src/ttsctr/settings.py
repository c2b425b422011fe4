"""Project settings (Kedro defaults, plus a deep merge of parameters across environments).

``soft`` merging lets ``conf/local`` or another ``--env`` override one nested key (say
``tts.training.max_epochs``) without restating the whole ``tts`` block.
"""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
}

import os as _os

# MLflow prints a progress bar for every artifact it copies; with dozens of registered models
# per run that drowns the scaling tables.
_os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from ttsctr.hooks import DatasetLockHooks, ProcessRunHooks  # noqa: E402

HOOKS = (DatasetLockHooks(), ProcessRunHooks())
