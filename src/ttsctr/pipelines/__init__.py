"""Kedro pipelines of ttsctr."""

from __future__ import annotations

from functools import partial, update_wrapper
from typing import Any, Callable


def bind(func: Callable[..., Any], **plan: Any) -> Callable[..., Any]:
    """``func`` with plan objects (an ensemble, a group) fixed as keyword arguments.

    A module-level function plus picklable dataclasses, so ParallelRunner can ship it to workers;
    ``update_wrapper`` keeps the function's name for Kedro's node descriptions.
    """
    return update_wrapper(partial(func, **plan), func)


DATASET_NAME_SEPARATOR = "__"


def dataset_name(*parts: str) -> str:
    """A catalog dataset name such as ``dcnv2_x8__group_00__trained_group``.

    Dots are Kedro's namespace notation (node names ``dcnv2_x8.group_00.train_group`` come from
    the nodes' ``namespace``), so dataset names join their parts with ``__``; the catalog's
    factory patterns (``"{ensemble}__{group}__trained_group"``) split them again. Ensemble and
    group names never contain ``__`` (checked when plans are made).
    """
    return DATASET_NAME_SEPARATOR.join(parts)


def comparison_pipeline(name: str, run: Callable[..., Any], report: Callable[..., Any], run_inputs: list[str]) -> Any:
    """A baseline comparison: ``run_<name>`` (inputs -> ``<name>__baseline_table``), then
    ``report_<name>`` (table -> ``<name>__baseline_report`` Markdown and ``<name>__baseline_plot``)."""
    from kedro.pipeline import node, pipeline

    table = f"{name}__baseline_table"
    return pipeline([
        node(run, run_inputs, table, name=f"run_{name}", tags=[name]),
        node(report, [table, "model_input_summary", f"params:{name}"],
             [f"{name}__baseline_report", f"{name}__baseline_plot"], name=f"report_{name}", tags=[name]),
    ])
