"""Prefect tasks of a training sweep: the comparison table of its configurations."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.records import EvaluationReport, ModelBundle


@dataclass(frozen=True)
class SweepResult:
    """How one configuration of a sweep ended: its model (with its kept epoch's validation
    figures) and test metrics, or why it failed."""

    configuration: str
    recipe: str
    learning_rate: float | None
    seed: int
    model: ModelBundle | None = None
    evaluation: EvaluationReport | None = None
    error: str | None = None
    cached: bool = False

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.evaluation is not None

    def ranking(self) -> tuple[float, float, float]:
        """Higher is better: validation sequence accuracy, then the lower validation CER, then
        the lower validation loss. Test figures never rank: the test split only reports."""
        assert self.model is not None
        validation = self.model.validation
        return (validation["val_sequence_accuracy"], -validation["val_character_error_rate"],
                -validation["val_loss"])


SELECTION = ("chosen on validation figures only (sequence accuracy, then CER, then loss, of each "
             "model's kept epoch); test figures are shown for every configuration but never choose")


def best_result(results: list[SweepResult]) -> SweepResult | None:
    """The succeeded configuration with the best validation figures (see `SweepResult.ranking`;
    full ties: the first in sweep order)."""
    succeeded = [r for r in results if r.succeeded]
    return max(succeeded, key=SweepResult.ranking) if succeeded else None


def comparison_rows(results: list[SweepResult]) -> list[dict[str, object]]:
    """One row per configuration, in sweep order, failed ones included with their error."""
    best = best_result(results)
    rows = []
    for result in results:
        model, metrics = result.model, (result.evaluation.metrics if result.evaluation else {})
        worker = model.worker if model else "-"
        validation = model.validation if model else {}
        rows.append({
            "configuration": result.configuration,
            "status": ("best" if result is best else "ok") if result.succeeded else "failed",
            "val sequence accuracy": _round(validation.get("val_sequence_accuracy")),
            "val CER": _round(validation.get("val_character_error_rate")),
            "val loss": _round(validation.get("val_loss")),
            "test sequence accuracy": _round(metrics.get("sequence_accuracy")),
            "test CER": _round(metrics.get("character_error_rate")),
            "train seconds": round(model.train_seconds, 1) if model else None,
            "epochs": model.epochs_run if model else None,
            "worker": f"cached (trained on {worker})" if result.cached else worker,
            "model": model.path if model else "-",
            "error": result.error or "",
        })
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


@task(cache_policy=NO_CACHE)
def publish_sweep(results: list[SweepResult]) -> list[dict[str, object]]:
    """The configurations side by side as a table artifact; returns its rows."""
    rows = comparison_rows(results)
    create_table_artifact(key="captcha-sweep", table=rows,
                          description=f"Sweep configurations side by side. The best is {SELECTION}; "
                          "it goes to the registry's champion/challenger gate")
    return rows
