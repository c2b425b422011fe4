"""Baselines the merged ensembles are measured against (logistic regression for now)."""

from ttsctr.baselines.logistic import LogisticReference, fit_logistic_regression

__all__ = ["LogisticReference", "fit_logistic_regression"]
