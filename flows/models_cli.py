"""`ocr-pipeline retrain` and `ocr-pipeline models list|show|promote`: the registry from the command line."""

from __future__ import annotations

import json
from typing import Any

import click

from flows.environment import import_tensorflow_quietly, prepare_environment
from flows.options import params_command
from ocr_core.bundle.format import upgrade
from ocr_core.config import RetrainParams, default_results_dir
from ocr_core.data.dataset import list_pngs
from ocr_core.errors import DataError
from ocr_core.registry import VERSION_FILE, ModelVersion, Registry
from ocr_core.registry.gate import comparison_text
from ocr_core.registry.serving import promote
from ocr_core.statistics import evaluation_size_warning, format_accuracy

results_dir_option = click.option(
    "--results-dir", default=None,
    help="Results root holding the registry: a folder or a store URL (s3://bucket/prefix). "
    "Default: $OCR_PIPELINE_RESULTS or ./ocr-results.")


def _evaluation_count(params: RetrainParams) -> int | None:
    """Images in the evaluation set a retrain will use, before Prefect starts; None when the
    folder cannot be read (the run reports that)."""
    if params.evaluation_dir is None:
        return params.evaluation_samples
    try:
        return len(list_pngs(params.evaluation_dir))
    except DataError:
        return None


def registry_at(results_dir: str | None) -> Registry:
    """The registry of the given results root (a path or URL), or of the default one."""
    return Registry.of(results_dir or default_results_dir())


@click.command()
@params_command(RetrainParams)
def retrain(params: RetrainParams) -> None:
    """Train a challenger and promote it if it beats the champion (the captcha-retrain flow)."""
    count = _evaluation_count(params)
    size_warning = None if count is None else evaluation_size_warning(
        count, params.promotion_margin, params.significance)
    if size_warning is not None:
        click.echo(f"Warning: {size_warning}", err=True)
    prepare_environment()
    from flows.retrain import captcha_retrain

    summary = captcha_retrain(params)
    click.echo("")
    click.echo(f"challenger: {summary.challenger} (seed {summary.seed})")
    test = summary.test_metrics
    click.echo(f"test split: sequence accuracy "
               f"{format_accuracy(float(test['sequence_accuracy']), int(test['count']))}")
    if summary.split_changes:
        click.echo("new data:   " + ", ".join(f"{c['joined']} joined {name}"
                                              for name, c in summary.split_changes.items()))
    click.echo(f"decision:   {'promoted' if summary.promoted else 'kept the champion'}: "
               f"{summary.reason}")
    click.echo(f"champion:   {summary.champion}")
    click.echo(f"log:        {summary.decision_path}")


@click.group()
def models() -> None:
    """List and inspect registered models; promote one by hand (a rollback)."""


@models.command("list")
@results_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def list_models(results_dir: str | None, as_json: bool) -> None:
    """Registered versions, oldest first; the champion is marked with *."""
    registry = registry_at(results_dir)
    versions = registry.versions()
    champion = registry.champion()
    evaluation_set = registry.evaluation_set()
    if as_json:
        click.echo(json.dumps([_summary(v, champion, evaluation_set) for v in versions], indent=2))
        return
    if not versions:
        click.echo(f"no models registered in {registry.location} (train one: ocr-pipeline retrain)")
        return
    rows = [("", "version", "registered", "recipe", "trained on", "eval acc (95% interval)",
             "eval CER")]
    for version in versions:
        summary = _summary(version, champion, evaluation_set)
        scores = summary["evaluation"] or {}
        rows.append(("*" if summary["champion"] else "", version.name, summary["registered"],
                     summary["recipe"], summary["trained_on"],
                     _accuracy(scores),
                     _number(scores.get("character_error_rate"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


@models.command("show")
@results_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the version record as JSON.")
@click.argument("version", default="champion")
def show_model(results_dir: str | None, as_json: bool, version: str) -> None:
    """Everything about one VERSION (v3, 3 or champion): bundle, training data, scores, decisions."""
    registry = registry_at(results_dir)
    found = registry.version(version)
    champion = registry.champion()
    decisions = [d for d in registry.decisions() if found.name in (d.get("challenger"),
                                                                  d.get("champion_before"))]
    if as_json:
        click.echo(json.dumps(found.info | {"path": found.location, "scores": found.scores,
                                            "champion": champion is not None
                                            and champion.name == found.name,
                                            "decisions": decisions}, indent=2))
        return
    info = found.info
    bundle = upgrade(info["bundle"], f"{found.location}/{VERSION_FILE}")  # older bundles too
    is_champion = champion is not None and champion.name == found.name
    click.echo(f"{found.name}{'  (champion)' if is_champion else ''}")
    click.echo(f"  path:             {found.location}")
    click.echo(f"  registered:       {info['registered']} from {info['source']}")
    click.echo(f"  model:            {bundle['recipe']}, input {bundle['input']['width']}x"
               f"{bundle['input']['height']}, vocabulary {bundle['vocabulary']!r}, "
               f"blank index {bundle['blank_index']}")
    click.echo(f"  trained on:       {_trained_on(info['training_data'])}")
    click.echo(f"  training data:    split manifest {bundle['training_data_sha256'][:16]}, "
               f"images {info['training_data'].get('manifest_digest', '?')[:16]}")
    click.echo(f"  package:          ocr-pipeline {bundle['package_version']}, "
               f"code {bundle['code_version']}")
    test = info["metrics"].get("test")
    if test:
        click.echo(f"  test split:       sequence accuracy {_accuracy(test)}, "
                   f"CER {test['character_error_rate']:.4f}")
    for scores in found.scores.values():
        click.echo(f"  evaluation set:   sequence accuracy {_accuracy(scores)}, "
                   f"CER {scores['character_error_rate']:.4f} (set "
                   f"{scores['evaluation_set'][:12]}, {scores['decoder']})")
    for name, change in (info["training_data"].get("split_changes") or {}).items():
        click.echo(f"  new in {name + ':':11s}{change['joined']} images (of {change['images']})")
    params = ", ".join(f"{k}={v}" for k, v in info["params"].items() if v is not None)
    click.echo(f"  parameters:       {params}")
    for decision in decisions:
        outcome = "promoted" if decision["promoted"] else "kept " + str(decision["champion_before"])
        click.echo(f"  decision {decision['decided']}: {outcome}: {decision['reason']}")
        if decision.get("comparison"):
            click.echo(f"    paired test: {comparison_text(decision['comparison'])} "
                       f"(margin {decision['margin']:g}, significance "
                       f"{decision['significance']:g}); evaluation set "
                       f"{decision['evaluation_set']['digest'][:12]}, used by "
                       f"{decision['evaluation_set_uses']} decisions")


@models.command("promote")
@results_dir_option
@click.option("--reason", default="promoted by hand", show_default=True,
              help="Why, for the decision log.")
@click.argument("version")
def promote_model(results_dir: str | None, reason: str, version: str) -> None:
    """Make VERSION the champion without a comparison (e.g. to roll back); the log records it.

    Its SavedModel goes to <registry>/serving/<recipe>/<number>/ for serving engines.
    """
    import_tensorflow_quietly()
    registry = registry_at(results_dir)
    with registry.lock():
        found = registry.version(version)
        before = registry.champion()
        serving = promote(registry, found, reason, replacing=before)
        registry.record_decision({
            "promoted": True, "reason": reason, "challenger": found.name, "manual": True,
            "champion_before": before.name if before else None, "champion_after": found.name,
            "serving": serving})
    click.echo(f"champion: {found.name} (was {before.name if before else 'none'})")
    if serving["exported"]:
        click.echo(f"serving:  {serving['path']}")
    else:
        click.echo(f"serving:  export failed ({serving['error']}); still serving: "
                   f"{', '.join(serving['serving']) or 'nothing'}", err=True)


def _summary(version: ModelVersion, champion: ModelVersion | None,
             evaluation_set: dict[str, Any] | None) -> dict[str, Any]:
    """One row of `models list`: scores on the registry's current evaluation set."""
    current = [s for s in version.scores.values()
               if evaluation_set and s.get("evaluation_set") == evaluation_set["digest"]]
    return {
        "version": version.name,
        "champion": champion is not None and champion.name == version.name,
        "registered": version.info["registered"],
        "recipe": version.info["bundle"]["recipe"],
        "trained_on": _trained_on(version.info["training_data"]),
        "training_data": version.info["training_data"],
        "evaluation": current[-1] if current else None,
        "test": version.info["metrics"].get("test"),
        "path": version.location,
    }


def _trained_on(data: dict[str, Any]) -> str:
    source = data.get("source", "?")
    if source == "synthetic":
        return f"synthetic, {data.get('images')} captchas, seed {data.get('seed')}"
    where = data.get("data_dir") or data.get("url") or ""
    return f"{source} {where}, {data.get('images')} images, seed {data.get('seed')}".strip()


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _accuracy(scores: dict[str, Any]) -> str:
    if scores.get("sequence_accuracy") is None:
        return "-"
    return format_accuracy(scores["sequence_accuracy"], scores["count"])
