"""Progress bars for long data work: tqdm on stderr with a rows/s rate, or nothing at all."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(desc: str, *, total: int | None = None, unit: str = "rows", enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr (``unit``/s, SI-scaled); ``enabled=False`` gives a silent bar with the same API."""
    return tqdm(
        desc=desc,
        total=total,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.5,
        leave=True,
        **kwargs,
    )
