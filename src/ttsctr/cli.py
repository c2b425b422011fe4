"""Project CLI: Kedro's ``kedro run`` with a readable end for ttsctr's own errors.

Kedro loads ``<package>.cli`` and lets its commands override the built-in ones. ``run`` here is
Kedro's run command (same options, same code) plus ``-v/--verbose``: a
:class:`~ttsctr.errors.TTSCTRError` (a bad configuration, a malformed or invalid input file, a
stale data version, a busy dataset) ends the run with ``Error: <message>`` on stderr and exit
code 1, without a traceback; ``--verbose``, or DEBUG logging for ``ttsctr``, ``kedro`` or the
root logger, shows the full traceback as before. Any other exception keeps its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from kedro.framework.cli.project import run as _kedro_run
from kedro.framework.cli.utils import CONTEXT_SETTINGS

from ttsctr.errors import TTSCTRError


@click.group(context_settings=CONTEXT_SETTINGS, name=__file__)
def cli() -> None:
    """Command line tools for ttsctr."""


def _debug_logging() -> bool:
    return any(logging.getLogger(name).isEnabledFor(logging.DEBUG) for name in ("ttsctr", "kedro", ""))


def _run(verbose: bool, **kwargs: Any) -> Any:
    try:
        return _kedro_run.callback(**kwargs)
    except TTSCTRError as exc:
        if verbose or _debug_logging():
            raise
        raise click.ClickException(str(exc)) from None  # click prints "Error: <message>", exits 1


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *_kedro_run.params,
        click.Option(["--verbose", "-v"], is_flag=True,
                     help="Show the full traceback when the run stops on a ttsctr error."),
    ],
    help=_kedro_run.help,
    short_help=_kedro_run.short_help,
    context_settings=CONTEXT_SETTINGS,
)
cli.add_command(run)
