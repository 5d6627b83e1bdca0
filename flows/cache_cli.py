"""`ocr-pipeline cache ls|prune`: what the cache under a results root holds, and removing old keys."""

from __future__ import annotations

import time

import click

from ocr_core.cache.entries import KeyEntry, parse_duration, plan_prune, remove_key, scan
from ocr_core.config import default_results_dir
from ocr_core.files import remove_path
from ocr_core.storage import root_url

DEFAULT_OLDER_THAN = "30d"

results_dir_option = click.option(
    "--results-dir", default=None,
    help="Results root whose cache to read: a folder or a store URL (s3://bucket/prefix). "
    "Default: $OCR_PIPELINE_RESULTS or ./ocr-results.")


def _root(results_dir: str | None) -> str:
    return root_url(results_dir or default_results_dir())


def _size(size: float) -> str:
    units = ("B", "kB", "MB", "GB", "TB")
    unit = 0
    while size >= 1000 and unit < len(units) - 1:
        size, unit = size / 1000, unit + 1
    return f"{size:.0f} B" if unit == 0 else f"{size:.1f} {units[unit]}"


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _referred_by(item: KeyEntry) -> str:
    refs = ["record"] if item.records else []
    refs += [f"registry {name}" for name in sorted(item.registry)]
    return ", ".join(refs) or "-"


def _row(item: KeyEntry, now: float, note: str = "") -> str:
    return (f"{item.key}  {item.step:<28} {_size(item.size):>9}  {_age(now - item.last_used):>5}  "
            f"{note or _referred_by(item)}")


HEADER = f"{'KEY':<24}  {'STEP':<28} {'SIZE':>9}  {'AGE':>5}  REFERRED TO BY"


@click.group()
def cache() -> None:
    """List the cache's keys; remove old ones (see docs/caching.md)."""


@cache.command("ls")
@results_dir_option
def list_cache(results_dir: str | None) -> None:
    """Each key under the results root: its step, size, age (since last written or read) and
    whether a Prefect result or a registry version refers to it."""
    root = _root(results_dir)
    entries = sorted(scan(root).values(), key=lambda item: item.last_used)
    now = time.time()
    click.echo(HEADER)
    for item in entries:
        click.echo(_row(item, now))
    click.echo(f"{len(entries)} keys, {_size(sum(item.size for item in entries))} in {root}")


@cache.command("prune")
@results_dir_option
@click.option("--older-than", default=DEFAULT_OLDER_THAN, show_default=True,
              help="Remove keys not used for this long: a number and a unit (s, m, h, d, w).")
@click.option("--yes", is_flag=True, help="Remove them; without it, only list what would go.")
def prune_cache(results_dir: str | None, older_than: str, yes: bool) -> None:
    """Remove keys not used for --older-than that no registry version, running step or kept
    key refers to. Without --yes, a dry run."""
    seconds = parse_duration(older_than)
    root = _root(results_dir)
    plan = plan_prune(root, seconds)
    now = time.time()
    for key, why in sorted(plan.kept.items()):
        click.echo(f"keep    {key}  ({why})")
    removed: list[KeyEntry] = []
    for item in plan.remove:
        if not yes:
            click.echo(f"would remove {_row(item, now)}")
        elif remove_key(root, item):
            removed.append(item)
            click.echo(f"removed {_row(item, now)}")
        else:
            click.echo(f"keep    {item.key}  (held by a running step)")
    if yes:
        for path in plan.leftovers:
            remove_path(path)
        click.echo(f"removed {len(removed)} keys, freed {_size(sum(i.unshared for i in removed))} "
                   f"in {root}")
    else:
        click.echo(f"{len(plan.remove)} keys not used for {older_than} would go, freeing "
                   f"{_size(sum(i.unshared for i in plan.remove))}; run again with --yes to "
                   "remove them")
