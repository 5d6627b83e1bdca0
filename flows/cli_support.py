"""What several `ocr-pipeline` commands share: the task runner a command asked for, and tables."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ocr_core.config import RunnerParams


def chosen_runner(params: RunnerParams, folder: Path, given_as: str, trains: bool = True):
    """The task runner `params` asks for; says where tasks run and what to know before a Dask run.

    Args:
        folder: the (absolute) folder the run writes to.
        given_as: the name of the option or argument that names it.
        trains: the run trains models (local Dask workers then load TensorFlow at start).
    """
    from flows.runners import describe_runner, start_up_warnings, task_runner_for

    given = click.get_current_context().params.get(given_as)
    click.echo(describe_runner(params), err=True)
    for warning in start_up_warnings(params, folder, given, check_env=given_as == "results_dir"):
        click.echo(f"Warning: {warning}", err=True)
    runner = task_runner_for(params, load_tensorflow=trains)
    # Importing distributed (above) set its loggers' levels; its scheduler and nannies log
    # every connection at INFO.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    return runner


def echo_table(rows: list[dict]) -> None:
    """Print `rows` (dicts with the same keys) as aligned columns; None shows as '-'."""
    columns = list(rows[0])
    text = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(cells[i]) for cells in text)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for cells in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)))
