# `make run` and `make test` are the only two commands a new user needs.
# Both create .venv on first use (Python 3.11) and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export PYTHONHASHSEED := 0
export KEDRO_LOGGING_CONFIG ?= $(CURDIR)/conf/logging.yml
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: run test setup repro repro-baselines baselines clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run
	$(BIN)/kedro run --pipelines report
	@out=$$(ls -t data/08_reporting/*/scaling_tables.md 2>/dev/null | head -1); out=$${out%/*}; \
	echo; echo "Results in $${out:-data/08_reporting/<dataset>}/:"; \
	echo "  scaling_tables.md       the scaling tables printed above"; \
	echo "  <ensemble>/scaling.png  each ensemble's plot (scaling.md/.csv beside it); registry/<ensemble>.json its report"; \
	echo "  metrics.json            headline AUC per ensemble and scale"; \
	echo "MLflow runs and models:   $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db  (then open http://127.0.0.1:5000)"; \
	echo "Data Docs (GX checks):    open gx/uncommitted/data_docs/local_site/index.html"; \
	echo "Analyses (§3.6):          $${out:-data/08_reporting/<dataset>}/analysis/  (analysis.md, separation/diversity/selection.png)"; \
	echo; echo "Report (every dataset, the paper's numbers beside ours, claims C1-C8): $(CURDIR)/data/08_reporting/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The six baseline comparisons (conf/base/parameters_baselines.yml) on DATASET (default: synthetic),
# after `make run` or `kedro run --pipelines data_processing` has published its splits.
BASELINES := param_scaling width_scaling model_merging orthogonality training_free efficiency
baselines: $(STAMP)
	@set -e; for p in $(BASELINES); do \
	  echo "== kedro run --pipelines $$p $(if $(DATASET),--params dataset=$(DATASET))"; \
	  $(BIN)/kedro run --pipelines $$p $(if $(DATASET),--params dataset=$(DATASET)); \
	done; echo; echo "Tables, reports and plots in data/08_reporting/$(or $(DATASET),synthetic)/<comparison>/"

# The main chain preprocess → train → predict → merge → report, the analysis and the HTML report;
# repro-baselines runs every stage.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro html_report

# html_report does not depend on the baseline stages (so `make repro` never starts them); it is
# rebuilt here after them, so claims.csv covers the fresh comparisons.
repro-baselines: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro --force --single-item html_report

clean-outputs:
	rm -rf data/0[2-8]_*/*/ mlflow.db mlflow.db.lock mlruns/[0-9a-f]* 
