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
